"""One file in, one file out: the denoise and upscale jobs the CLI runs for each input, with
the rules every output obeys (atomic writes; --compare never over an input)."""
from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..errors import N3Error, describe_error
from ..imaging.estimate import estimate_sigma
from ..pipelines.denoise import denoise, estimate_level, stretch_gain
from ..pipelines.sr import output_size, scale_for, sr_factor, upscale
from ..runtime.runner import Runner
from ..store.noise_profiles import NoiseProfiles, default_path
from .loading import ModelCache, load_upscaler


def upscale_file(src: str | os.PathLike, dst: str | os.PathLike, scale: float | None, model: Runner | str | None = None,
                 tile: int | None = None, overlap: int | None = None, device: str = "auto",
                 on_tile: Callable[[int, int], None] | None = None, backend: str = "auto",
                 max_pixels: int | None = None, tta: bool = False, quality: int | None = None,
                 denoiser: ModelCache | None = None, sigma: float | None = None,
                 noise_profiles: NoiseProfiles | None = None, compare: bool = False, overwrite: bool = False,
                 strength: float = 1.0, chroma_strength: float | None = None, width: int | None = None,
                 height: int | None = None, depth: str | None = None) -> dict:
    """Read ``src``, upscale by ``scale`` (1 < scale <= 4, :func:`n3cli.api.upscale`) or, with
    ``scale`` None, to ``width`` or ``height`` pixels (the other side in proportion), write ``dst``
    atomically (bit depth kept; alpha is upscaled bicubically without the model). ``model``: a
    runner, or a name or path. Returns ``{"model", "backend", "scale"}``. ``max_pixels``:
    see :func:`n3cli.io.images.read_image`; ``tta``: see :func:`n3cli.api.upscale`; ``quality``:
    JPEG, WebP and HEIC outputs (:func:`n3cli.io.images.write_image`).

    ``denoiser``: denoise the photo first, with the model it picks for the photo (as
    :func:`denoise_file` does) at ``sigma`` or the level read from it; the SR models were trained on
    clean images and sharpen noise. What it used is returned as ``"denoise_model"``, ``"sigma"``
    (and ``"noise_kind"``, ``"noise_reason"`` where it read the kind). ``strength`` and
    ``chroma_strength``: how much of the noise it removes, as :func:`denoise_file` takes them.

    Camera raw files are developed by LibRaw (as `n3 denoise photo.dng -o out.tif` develops them)
    and then enlarged, to a developed output (``.tif`` 16-bit, ``.png``, ``.jpg``, ...); with
    ``denoiser``, their mosaic is denoised first by its RAW model, at the noise read from the file
    (``noise_profiles`` included; ``sigma`` does not apply), returned as ``"noise"``.

    ``compare`` also writes ``<dst>.compare.png``: the centre of the result, at most 512 px a side,
    beside the same region of the input enlarged bicubically (raw files: as developed), under
    :func:`denoise_file`'s rules for it (``"compare"`` or ``"compare_skipped"`` returned).
    ``depth``: the output's samples, ``8``, ``16`` or ``float`` (:func:`n3cli.io.images.write_image`)."""
    from dataclasses import replace

    from ..io.images import Image, check_depth, read_image, write_image
    from ..io.raw import is_raw_path
    from ..io.stacks import open_stack

    check_depth(dst, depth)  # before any work
    if denoiser is None and (sigma is not None or strength != 1.0 or chroma_strength is not None):
        raise N3Error("sigma, strength and chroma_strength are the denoiser's: they need a denoiser")
    target = {"to_width": width, "to_height": height}
    if scale is not None:
        scale_for(1, 1, scale, **target)  # a bad scale fails before any work
    cmp, skipped = _compare_target(src, dst, compare, overwrite)
    if not hasattr(model, "run"):
        model = load_upscaler(model, None if scale is None else sr_factor(scale), device, backend)
    if is_raw_path(src):
        res = _upscale_raw(src, dst, scale, target, model, tile, overlap, on_tile, tta, quality, denoiser,
                           noise_profiles, cmp, strength, chroma_strength, depth)
        return {**res, **skipped}

    def enlarge(img: Image, s: float, progress, chosen=None) -> tuple[Image, dict]:
        pixels, res = img.pixels, {"scale": s}
        if denoiser is not None:
            pixels, used = _denoise_photo(denoiser, pixels, sigma, tile, overlap, strength, progress, tta,
                                          chroma_strength, chosen)
            res.update({"denoise_model": used.pop("model"), **{k: v for k, v in used.items() if k != "backend"}})
        return replace(img, pixels=upscale(model, pixels, s, tile, overlap, progress, tta),
                       alpha=_enlarged_alpha(img.alpha, *output_size(*img.pixels.shape[:2], s))), res

    stack = open_stack(src, max_pixels)
    if stack is not None:
        s = scale_for(stack.height, stack.width, scale, **target, name=str(src))
        res = _stack_job(stack, dst, lambda img, progress, chosen: enlarge(img, s, progress, chosen),
                         on_tile, cmp, denoiser, output_size(stack.height, stack.width, s), depth)
        return {"model": model.info.name, "backend": model.describe(), **res, **skipped}
    img = read_image(src, max_pixels)
    s = scale_for(*img.pixels.shape[:2], scale, **target, name=str(src))
    out, res = enlarge(img, s, on_tile)
    if cmp:
        res["compare"] = _write_enlargement_compare(cmp, img.pixels, out.pixels)
    write_image(dst, out, quality=quality, depth=depth)
    return {"model": model.info.name, "backend": model.describe(), **res, **skipped}


