"""Denoising camera raw files: noise parameters, the mosaic through a RAW model, and the outputs.

The model works on the mosaic packed to 4 half-resolution RGGB planes (so tiles are always
aligned to the 2x2 CFA cell) plus constant maps of the noise parameters; values are the file's
own levels normalised to [0, 1], and go back to the camera's black and white levels at the end.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ImageError, N3Error
from ..imaging.bayer import demosaic_mhc, pack, rggb_offset, unpack
from ..imaging.color import LUMA
from ..imaging.strength import blend
from ..io.raw import RawImage, read_raw, write_dng
from ..runtime.runner import TTA_VIEWS, Runner, dihedral, run_image, tta_progress
from ..store.modelinfo import ModelInfo
from ..store.noise_profiles import NoiseProfiles

DEVELOPED_EXTS = {".tif", ".tiff", ".png", ".jpg", ".jpeg", ".bmp", ".webp", ".heic", ".heif"}
RAW_OUTPUT_EXTS = DEVELOPED_EXTS | {".dng"}


GUESSED = "guessed: too little between black and white to read"
GUESSED_A = "optical black + guessed a"


@dataclass(frozen=True)
class NoiseParams:
    """``var = a*x + b`` on the normalised mosaic, and where the values came from."""

    a: float
    b: float
    source: str  # "given", "NoiseProfile", "ISO profile: ...", "optical black + fit" or "estimated"

    def __str__(self) -> str:
        return f"a={self.a:.3g} b={self.b:.3g} ({self.source})"


def parse_noise(text: str) -> tuple[float, float]:
    """``"A,B"`` -> (a, b), both finite and >= 0 (a or b may be 0, not both)."""
    parts = text.replace(" ", "").split(",")
    try:
        a, b = (float(v) for v in parts)
    except ValueError:
        raise N3Error(f"--noise {text!r}: expected A,B (e.g. 1e-3,1e-5)") from None
    if not (np.isfinite(a) and np.isfinite(b)) or a < 0 or b < 0 or a + b <= 0:
        raise N3Error(f"--noise {text!r}: a and b must be >= 0 and not both 0")
    return a, b


def camera_name(raw: RawImage) -> str:
    """The camera a file comes from, as noise profiles are keyed: make and model where the file
    names them, else what the sensor itself shows (mosaic size, CFA, white level)."""
    name = " ".join(v for v in (raw.make, raw.model) if v)
    if name:
        return name
    h, w = raw.mosaic.shape
    return f"unnamed camera ({w}x{h} {raw.pattern}, white level {raw.white:g})"


def iso_of(raw: RawImage) -> float | None:
    """The ISO the file was shot at, from its metadata (None if it does not say)."""
    iso = raw.tags.get(34855)
    try:
        return float(iso) if iso is not None and float(iso) > 0 else None
    except (TypeError, ValueError):
        return None


def noise_candidates(raw: RawImage, profiles: NoiseProfiles | None = None) -> dict[str, tuple[float, float]]:
    """Every (a, b) the file offers, by source, in the order :func:`noise_params` trusts them:
    the DNG ``NoiseProfile`` (the camera maker's own model, mean over the colour planes); the
    user's noise ``profiles`` for the file's camera at its ISO (readings of several of the camera's
    files pooled, see :mod:`n3cli.store.noise_profiles`); the read noise ``b`` of the sensor's
    masked border (optical black) with ``a`` fitted to the mosaic; the single-image
    Poisson-Gaussian fit of the mosaic alone."""
    from ..imaging.raw_noise import (
        MIN_READABLE_BLOCKS,
        estimate_noise_params,
        readable_blocks,
    )

    out: dict[str, tuple[float, float]] = {}
    if raw.noise_profile:
        s = float(np.mean([p[0] for p in raw.noise_profile]))
        o = float(np.mean([p[1] for p in raw.noise_profile]))
        if s >= 0 and o >= 0 and s + o > 0:
            out["NoiseProfile"] = (s, o)
    found = profiles.lookup(camera_name(raw), iso_of(raw) or 0) if profiles is not None else None
    if found is not None and found[0] + found[1] > 0:
        out[f"ISO profile: {found[2]}"] = (found[0], found[1])
    planes, _ = pack(raw.mosaic, raw.pattern)
    # a frame with too little between black and white to read gets the estimator's fixed guess:
    # said so, not passed off as a reading
    read = readable_blocks(planes) >= MIN_READABLE_BLOCKS
    if raw.black_noise:
        out["optical black + fit" if read else GUESSED_A] = estimate_noise_params(planes, b=raw.black_noise)
    out["estimated" if read else GUESSED] = estimate_noise_params(planes)
    return out


def noise_params(raw: RawImage, given: tuple[float, float] | None = None,
                 profiles: NoiseProfiles | None = None) -> NoiseParams:
    """The noise of ``raw``: ``given`` (a, b) if any, else the first of :func:`noise_candidates`."""
    if given is not None:
        return NoiseParams(float(given[0]), float(given[1]), "given")
    source, (a, b) = next(iter(noise_candidates(raw, profiles).items()))
    return NoiseParams(a, b, source)


def profile_reading(src: str | os.PathLike) -> tuple[str, int, NoiseParams]:
    """What a noise profile records of the raw file ``src``: its camera (:func:`camera_name`), ISO
    and its own noise reading (:func:`noise_params` without profiles). N3Error if the file does not
    say its ISO, or if n3 wrote it (a denoised file's noise is not the camera's)."""
    from ..io.raw import software_tag

    raw = read_raw(src)
    software = software_tag(src)
    if software.startswith("n3 "):
        raise N3Error(f"{src}: written by n3 ({software}): its noise is not the camera's")
    iso = iso_of(raw)
    if iso is None:
        raise N3Error(f"{src}: its metadata does not say the ISO, so it cannot go into a noise profile")
    params = noise_params(raw)
    if params.source in (GUESSED, GUESSED_A):
        raise N3Error(f"{src}: too dark, too bright or too small to read its noise")
    return camera_name(raw), int(round(iso)), params


def outside_training_range(info: ModelInfo, noise: NoiseParams) -> str | None:
    """Why ``noise`` lies outside the (a, b) range the RAW model ``info`` was trained on, or None
    (inside, or a model file that does not record its range). Outside, a model tends to leave
    noise in or smooth detail away, so the user is told."""
    ranges = info.noise
    if "a_log_range" not in ranges or "b_over_a_log_range" not in ranges or noise.a <= 0 or noise.b <= 0:
        return None
    la, lr = np.log10(noise.a), np.log10(noise.b / noise.a)
    (a0, a1), (r0, r1) = ranges["a_log_range"], ranges["b_over_a_log_range"]
    why = []
    if not a0 <= la <= a1:
        why.append(f"a={noise.a:.3g} (trained on {10.0**a0:.0e} to {10.0**a1:.0e})")
    if not r0 <= lr <= r1:
        why.append(f"b/a={noise.b / noise.a:.3g} (trained on {10.0**r0:.2g} to {10.0**r1:.2g})")
    return f"noise {' and '.join(why)} is outside what {info.name} was trained on" if why else None


def denoise_mosaic(model: Runner, raw: RawImage, noise: NoiseParams, tile: int | None = None,
                   overlap: int | None = None, on_tile: Callable[[int, int], None] | None = None,
                   strength: float = 1.0, tta: bool = False, chroma_strength: float | None = None,
                   factor: np.ndarray | None = None) -> np.ndarray:
    """The denoised mosaic (same shape and CFA layout as ``raw.mosaic``, normalised, not clipped).

    ``factor``: a map of the mosaic's shape by which the noise's standard deviation is lower than
    ``noise`` says at each photosite (a merged burst, :func:`n3cli.pipelines.burst.merge_raw_burst`);
    the model's noise maps are scaled by it.

    Rows or columns outside the RGGB-aligned area (at most one per side) are kept as they were.
    ``strength`` blends with the noisy mosaic (1: fully denoised); ``chroma_strength`` keeps the
    colour part of the change by its own amount (:func:`blend_mosaic`). ``tta``: the mean of the
    results on the mosaic's eight rotations and mirror images, each read in the CFA layout it
    turns into and turned back (8x the time; see docs/usage.md for what it buys).
    """
    if model.info.task != "raw":
        raise N3Error(f"{model.info.name}: a {model.info.task} model, not a RAW denoiser")
    if not tta:
        y = _denoise_layout(model, raw.mosaic, raw.pattern, noise, tile, overlap, on_tile, factor)
    else:
        progress, (h, w) = tta_progress(on_tile), raw.mosaic.shape
        # a turned view's top-left cell is one of the mosaic's corner cells, which depend only on
        # the parity of its height and width: a layout of 2-3 px a side has the same corners
        layout = np.tile(np.array(list(raw.pattern)).reshape(2, 2), (2, 2))[: 2 + h % 2, : 2 + w % 2]
        y = np.zeros(raw.mosaic.shape, np.float32)
        for view in range(TTA_VIEWS):
            pattern = "".join(dihedral(layout, view)[:2, :2].ravel())
            out = _denoise_layout(model, dihedral(raw.mosaic, view), pattern, noise, tile, overlap, progress,
                                  None if factor is None else dihedral(factor, view))
            y += dihedral(out, view, inverse=True)
        y /= np.float32(TTA_VIEWS)
    return blend_mosaic(raw, y, strength, chroma_strength)


def blend_mosaic(raw: RawImage, clean: np.ndarray, strength: float = 1.0,
                 chroma_strength: float | None = None) -> np.ndarray:
    """``raw.mosaic`` blended with the denoised ``clean`` mosaic by ``strength``; with
    ``chroma_strength`` the change at each photosite is split as a photo's pixel is
    (:func:`n3cli.imaging.strength.blend`), on the change demosaiced (Malvar-He-Cutler, so that
    fine detail counts as luminance, as raw developers render it) and white-balanced by the file's
    as-shot gains: its luminance part is kept by ``strength``, the rest by ``chroma_strength``.

    This is a split in linear camera RGB, as raw editors' own denoisers make it (darktable's
    profiled denoise). Which share of a photosite's change a developer renders as colour depends
    on its demosaicing and colour rendering, so after development the split is loose
    (docs/usage.md); developed outputs are split on the developed image instead
    (:func:`denoise_raw_file`)."""
    if chroma_strength is None or chroma_strength == strength:
        return blend(raw.mosaic, clean, strength)
    wb = np.asarray(raw.wb[:3], dtype=np.float64)
    wb = np.where(np.isfinite(wb) & (wb > 0), wb, 1.0)
    weights = (np.asarray(LUMA) * wb).astype(np.float32)  # so that a gray change, 1/wb a channel, has luma 1
    s, c = np.float32(strength), np.float32(chroma_strength)
    out = blend(raw.mosaic, clean, strength)  # a leading row or column outside the RGGB grid keeps this
    dy, dx = rggb_offset(raw.pattern)
    change = (np.asarray(clean, np.float32) - raw.mosaic)[dy:, dx:]
    noisy = raw.mosaic[dy:, dx:]
    H, W = change.shape
    inv = (1.0 / wb).astype(np.float32)
    even_col = np.arange(W) % 2 == 0
    for r0 in range(0, H, STRIP_ROWS):  # strips: a few rows of float copies, whatever the mosaic's size
        r1 = min(H, r0 + STRIP_ROWS)
        luma = demosaic_mhc(change, (r0, r1)) @ weights
        red_row = (np.arange(r0, r1) % 2 == 0)[:, None]
        gray = np.where(red_row & even_col, inv[0], np.where(~red_row & ~even_col, inv[2], inv[1]))
        out[dy + r0 : dy + r1, dx:] = noisy[r0:r1] + c * change[r0:r1] + (s - c) * luma * gray
    return out


STRIP_ROWS = 256


def _denoise_layout(model: Runner, mosaic: np.ndarray, pattern: str, noise: NoiseParams, tile: int | None,
                    overlap: int | None, on_tile: Callable[[int, int], None] | None,
                    factor: np.ndarray | None = None) -> np.ndarray:
    """One pass of the model over ``mosaic`` in CFA layout ``pattern`` (``factor``: see
    :func:`denoise_mosaic`)."""
    from ..imaging.raw_noise import raw_noise_maps

    planes, offset = pack(mosaic, pattern)
    maps = raw_noise_maps(noise.a, noise.b)
    if factor is None:
        x = np.ascontiguousarray(planes, dtype=np.float32)[None]
        y = run_image(model, x, tile, overlap, on_tile, constants=maps)
    else:
        f = pack(factor, pattern)[0].mean(axis=0)
        x = np.concatenate([planes, f[None] * np.float32(maps[0]), f[None] * np.float32(maps[1])]).astype(np.float32)
        y = run_image(model, x[None], tile, overlap, on_tile)
    return unpack(y[0, :4], offset, mosaic)


def _output_ext(dst: str | os.PathLike) -> str:
    ext = Path(dst).suffix.lower()
    if ext not in RAW_OUTPUT_EXTS:
        raise ImageError(f"{dst}: unsupported output type {ext or '(none)'} for a raw file (use .dng, .tif, .png or .jpg)")
    return ext


def developed(src: str | os.PathLike, raw: RawImage, mosaic: np.ndarray | None, bits: int = 16) -> np.ndarray:
    """H x W x 3 float sRGB in [0, 1]: LibRaw's development of ``mosaic`` (None: the file's own)."""
    from ..io.raw import develop

    rgb = develop(src, raw, mosaic, bits)
    out = rgb.astype(np.float32)  # not rgb / max: a float64 copy, twice the size, for a 24 MP image 576 MB
    out *= np.float32(1.0 / np.iinfo(rgb.dtype).max)
    return out


def write_raw_output(dst: str | os.PathLike, src: str | os.PathLike, raw: RawImage, mosaic: np.ndarray | None,
                     rgb: np.ndarray | None = None, quality: int | None = None, done: str = "denoised",
                     depth: str | None = None) -> None:
    """Write the denoised ``mosaic`` by ``dst``'s extension: ``.dng`` the mosaic itself;
    ``.tif/.tiff`` 16-bit sRGB developed by LibRaw with the camera's white balance; ``.png``,
    ``.jpg`` and ``.bmp`` the same developed 8-bit (``rgb``, float in [0, 1]: that developed image
    instead; ``quality``: JPEG and HEIC, ``depth``: a developed output's 8, 16 or float samples,
    see :func:`n3cli.io.images.write_image`). ``done``: what the Software tag says n3 did. Atomic."""
    from ..io.images import DEPTHS, Image, check_depth, write_image

    ext = _output_ext(dst)
    if ext == ".dng":
        # the original's NoiseProfile describes the noise that is now gone: a raw developer that
        # reads it would denoise the result a second time
        write_dng(dst, replace(raw, noise_profile=None), mosaic)
        return
    from .. import __version__
    from ..io.metadata import exif_bytes, srgb_icc

    check_depth(dst, depth)
    bits = (8 if depth == "8" else 16) if depth else 16 if ext in (".tif", ".tiff") else 8
    # LibRaw turns the pixels upright, so the orientation tag stays behind
    exif = exif_bytes({**raw.tags, 271: raw.make, 272: raw.model, 305: f"n3 {__version__} ({done})"})
    rgb = developed(src, raw, mosaic, bits) if rgb is None else rgb  # (clipped as it is quantised)
    dtype = DEPTHS[depth] if depth else np.dtype(np.uint16 if bits == 16 else np.uint8)
    write_image(dst, Image(rgb, dtype, icc=srgb_icc(), exif=exif), quality=quality)


def denoise_raw_file(src: str | os.PathLike, dst: str | os.PathLike, model: Runner,
                     noise: tuple[float, float] | None = None, tile: int | None = None,
                     overlap: int | None = None, on_tile: Callable[[int, int], None] | None = None,
                     strength: float = 1.0, compare: str | None = None,
                     profiles: NoiseProfiles | None = None, tta: bool = False,
                     chroma_strength: float | None = None, quality: int | None = None,
                     depth: str | None = None) -> dict[str, Any]:
    """Read the raw file ``src``, denoise its mosaic with the RAW ``model``, write ``dst``
    (format from the extension, see :func:`write_raw_output`); ``profiles``: the user's noise
    profiles (:func:`noise_params`); ``tta``, ``chroma_strength``: see :func:`denoise_mosaic`;
    ``quality``, ``depth``: see :func:`write_raw_output`. Returns ``{"model", "noise"}``
    (and ``"compare"``: ``compare``, the path the side-by-side crop of both developments was
    written to, when one is given; ``"warning"``: :func:`outside_training_range`'s reason, or that
    the noise was guessed)."""
    check_raw_output(dst, depth)  # before the slow part
    raw = read_raw(src)
    return write_denoised_raw(src, dst, raw, model, noise_params(raw, noise, profiles), tile, overlap, on_tile,
                              strength, compare, tta, chroma_strength, quality, depth)


def check_raw_output(dst: str | os.PathLike, depth: str | None = None) -> None:
    """N3Error unless ``dst`` is a raw file's output (:func:`write_raw_output`) that holds ``depth``."""
    from ..io.images import check_depth

    _output_ext(dst)
    check_depth(dst, depth)


