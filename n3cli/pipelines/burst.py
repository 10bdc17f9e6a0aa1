"""Denoising a burst: several photos of one scene registered onto the first, merged where they
agree (:mod:`n3cli.imaging.merge`), and the merge denoised with a noise map that says how much
each pixel was averaged: full strength where a moving thing left only the reference, gently
where every frame counted."""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np

from ..errors import N3Error
from ..imaging.align import Registrar, warp
from ..imaging.merge import Merge
from .arrays import as_float_image, as_runner
from .denoise import denoise, estimate_level


def merge_burst(frames: Iterable[np.ndarray], on_frame: Callable[[int, dict], None] | None = None,
                on_merged: Callable[[np.ndarray, np.ndarray, np.ndarray], None] | None = None
                ) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    """Register every frame onto the first and merge them.

    ``frames``: H x W x C arrays of one size (float in [0, 1], uint8 or uint16), the reference
    first; read one at a time, so an iterator of files holds one frame at a time. Returns (the merge,
    float32; the factor by which each pixel's noise fell, :meth:`~n3cli.imaging.merge.Merge.result`;
    one record per later frame: ``{"frame", "used"}`` with ``"matches"`` and ``"share"`` (the share
    of the reference's pixels it counted for) where it was registered, else ``"reason"``).
    ``on_frame(i, record)`` is called as each frame is done, and ``on_merged(frame, H, weights)``
    for each frame merged: the frame as given, its homography (:meth:`~n3cli.imaging.align.
    Registrar.register`) and its weights on the reference's grid."""
    it = iter(frames)
    try:
        reference = _float(next(it))
    except StopIteration:
        raise N3Error("a burst needs frames") from None
    registrar, merge, records = Registrar(reference), Merge(reference), []
    for i, given in enumerate(it, start=1):
        frame = _float(given)
        if frame.shape != reference.shape:
            raise N3Error(f"frame {i + 1} is {_size(frame)}, the first {_size(reference)}: a burst's frames are one size")
        H, matches = registrar.register(frame)
        share = None
        if H is not None:
            warped, valid, variance = warp(frame, H, reference.shape[:2])
            weights = merge.weights(warped, valid)
            share = merge.add(warped, valid, variance, weights)
            if on_merged is not None:
                on_merged(given, H, weights)
        rec = _record(i, matches, share)
        records.append(rec)
        if on_frame is not None:
            on_frame(i, rec)
    merged, factor = merge.result()
    return merged, factor, records


def denoise_burst(model: Any, frames: Iterable[np.ndarray], sigma: float | None = None, tile: int | None = None,
                  overlap: int | None = None, strength: float = 1.0,
                  on_tile: Callable[[int, int], None] | None = None, tta: bool = False,
                  chroma_strength: float | None = None, kind: str | None = None,
                  on_frame: Callable[[int, dict], None] | None = None) -> tuple[np.ndarray, dict]:
    """Merge a burst (:func:`merge_burst`) and denoise the merge.

    ``model``: as :func:`~n3cli.pipelines.denoise.denoise` takes it. ``sigma``: the noise level of
    one frame (0-255), default read from the first; the merge's is that times the factor by which
    each pixel's noise fell (:meth:`~n3cli.imaging.merge.Merge.result`), given per pixel to the
    models that take a noise map (their median to those that do not). Reading the merge's level
    instead scored lower: the resampled frames' noise is correlated, and the estimator reads only
    its finest scale (``benchmarks/burst.py``).
    ``strength`` blends with the merge (0: the merge alone). ``kind``: the noise's kind
    (``gaussian``/``real``) if already read. Returns (the result in the first frame's type and
    shape, what was used: ``frames`` (given), ``merged`` (used, the first included), ``sigma``
    (one frame's level), ``sigma_merged`` (the median of the merge's), ``frame_records``)."""
    first, it = first_frame(frames)
    reference, restore = as_float_image(first)
    merged, factor, records = merge_burst(_chain(reference, it), on_frame)
    out, used = denoise_merge(model, reference, merged, factor, sigma, tile, overlap, strength, on_tile, tta,
                              chroma_strength, kind)
    return restore(out), {"frames": 1 + len(records), "merged": 1 + sum(r["used"] for r in records),
                          "frame_records": records, **used}


def denoise_merge(model: Any, reference: np.ndarray, merged: np.ndarray, factor: np.ndarray,
                  sigma: float | None = None, tile: int | None = None, overlap: int | None = None,
                  strength: float = 1.0, on_tile: Callable[[int, int], None] | None = None, tta: bool = False,
                  chroma_strength: float | None = None, kind: str | None = None) -> tuple[np.ndarray, dict]:
    """A merge (:func:`merge_burst`) denoised; the arguments as :func:`denoise_burst` takes them,
    ``reference`` the first frame (float). Returns (float32 result, ``sigma`` and
    ``sigma_merged`` where the model is told a level)."""
    runner = as_runner(model)
    info = runner.info
    used: dict = {}
    level: Any = None
    if info.takes_noise_map or info.noise.get("kind") == "fixed":
        single = float(sigma) if sigma is not None else float(estimate_level(info, reference, kind))
        level = (single * factor).astype(np.float32)
        used.update(sigma=single, sigma_merged=float(np.median(level)))
        if not info.takes_noise_map:
            level = used["sigma_merged"]
    return denoise(runner, merged, level, tile, overlap, strength, on_tile, tta, chroma_strength), used


