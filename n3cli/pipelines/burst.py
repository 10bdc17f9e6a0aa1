"""Denoising a burst: several photos of one scene registered onto the first, merged where they
agree (:mod:`n3cli.imaging.merge`), and the merge denoised with a noise map that says how much
each pixel was averaged: full strength where a moving thing left only the reference, gently
where every frame counted."""
from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from ..errors import N3Error
from ..imaging.align import Registrar, warp
from ..imaging.merge import Merge
from .arrays import as_float_image, as_runner
from .denoise import denoise, estimate_level


def merge_burst(frames: Iterable[np.ndarray], on_frame: Callable[[int, dict], None] | None = None
                ) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    """Register every frame onto the first and merge them.

    ``frames``: H x W x C arrays of one size (float in [0, 1], uint8 or uint16), the reference
    first; read one at a time, so an iterator of files holds one frame at a time. Returns (the merge,
    float32; the factor by which each pixel's noise fell, :meth:`~n3cli.imaging.merge.Merge.result`;
    one record per later frame: ``{"frame", "used"}`` with ``"matches"`` and ``"share"`` (the share
    of the reference's pixels it counted for) where it was registered, else ``"reason"``).
    ``on_frame(i, record)`` is called as each frame is done."""
    it = iter(frames)
    try:
        reference = _float(next(it))
    except StopIteration:
        raise N3Error("a burst needs frames") from None
    registrar, merge, records = Registrar(reference), Merge(reference), []
    for i, frame in enumerate(it, start=1):
        frame = _float(frame)
        if frame.shape != reference.shape:
            raise N3Error(f"frame {i + 1} is {_size(frame)}, the first {_size(reference)}: a burst's frames are one size")
        H, matches = registrar.register(frame)
        if H is None:
            rec = {"frame": i + 1, "used": False, "matches": matches,
                   "reason": f"cannot be registered onto the first frame ({matches} matching features)"}
        else:
            share = merge.add(*warp(frame, H, reference.shape[:2]))
            rec = {"frame": i + 1, "used": True, "matches": matches, "share": round(share, 4)}
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
    """Merge a burst (:func:`merge_burst`) and denoise the merge: the cleaner of one frame's
    result and the merge's, wherever the scene stood still.

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
    it = iter(frames)
    try:
        first = next(it)
    except StopIteration:
        raise N3Error("a burst needs frames") from None
    reference, restore = as_float_image(first)
    merged, factor, records = merge_burst(_chain(reference, it), on_frame)
    runner = as_runner(model)
    info = runner.info
    used: dict = {"frames": 1 + len(records), "merged": 1 + sum(r["used"] for r in records),
                  "frame_records": records}
    level: Any = None
    if info.takes_noise_map or info.noise.get("kind") == "fixed":
        single = float(sigma) if sigma is not None else float(estimate_level(info, reference, kind))
        level = (single * factor).astype(np.float32)
        used.update(sigma=single, sigma_merged=float(np.median(level)))
        if not info.takes_noise_map:
            level = used["sigma_merged"]
    out = denoise(runner, merged, level, tile, overlap, strength, on_tile, tta, chroma_strength)
    return restore(out), used


def _chain(first: np.ndarray, rest: Iterable[np.ndarray]):
    yield first
    yield from rest


def _float(pixels: np.ndarray) -> np.ndarray:
    return as_float_image(pixels)[0]


def _size(x: np.ndarray) -> str:
    return f"{x.shape[1]}x{x.shape[0]}" + ("" if x.shape[2] == 1 else f"x{x.shape[2]}")