def _enlarged_alpha(alpha: np.ndarray | None, height: int, width: int) -> np.ndarray | None:
    """Alpha enlarged bicubically (not by the model) to ``height`` x ``width``, in its own type."""
    if alpha is None:
        return None
    from ..imaging.resize import resize_to

    peak = 1.0 if alpha.dtype.kind == "f" else float(np.iinfo(alpha.dtype).max)
    a = np.clip(resize_to(alpha.astype(np.float64) / peak, height, width), 0, 1) * peak
    return (a if alpha.dtype.kind == "f" else np.rint(a)).astype(alpha.dtype)


def _compare_target(src, dst, compare: bool, overwrite: bool) -> tuple[str | None, dict]:
    """(where ``--compare`` writes, or None; ``{"compare_skipped": path}`` where it exists)."""
    if not compare:
        return None, {}
    from ..pipelines.compare import compare_target

    cmp, write_it = compare_target(src, dst, overwrite)
    return (cmp, {}) if write_it else (None, {"compare_skipped": cmp})


def _write_enlargement_compare(path: str, small: np.ndarray, big: np.ndarray) -> str:
    from ..pipelines.compare import enlargement_crops, write_compare

    return write_compare(path, *enlargement_crops(small, big))


def _upscale_raw(src, dst, scale: float | None, target: dict, runner: Runner, tile, overlap, on_tile, tta, quality,
                 denoiser: ModelCache | None, noise_profiles: NoiseProfiles | None, cmp: str | None,
                 strength: float = 1.0, chroma_strength: float | None = None, depth: str | None = None) -> dict:
    from ..pipelines.raw import (
        DEVELOPED_EXTS,
        develop_raw_file,
        developed,
        write_raw_output,
    )

    if Path(dst).suffix.lower() not in DEVELOPED_EXTS:  # before the slow part
        raise N3Error(f"{src}: an enlarged raw file is written developed: give {dst} the extension .tif, .png or .jpg")
    raw_model = denoiser.for_raw() if denoiser is not None else None
    raw, rgb, used = develop_raw_file(src, raw_model, tile, overlap, on_tile, noise_profiles, tta, strength,
                                      chroma_strength)
    s = scale_for(*rgb.shape[:2], scale, **target, name=str(src))
    out = np.clip(upscale(runner, rgb, s, tile, overlap, on_tile, tta), 0.0, 1.0)
    done = f"denoised, enlarged x{s:.4g}" if raw_model is not None else f"enlarged x{s:.4g}"
    write_raw_output(dst, src, raw, None, out, quality, done, depth)
    res = {"model": runner.info.name, "backend": runner.describe(), "scale": s}
    if used:
        res["denoise_model"] = used.pop("model")
        res.update(used)
    if cmp:
        res["compare"] = _write_enlargement_compare(cmp, developed(src, raw, None) if used else rgb, out)
    return res


