"""A burst's files in, one output out: one clean photo (`n3 denoise --burst`) or one enlargement
(`n3 upscale --burst`)."""
from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from ..errors import N3Error
from ..runtime.runner import Runner
from ..store.noise_profiles import NoiseProfiles
from .loading import ModelCache


def burst_file(srcs: Sequence[str | os.PathLike], dst: str | os.PathLike, model: ModelCache | str | None = None,
               sigma: float | None = None, tile: int | None = None, overlap: int | None = None,
               strength: float = 1.0, on_tile: Callable[[int, int], None] | None = None, tta: bool = False,
               chroma_strength: float | None = None, quality: int | None = None, depth: str | None = None,
               max_pixels: int | None = None, compare: bool = False, overwrite: bool = False,
               on_frame: Callable[[int, dict], None] | None = None, device: str = "auto",
               backend: str = "auto", noise: tuple[float, float] | None = None,
               noise_profiles: NoiseProfiles | None = None) -> dict:
    """Merge the photos ``srcs`` of one scene (the first is the reference: the output shows the
    scene as it was then) and denoise the merge (:func:`n3cli.pipelines.burst.denoise_burst`);
    write ``dst`` atomically with the first photo's metadata. One TIFF stack may stand for the
    frames (a time series).

    The model is the one ``model`` (a :class:`ModelCache`, name or path) picks for the first
    photo; ``sigma`` is one frame's noise level. Every frame must be readable and of the first's
    size (else N3Error, nothing written); a frame that cannot be registered (another scene, too
    blurred) is left out and said so in ``"frame_records"``. Returns what
    :func:`~n3cli.pipelines.burst.denoise_burst` used, with ``"model"``, ``"backend"`` and the
    noise's kind where it was read. ``compare``: ``<dst>.compare.png``, the first photo beside
    the result (see :func:`n3cli.api.denoise_file`).

    Camera raw files (all of the burst, one camera) are merged on their mosaics
    (:func:`n3cli.pipelines.burst.merge_raw_burst`) and denoised by the RAW model, told how much
    the merge lowered the noise at each photosite; ``dst`` is a DNG or a developed image, as
    :func:`n3cli.api.denoise_file` writes a raw file. ``noise`` (a, b) and ``noise_profiles`` give
    one frame's noise as they do there (``sigma`` does not apply); ``"noise"`` is returned.
    """
    from ..io.images import check_depth, write_image
    from ..io.raw import is_raw_path
    from ..pipelines.burst import denoise_burst
    from .files import _compare_target

    srcs = _paths(srcs, dst)
    raws = [is_raw_path(s) for s in srcs]
    if any(raws) and not all(raws):
        odd = srcs[raws.index(not raws[0])]
        raise N3Error(f"{odd}: a burst is all raw files or all photos; {srcs[0]} is {'' if raws[0] else 'not '}raw")
    cache = model if isinstance(model, ModelCache) else ModelCache(model, device, backend)
    if raws[0]:
        return _raw_burst(srcs, dst, cache, noise, noise_profiles, tile, overlap, strength, on_tile, tta,
                          chroma_strength, quality, depth, compare, overwrite, on_frame)
    if Path(dst).suffix.lower() == ".dng":
        raise N3Error(f"{dst}: a burst of photos is written as a photo (.png, .jpg, .tif, ...), not a DNG")
    check_depth(dst, depth)
    cmp, skipped = _compare_target(srcs[0], dst, compare, overwrite)
    frames = _frames(srcs, max_pixels)
    first, name = next(frames)
    loaded, kind = cache.for_image(first.pixels)
    out, used = denoise_burst(loaded, _one_size(first, name, frames), sigma, tile, overlap, strength, on_tile, tta,
                              chroma_strength, kind.kind if kind is not None else None, _naming(srcs, on_frame))
    write_image(dst, first, out, quality, depth)
    res = {"model": loaded.info.name, "backend": loaded.describe(), **used, **skipped}
    if kind is not None:
        res["noise_kind"], res["noise_reason"] = kind.kind, kind.reason
    if cmp:
        from ..pipelines.compare import write_compare

        res["compare"] = write_compare(cmp, first.pixels, out)
    return res