def merge_raw_burst(raws: Iterable[Any], on_frame: Callable[[int, dict], None] | None = None
                    ) -> tuple[Any, np.ndarray, list[dict]]:
    """:func:`merge_burst` for camera raw files (:class:`~n3cli.io.raw.RawImage`, the first the
    reference), on their Bayer mosaics, before any development.

    Frames are registered on a brightness proxy at half size (the square root of each 2 x 2
    cell's mean: raw data is linear and mostly dark), then demosaiced, resampled onto the first
    frame's photosites and sampled in its colour filter's layout (:func:`_warp_mosaic`): the
    merge is a mosaic again, for the RAW model. Returns (the first file with the merged mosaic;
    the factor by which the noise fell, of the mosaic's shape, for
    :func:`n3cli.pipelines.raw.denoise_mosaic`; the frame records)."""
    from dataclasses import replace

    from ..imaging.bayer import pack, unpack

    it = iter(raws)
    try:
        first = next(it)
    except StopIteration:
        raise N3Error("a burst needs frames") from None
    planes, offset = pack(first.mosaic, first.pattern)
    reference = np.ascontiguousarray(planes.transpose(1, 2, 0), dtype=np.float32)
    registrar, merge, records = Registrar(_proxy(reference)), Merge(reference), []
    for i, raw in enumerate(it, start=1):
        if raw.mosaic.shape != first.mosaic.shape or raw.pattern != first.pattern:
            raise N3Error(f"frame {i + 1} is a {raw.mosaic.shape[1]}x{raw.mosaic.shape[0]} {raw.pattern} mosaic, the "
                          f"first a {first.mosaic.shape[1]}x{first.mosaic.shape[0]} {first.pattern} one")
        frame = np.ascontiguousarray(pack(raw.mosaic, raw.pattern)[0].transpose(1, 2, 0), dtype=np.float32)
        H, matches = registrar.register(_proxy(frame))
        rec = _record(i, matches, None if H is None else merge.add(*_warp_mosaic(frame, H)))
        records.append(rec)
        if on_frame is not None:
            on_frame(i, rec)
    merged, factor = merge.result()
    mosaic = unpack(merged.transpose(2, 0, 1), offset, first.mosaic)
    full = np.ones(first.mosaic.shape, np.float32)  # photosites outside the packed cells: the first frame's
    dy, dx = offset
    h, w = factor.shape
    full[dy : dy + 2 * h, dx : dx + 2 * w] = np.repeat(np.repeat(factor, 2, axis=0), 2, axis=1)
    return replace(first, mosaic=mosaic), full, records


def _warp_mosaic(frame: np.ndarray, H: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`~n3cli.imaging.align.warp` for packed planes (h x w x 4, RGGB) through ``H`` (found
    on the proxy's grid of cell centres): demosaiced (Malvar-He-Cutler), resampled at full size,
    and each photosite's own colour taken back. A colour plane alone is sampled every other
    photosite and aliased: resampled by itself, detail came back wrong, and on CBSD68 raw bursts
    at base ISO the burst lost 1.1 dB to one frame; demosaiced first (green guiding red and blue),
    it gained 1.5 (``benchmarks/burst.py --raw``)."""
    from ..imaging.bayer import demosaic_mhc

    h, w = frame.shape[:2]
    m = np.empty((2 * h, 2 * w), np.float32)
    m[0::2, 0::2], m[0::2, 1::2], m[1::2, 0::2], m[1::2, 1::2] = (frame[:, :, p] for p in range(4))
    T = np.float64([[2, 0, 0.5], [0, 2, 0.5], [0, 0, 1]])  # proxy pixel -> the cells' photosite grid
    out, inside, share = warp(demosaic_mhc(m), T @ H @ np.linalg.inv(T), (2 * h, 2 * w))
    planes = np.stack([out[0::2, 0::2, 0], out[0::2, 1::2, 1], out[1::2, 0::2, 1], out[1::2, 1::2, 2]], axis=2)
    valid = inside[0::2, 0::2] & inside[0::2, 1::2] & inside[1::2, 0::2] & inside[1::2, 1::2]
    variance = (share[0::2, 0::2] + share[0::2, 1::2] + share[1::2, 0::2] + share[1::2, 1::2]) / 4
    return planes, valid, variance


def _record(i: int, matches: int, share: float | None) -> dict:
    """Frame ``i``'s (0-based) record: merged with ``share`` of the reference's pixels, or left out."""
    if share is None:
        return {"frame": i + 1, "used": False, "matches": matches,
                "reason": f"cannot be registered onto the first frame ({matches} matching features)"}
    return {"frame": i + 1, "used": True, "matches": matches, "share": round(share, 4)}


def _proxy(planes: np.ndarray) -> np.ndarray:
    """A raw frame's packed planes (h x w x 4) as one brightness channel registration can see."""
    return np.sqrt(np.clip(planes.mean(axis=2, keepdims=True), 0.0, None))


def first_frame(frames: Iterable[np.ndarray]) -> tuple[np.ndarray, Iterator[np.ndarray]]:
    """(a burst's first frame, an iterator over the rest); N3Error for no frames at all."""
    it = iter(frames)
    try:
        return next(it), it
    except StopIteration:
        raise N3Error("a burst needs frames") from None


def _chain(first: np.ndarray, rest: Iterable[np.ndarray]):
    yield first
    yield from rest


def _float(pixels: np.ndarray) -> np.ndarray:
    return as_float_image(pixels)[0]


def _size(x: np.ndarray) -> str:
    return f"{x.shape[1]}x{x.shape[0]}" + ("" if x.shape[2] == 1 else f"x{x.shape[2]}")