def denoise_file(src: str | os.PathLike, dst: str | os.PathLike, model: ModelCache | str | None = None,
                 sigma: float | None = None, tile: int | None = None, overlap: int | None = None,
                 strength: float = 1.0, device: str = "auto",
                 on_tile: Callable[[int, int], None] | None = None, backend: str = "auto",
                 noise: tuple[float, float] | None = None, compare: bool = False, overwrite: bool = False,
                 max_pixels: int | None = None, tta: bool = False,
                 noise_profiles: NoiseProfiles | None = None, chroma_strength: float | None = None,
                 quality: int | None = None, depth: str | None = None, temporal: int = 0) -> dict:
    """Read ``src``, denoise, write ``dst`` atomically (format from its extension, bit depth kept).

    Camera raw files (``.dng``, ``.cr2``, ``.nef``, ...) go through the RAW model
    (:mod:`n3cli.pipelines.raw`); ``noise`` (a, b) overrides their noise parameters, and
    ``noise_profiles`` (:func:`find_noise_profiles`) gives them for cameras and ISOs measured before.

    Returns what was used: ``{"model": name, "sigma": value or None, "backend": description}``
    (raw files: ``"noise"`` instead of ``"sigma"``), and where the model was picked by the photo's
    noise (``ModelCache`` with ``photo_noise="auto"``, the default) ``"noise_kind"`` (``gaussian``
    or ``real``) and ``"noise_reason"``. ``compare`` also writes
    ``<dst>.compare.png``: the centre 512 px of input and result side by side (raw files: both
    developed by LibRaw); its path is returned as ``"compare"``. The comparison obeys the rules of
    every output: never the input (an error, before any work), an existing file only with
    ``overwrite`` (else it is left alone and its path returned as ``"compare_skipped"``).
    ``max_pixels``: see :func:`n3cli.io.images.read_image`. ``tta``, ``chroma_strength``: see
    :func:`n3cli.api.denoise` (raw files: :func:`n3cli.pipelines.raw.denoise_mosaic`, each view in the
    CFA layout it turns into; :func:`n3cli.pipelines.raw.blend_mosaic`). ``quality``: JPEG, WebP
    and HEIC outputs; ``depth``: the output's samples, ``8``, ``16`` or ``float`` (default the
    input's; :func:`n3cli.io.images.write_image`).

    ``temporal``: a TIFF time series' frames are each denoised with this many frames on either
    side registered and merged onto it (:func:`n3cli.pipelines.burst.denoise_burst`, the frame
    itself the reference, so what moved stays where it was); ``"frame_merged"`` says how many
    merged for each. On a file that is not a time series it does nothing and says so
    (``"warning"``).
    """
    from ..io.images import check_depth, read_image, write_image
    from ..io.raw import is_raw_path
    from ..io.stacks import open_stack

    cache = model if isinstance(model, ModelCache) else ModelCache(model, device, backend)
    cmp, skipped = _compare_target(src, dst, compare, overwrite)
    not_series = f"not a time series: --temporal does not apply to {src}"
    if is_raw_path(src):
        from ..pipelines.raw import denoise_raw_file

        loaded = cache.for_raw()
        used = denoise_raw_file(src, dst, loaded, noise, tile, overlap, on_tile, strength, cmp, noise_profiles, tta,
                                chroma_strength, quality, depth)
        if temporal:  # beside what the raw path may have to say (a guessed noise level)
            used["warning"] = "; ".join(filter(None, (used.get("warning"), not_series)))
        return {**used, **skipped, "backend": loaded.describe()}
    if Path(dst).suffix.lower() == ".dng":
        raise N3Error(f"{src}: a DNG holds a camera's raw mosaic; write an sRGB image as .png, .jpg or .tif")
    check_depth(dst, depth)
    stack = open_stack(src, max_pixels)
    if stack is not None and temporal:
        return {**_temporal_stack_job(stack, dst, cache, temporal, sigma, tile, overlap, strength, on_tile, tta,
                                      chroma_strength, cmp, depth), **skipped}
    if stack is not None:
        def clean(img, progress, chosen):
            out, used = _denoise_photo(cache, img.pixels, sigma, tile, overlap, strength, progress, tta,
                                       chroma_strength, chosen)
            return img.with_pixels(out), used

        return {**_stack_job(stack, dst, clean, on_tile, cmp, cache, depth=depth), **skipped}
    img = read_image(src, max_pixels)
    out, res = _denoise_photo(cache, img.pixels, sigma, tile, overlap, strength, on_tile, tta, chroma_strength)
    write_image(dst, img, out, quality, depth)
    res.update(skipped)
    if temporal:
        res["warning"] = not_series
    if cmp:
        from ..pipelines.compare import write_compare

        res["compare"] = write_compare(cmp, img.pixels, out)
    return res