def upscale_burst_file(srcs: Sequence[str | os.PathLike], dst: str | os.PathLike, scale: float | None,
                       model: Runner | str | None = None, tile: int | None = None, overlap: int | None = None,
                       on_tile: Callable[[int, int], None] | None = None,
                       on_frame: Callable[[int, dict], None] | None = None,
                       on_refine: Callable[[int, int], None] | None = None, device: str = "auto",
                       backend: str = "auto", max_pixels: int | None = None, quality: int | None = None,
                       depth: str | None = None, denoiser: ModelCache | None = None, sigma: float | None = None,
                       strength: float = 1.0, chroma_strength: float | None = None, compare: bool = False,
                       overwrite: bool = False, width: int | None = None, height: int | None = None) -> dict:
    """Enlarge the photos ``srcs`` of one scene into one image (the first is the reference) with
    detail that no single frame holds (:func:`n3cli.pipelines.burst_sr.upscale_burst`); write
    ``dst`` atomically with the first photo's metadata. One TIFF stack may stand for the frames.

    ``scale``, ``width``, ``height``, ``model``: as :func:`n3cli.api.upscale_file` takes them.
    ``sigma``: one frame's noise level (0-255, default read from the first), which sets how far
    the frames may move the model's enlargement. ``denoiser`` (a :class:`ModelCache`): the merge
    is denoised first, with the model it picks for the first photo, told how much the merge lowered
    each pixel's noise; ``strength`` and ``chroma_strength`` as for :func:`burst_file`. Returns
    ``{"model", "backend", "scale", "frames", "merged", "sigma", "frame_records"}`` (and
    ``"denoise_model"`` with ``--denoise``); ``compare``: ``<dst>.compare.png``, the centre of the
    result beside the first photo enlarged bicubically."""
    from dataclasses import replace

    from ..io.images import check_depth, write_image
    from ..io.raw import is_raw_path
    from ..pipelines.burst import denoise_merge
    from ..pipelines.burst_sr import upscale_burst
    from ..pipelines.sr import output_size, scale_for, sr_factor
    from .files import _compare_target, _enlarged_alpha, _write_enlargement_compare
    from .loading import load_upscaler

    srcs = _paths(srcs, dst)
    for s in srcs:
        if is_raw_path(s):
            raise N3Error(f"{s}: upscale --burst takes photos; develop raw files first (or `n3 denoise --burst` them)")
    if denoiser is None and (strength != 1.0 or chroma_strength is not None):
        raise N3Error("strength and chroma_strength are the denoiser's: they need a denoiser")
    target = {"to_width": width, "to_height": height}
    if scale is not None:
        scale_for(1, 1, scale, **target)  # a bad scale fails before any work
    check_depth(dst, depth)
    cmp, skipped = _compare_target(srcs[0], dst, compare, overwrite)
    if not hasattr(model, "run"):
        model = load_upscaler(model, None if scale is None else sr_factor(scale), device, backend)
    frames = _frames(srcs, max_pixels)
    first, name = next(frames)
    s = scale_for(*first.pixels.shape[:2], scale, **target, name=str(srcs[0]))

    res: dict = {}
    prepare = None
    if denoiser is not None:
        loaded, kind = denoiser.for_image(first.pixels)
        res["denoise_model"] = loaded.info.name
        if kind is not None:
            res["noise_kind"], res["noise_reason"] = kind.kind, kind.reason
        if sigma is None:  # the denoiser's reading, which the refinement then uses too
            from ..pipelines.arrays import as_float_image
            from ..pipelines.denoise import estimate_level

            sigma = float(estimate_level(loaded.info, as_float_image(first.pixels)[0],
                                         kind.kind if kind is not None else None))

        def prepare(reference, merged, factor):
            out, used = denoise_merge(loaded, reference, merged, factor, sigma, tile, overlap, strength, on_tile,
                                      kind=kind.kind if kind is not None else None, chroma_strength=chroma_strength)
            res.update(used)
            return out

    out, used = upscale_burst(model, _one_size(first, name, frames), s, tile, overlap, on_tile,
                              _naming(srcs, on_frame), sigma, prepare, on_refine)
    big = replace(first, pixels=out, alpha=_enlarged_alpha(first.alpha, *output_size(*first.pixels.shape[:2], s)))
    write_image(dst, big, quality=quality, depth=depth)
    res = {"model": model.info.name, "backend": model.describe(), "scale": s, **used, **res, **skipped}
    if cmp:
        res["compare"] = _write_enlargement_compare(cmp, first.pixels, out)
    return res