def write_denoised_raw(src: str | os.PathLike, dst: str | os.PathLike, raw: RawImage, model: Runner,
                       params: NoiseParams, tile: int | None = None, overlap: int | None = None,
                       on_tile: Callable[[int, int], None] | None = None, strength: float = 1.0,
                       compare: str | None = None, tta: bool = False, chroma_strength: float | None = None,
                       quality: int | None = None, depth: str | None = None,
                       factor: np.ndarray | None = None) -> dict[str, Any]:
    """:func:`denoise_raw_file` on ``raw``, read from ``src`` (or made from it: a merged burst,
    with ``factor`` as :func:`denoise_mosaic` takes it), at the noise ``params``."""
    ext = _output_ext(dst)
    if ext == ".dng":  # not rendered yet: split in linear camera RGB (:func:`blend_mosaic`)
        clean = denoise_mosaic(model, raw, params, tile, overlap, on_tile, strength, tta, chroma_strength, factor)
        noisy_rgb = rgb = None
    else:
        clean, rgb, noisy_rgb = _denoised_developed(src, raw, model, params, tile, overlap, on_tile, tta, strength,
                                                    chroma_strength, factor)
        noisy_rgb = noisy_rgb if compare and factor is None else None  # a 24 MP image is 288 MB a copy
    write_raw_output(dst, src, raw, clean, rgb, quality, depth=depth)
    used = _used(model, params)
    if compare:
        from .compare import write_compare

        noisy_rgb = developed(src, raw, None) if noisy_rgb is None else noisy_rgb
        used["compare"] = write_compare(compare, noisy_rgb, developed(src, raw, clean) if rgb is None else rgb)
    return used