def _denoise_photo(cache: ModelCache, pixels: np.ndarray, sigma: float | None, tile: int | None,
                   overlap: int | None, strength: float = 1.0, on_tile: Callable[[int, int], None] | None = None,
                   tta: bool = False, chroma_strength: float | None = None,
                   chosen: tuple | None = None) -> tuple[np.ndarray, dict]:
    """A photo's pixels denoised by the model ``cache`` picks for them (``chosen``: what
    ``cache.for_image`` picked before, for a stack's later frames), at ``sigma`` or the level read
    from them, and what was used (``model``, ``sigma``, ``backend``, ``noise_kind``, ...)."""
    loaded, kind = chosen or cache.for_image(pixels)
    leveled = loaded.info.takes_noise_map or loaded.info.noise.get("kind") == "fixed"  # both use the level
    used = sigma
    if leveled and sigma is None:
        used = estimate_level(loaded.info, pixels, kind.kind if kind is not None else None)
    out = denoise(loaded, pixels, used, tile, overlap, strength, on_tile, tta, chroma_strength)
    res = {"model": loaded.info.name, "sigma": used if leveled else None, "backend": loaded.describe()}
    gain = stretch_gain(loaded.info, pixels, used)[0]  # what denoise() applied, for the report
    if gain != 1.0:
        res["stretch"] = round(gain, 3)
    if kind is not None:
        res["noise_kind"], res["noise_reason"] = kind.kind, kind.reason
    return out, res


def _stack_job(stack, dst, work: Callable, on_tile: Callable[[int, int], None] | None, cmp: str | None,
               cache: ModelCache | None, size: tuple[int, int] | None = None, depth: str | None = None,
               window: int = 0) -> dict:
    """A TIFF stack through ``work(frame, on_tile, chosen) -> (new frame, what was used)`` one frame
    at a time, written to ``dst`` as a stack (frames of ``size``, default the input's). The model
    ``cache`` picks for the first frame does every frame (one look through the stack); the noise
    level is read per frame. Returns frame 1's record with ``"frames"`` and, where a level was read
    or the frames were brightened, their median as ``"sigma"`` and each frame's as ``"frame_sigmas"``
    (``"frame_stretch"``). ``cmp``: frame 1's comparison, written after the stack. ``window``:
    ``work`` also gets the frames up to that many places either side, nearest first, and each
    frame's ``"merged"`` count is returned as ``"frame_merged"``."""
    from .. import __version__
    from ..io.stacks import read_frames, write_stack
    from ..pipelines.compare import centre_crop, enlargement_crops, write_compare

    records: list[dict] = []
    crops: list = []
    chosen = None

    def frames():
        nonlocal chosen
        source = _windows(read_frames(stack), window, stack.frames) if window else \
            ((img, None) for img in read_frames(stack))
        for i, (img, near) in enumerate(source):
            if chosen is None and cache is not None:
                chosen = cache.for_image(img.pixels)
            progress = None if on_tile is None else (lambda d, t, i=i: on_tile(i * t + d, stack.frames * t))
            out, used = work(img, progress, chosen, near) if window else work(img, progress, chosen)
            records.append(used)
            if cmp and i == 0:  # the regions it shows, not two whole frames kept through the stack
                crops.extend(enlargement_crops(img.pixels, out.pixels) if size else
                             (centre_crop(img.pixels).copy(), centre_crop(out.pixels).copy()))
            yield out, out.pixels

    write_stack(dst, stack, frames(), *(size or (None, None)), software=f"n3 {__version__}", depth=depth)
    res = {**records[0], "frames": stack.frames}
    sigmas = [r.get("sigma") for r in records]
    if all(v is not None for v in sigmas):
        res["sigma"], res["frame_sigmas"] = float(np.median(sigmas)), [float(v) for v in sigmas]
    if window:  # frame 1's burst figures, replaced by each frame's
        res.pop("sigma_merged", None)
        res["frame_merged"] = [r["merged"] for r in records]
        res.pop("merged", None)
    stretch = [r.get("stretch", 1.0) for r in records]
    res.pop("stretch", None)
    if any(v != 1.0 for v in stretch):
        res["frame_stretch"] = stretch
    if cmp:
        res["compare"] = write_compare(cmp, *crops)
    return res