def _raw_burst(srcs: list[Path], dst, cache: ModelCache, noise, profiles, tile, overlap, strength: float, on_tile,
               tta: bool, chroma_strength, quality, depth, compare: bool, overwrite: bool, on_frame) -> dict:
    from ..io.raw import read_raw
    from ..pipelines.burst import merge_raw_burst
    from ..pipelines.raw import check_raw_output, noise_params, write_denoised_raw
    from .files import _compare_target

    check_raw_output(dst, depth)  # before any work
    if len(srcs) < 2:
        raise N3Error(f"{srcs[0]}: a burst needs two raw files or more")
    cmp, skipped = _compare_target(srcs[0], dst, compare, overwrite)
    loaded = cache.for_raw()
    first = read_raw(srcs[0])
    params = noise_params(first, noise, profiles)  # one frame's, as the first file says

    def mosaics():
        yield first
        for s in srcs[1:]:
            raw = read_raw(s)
            if raw.mosaic.shape != first.mosaic.shape or raw.pattern != first.pattern:
                raise N3Error(f"{s}: a {raw.mosaic.shape[1]}x{raw.mosaic.shape[0]} {raw.pattern} mosaic, the first "
                              f"frame ({srcs[0]}) a {first.mosaic.shape[1]}x{first.mosaic.shape[0]} {first.pattern} one: "
                              "a burst is one camera's frames")
            yield raw

    merged, factor, records = merge_raw_burst(mosaics(), _naming(srcs, on_frame))
    used = write_denoised_raw(srcs[0], dst, merged, loaded, params, tile, overlap, on_tile, strength, cmp, tta,
                              chroma_strength, quality, depth, factor)
    return {**used, "backend": loaded.describe(), "frames": 1 + len(records),
            "merged": 1 + sum(r["used"] for r in records), "frame_records": records, **skipped}


def _naming(srcs: list[Path], on_frame):
    """The frame callback that adds each record's ``"input"``: its file, or the stack and frame."""

    def said(i: int, rec: dict) -> None:
        rec["input"] = str(srcs[i]) if len(srcs) > 1 else f"{srcs[0]} frame {i + 1}"
        if on_frame is not None:
            on_frame(i, rec)

    return said


def _paths(srcs: Sequence[str | os.PathLike], dst) -> list[Path]:
    """A burst's files as paths, refused when there are none or one of them is the output."""
    from ..io.folders import same_file

    paths = [Path(s) for s in srcs]
    if not paths:
        raise N3Error("a burst needs photos")
    for s in paths:
        if same_file(s, Path(dst)):
            raise N3Error(f"{s}: output would overwrite an input; choose another -o")
    return paths


def _one_size(first, name, frames: Iterator[tuple]) -> Iterator:
    """The first image's pixels, then each frame's, each checked to be of the first's size."""
    yield first.pixels
    for img, where in frames:
        if img.pixels.shape != first.pixels.shape:
            raise N3Error(f"{where}: {_size(img.pixels)}, the first frame ({name}) {_size(first.pixels)}: "
                          "a burst's frames are one size")
        yield img.pixels


def _size(pixels) -> str:
    return f"{pixels.shape[1]}x{pixels.shape[0]}" + (" colour" if pixels.ndim == 3 and pixels.shape[2] == 3 else " gray")


def _frames(srcs: list[Path], max_pixels: int | None) -> Iterator[tuple]:
    """(image, where it comes from) for each frame: the files' images in order, or one stack's frames."""
    from ..io.images import read_image
    from ..io.stacks import open_stack, read_frames

    stacks = [open_stack(s, max_pixels) for s in srcs]
    if any(st is not None for st in stacks):
        if len(srcs) > 1:
            name = next(s for s, st in zip(srcs, stacks) if st is not None)
            raise N3Error(f"{name}: a TIFF stack is a burst of its own; give it alone")
        stack = stacks[0]
        if "C" in stack.lead_axes.upper():
            raise N3Error(f"{srcs[0]}: its frames include channels ({stack.lead_axes}); a burst is frames of one scene")
        for i, img in enumerate(read_frames(stack)):
            yield img, f"{srcs[0]} frame {i + 1}"
        return
    if len(srcs) < 2:
        raise N3Error(f"{srcs[0]}: a burst needs two photos or more (or a TIFF stack of several frames)")
    for s in srcs:
        yield read_image(s, max_pixels), s