def _used(model: Runner, params: NoiseParams) -> dict[str, Any]:
    """What a RAW model denoised a file with: ``{"model", "noise"}``, and ``"warning"`` where the
    noise was guessed or lies outside the model's training range."""
    used: dict[str, Any] = {"model": model.info.name, "noise": params}
    outside = outside_training_range(model.info, params)
    if params.source in (GUESSED, GUESSED_A):
        used["warning"] = f"noise {params.source}; give it with --noise A,B if the result is off"
    elif outside:
        used["warning"] = outside
    return used


def develop_raw_file(src: str | os.PathLike, model: Runner | None = None, tile: int | None = None,
                     overlap: int | None = None, on_tile: Callable[[int, int], None] | None = None,
                     profiles: NoiseProfiles | None = None, tta: bool = False, strength: float = 1.0,
                     chroma_strength: float | None = None) -> tuple[RawImage, np.ndarray, dict]:
    """The raw file ``src`` developed by LibRaw (16-bit, the camera's white balance) to float sRGB
    ``H x W x 3`` in [0, 1], its mosaic denoised first by the RAW ``model`` when one is given (the
    noise read as :func:`noise_params` reads it, ``profiles`` included; ``strength`` and
    ``chroma_strength`` as :func:`denoise_raw_file` applies them to a developed output). Returns
    (the file, the image, what was used: :func:`denoise_raw_file`'s keys, empty without a model)."""
    raw = read_raw(src)
    if model is None:
        return raw, developed(src, raw, None), {}
    params = noise_params(raw, None, profiles)
    clean, rgb, _ = _denoised_developed(src, raw, model, params, tile, overlap, on_tile, tta, strength,
                                        chroma_strength)
    return raw, developed(src, raw, clean) if rgb is None else rgb, _used(model, params)


def _denoised_developed(src, raw: RawImage, model: Runner, params: NoiseParams, tile, overlap, on_tile, tta: bool,
                        strength: float, chroma_strength: float | None, factor: np.ndarray | None = None
                        ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """For a developed output: (the denoised mosaic at ``strength``, then None, None), or where
    ``chroma_strength`` differs, (the fully denoised mosaic, the result split into luminance and
    colour on the image as developed, as a photo is, and the input's development)."""
    split = chroma_strength is not None and chroma_strength != strength
    clean = denoise_mosaic(model, raw, params, tile, overlap, on_tile, 1.0 if split else strength, tta, factor=factor)
    if not split:
        return clean, None, None
    noisy_rgb = developed(src, raw, None if factor is None else raw.mosaic)  # a burst: its merge
    return clean, blend(noisy_rgb, developed(src, raw, clean), strength, chroma_strength), noisy_rgb