def _windows(frames, k: int, n: int):
    """(frame t, the frames within ``k`` places of it, nearest first) for each of ``n`` frames,
    holding at most 2k + 1 at a time."""
    it, held, ahead = iter(frames), {}, 0
    for t in range(n):
        while ahead <= min(n - 1, t + k):
            held[ahead] = next(it)
            ahead += 1
        for j in [j for j in held if j < t - k]:
            del held[j]
        yield held[t], [held[j] for j in sorted((j for j in held if j != t), key=lambda j: (abs(j - t), j))]


TEMPORAL_AXES = "TIQ"
"""The lead axes a stack's frames may run along for --temporal: time, or tifffile's generic pages."""


def _temporal_stack_job(stack, dst, cache: ModelCache, k: int, sigma, tile, overlap, strength: float, on_tile,
                        tta: bool, chroma_strength, cmp: str | None, depth: str | None) -> dict:
    """A time series denoised frame by frame, each merged first with its ``k`` neighbours either
    side (:func:`denoise_file`'s ``temporal``)."""
    from ..pipelines.burst import denoise_burst

    axes = stack.lead_axes.upper()
    if len(axes) != 1 or axes not in TEMPORAL_AXES:
        raise N3Error(f"{stack.path}: --temporal takes a time series (frames along one time axis); this stack's "
                      f"frames run along {stack.lead_axes} {stack.lead_shape}")

    def clean(img, progress, chosen, near):
        loaded, kind = chosen
        out, used = denoise_burst(loaded, [img.pixels] + [f.pixels for f in near], sigma, tile, overlap, strength,
                                  progress, tta, chroma_strength, kind.kind if kind is not None else None)
        used.pop("frame_records")
        used.update(model=loaded.info.name, backend=loaded.describe())
        if kind is not None:
            used["noise_kind"], used["noise_reason"] = kind.kind, kind.reason
        return img.with_pixels(out), used

    return {**_stack_job(stack, dst, clean, on_tile, cmp, cache, depth=depth, window=k), "temporal": k}


def run_job(src: str | os.PathLike, dst: str | os.PathLike, overwrite: bool, work: Callable[[], tuple[str, dict]],
            error: str | None = None) -> tuple[str, str, dict | None]:
    """One job of a batch under the rules every output obeys: never over its input, an existing
    output skipped unless ``overwrite``, a stale temporary file removed, any failure (``error``: a
    problem found when planning) one line naming the file. ``work()`` writes the output and returns
    (the line to report, what was used). Returns (``done``, ``skipped`` or ``failed``, the line,
    what was used or None)."""
    from ..io.atomic import remove_stale_parts
    from ..io.folders import same_file

    src, dst = Path(src), Path(dst)
    try:
        if error:
            raise N3Error(error)
        if same_file(src, dst):
            raise N3Error(f"{src}: output would overwrite the input; choose another -o")
        remove_stale_parts(dst)
        if dst.exists() and not overwrite:
            return "skipped", f"skip {dst} (exists; --overwrite to replace)", None
        line, used = work()
        return "done", line, used
    except Exception as e:  # one bad file (or an unexpected bug) must not stop a batch: one line each
        return "failed", describe_error(e, src), None


def job_record(src: str | os.PathLike, dst: str | os.PathLike, status: str, used: dict | None = None,
               error: str | None = None) -> dict:
    """What one job of a batch did, as JSON-ready values (`n3 denoise --json` prints one per line):
    ``{"input", "output", "status"}`` (``written``, ``skipped`` or ``failed``), then what
    :func:`denoise_file` or :func:`upscale_file` returned (raw files' ``noise`` as ``{"a", "b",
    "source"}``), or ``"error"``: the one-line message."""
    from ..pipelines.raw import NoiseParams

    rec: dict = {"input": str(src), "output": str(dst), "status": status}
    for key, value in (used or {}).items():
        if isinstance(value, NoiseParams):
            value = {"a": float(value.a), "b": float(value.b), "source": value.source}
        elif isinstance(value, os.PathLike):
            value = str(value)
        elif isinstance(value, (np.floating, np.integer)):
            value = value.item()
        rec[key] = value
    if error is not None:
        rec["error"] = error
    return rec


def noise_level(path: str | os.PathLike, noise: tuple[float, float] | None = None,
                max_pixels: int | None = None, noise_profiles: NoiseProfiles | None = None) -> dict:
    """What `n3 denoise --print-noise` prints for one file: for an image ``"kind"`` (``gaussian`` or
    ``real``) and ``"reason"``, its noise kind (:func:`n3cli.imaging.noise_kind.noise_kind`), and
    ``"sigma"`` (0-255 units) as read for the model ``--noise auto`` gives that kind (the real-noise
    model's map is the all-patches reading), with the ``"estimator"`` method (a TIFF stack: the
    median of its frames' readings, and ``"frames"``, ``"frame_sigmas"``); for a raw file ``{"a",
    "b", "source"}`` (``noise`` given: those, as "given") and ``"sources"``: what every source the
    file offers reads (:func:`n3cli.pipelines.raw.noise_candidates`)."""
    from ..io.images import read_image
    from ..io.raw import is_raw_path, read_raw
    from ..pipelines.raw import noise_candidates, noise_params

    if is_raw_path(path):
        raw = read_raw(path)
        p = noise_params(raw, noise, noise_profiles)
        return {"a": p.a, "b": p.b, "source": p.source, "sources": noise_candidates(raw, noise_profiles)}
    from ..imaging.noise_kind import noise_kind
    from ..io.stacks import open_stack, read_frames

    stack = open_stack(path, max_pixels)
    frames = read_frames(stack) if stack is not None else iter([read_image(path, max_pixels)])
    sigmas, kind, method = [], None, ""
    for img in frames:
        if kind is None:  # a stack's first frame picks its model (see _stack_job)
            kind = noise_kind(img.pixels)
            method = "all-patches" if kind.kind == "real" else "weak-texture"
        sigmas.append(estimate_sigma(img.pixels, method=method))
    res = {"sigma": float(np.median(sigmas)), "estimator": method, "kind": kind.kind, "reason": kind.reason}
    if stack is not None:
        res.update(frames=stack.frames, frame_sigmas=sigmas)
    return res


def find_noise_profiles(path: str | os.PathLike | None = None) -> NoiseProfiles | None:
    """The noise profiles RAW denoising uses: ``path`` (N3Error if it is missing or broken), else
    the default file (:func:`n3cli.store.noise_profiles.default_path`) where one exists, else None."""
    if path is not None:
        return NoiseProfiles.load(path)
    default = default_path()
    return NoiseProfiles.load(default) if default.is_file() else None


def noise_profile_reading(path: str | os.PathLike) -> dict:
    """What ``n3 noise-profile add`` records for one raw file: ``{"camera", "iso", "a", "b",
    "source"}``, the file's own noise reading (see :func:`n3cli.pipelines.raw.profile_reading`)."""
    from ..pipelines.raw import profile_reading

    camera, iso, p = profile_reading(path)
    return {"camera": camera, "iso": iso, "a": p.a, "b": p.b, "source": p.source}
