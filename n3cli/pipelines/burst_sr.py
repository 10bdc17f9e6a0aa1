"""Enlarging a burst: several photos of one scene give one enlargement with detail no single frame
holds (:mod:`n3cli.imaging.superres`). The frames are registered onto the first and merged as
for denoising (:mod:`n3cli.pipelines.burst`); the SR model enlarges the merge, and that
enlargement is refined, window by window, until shrunk back onto each frame's grid it matches the
frames themselves, where they agree with the first."""
from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from ..imaging.superres import Frame, Reconstruction
from ..tiling import blend_weights, plan_grid
from .arrays import as_float_image
from .burst import _chain, first_frame, merge_burst
from .sr import output_size, sr_factor, upscale

LAMBDA = 0.004
"""How strongly the enlargement is held to the SR model's on clean frames. Set on synthetic 4-frame
bursts of Set5 (`benchmarks/burst_sr.py --lam`): x2 0.003 / 0.01 / 0.03 gave 36.99 / 36.82 / 36.25
dB, x4 0.001 / 0.003 / 0.01 29.80 / 29.83 / 29.52, and frames shrunk otherwise than the model
assumes (box) 35.85 at 0.004 against 35.68 at 0.01."""
LAMBDA_NOISE = 1500.0
"""What one frame's noise variance (in [0, 1] units, above :data:`NOISE_FLOOR`) adds to it: noisy
frames are trusted less, or the fit would put their noise back. White noise 5 (x2, 4 frames) was
best at 0.3-1 (33.05 / 33.12 dB, 0.1: 32.36), 10 with the merge denoised at 1-3 (31.69 / 31.58,
0.3: 30.91)."""
NOISE_FLOOR = 1.5
"""What the noise estimator reads on clean photos (0-255; Set14's images shrunk to half: 0.9-1.7,
their own grain and texture): no noise to be wary of."""
WINDOW = 192
"""Reference pixels a refinement window covers per side, before its margin."""
MARGIN = 12
"""Reference pixels of context around each window: a frame's pixel constrains the enlargement
over its shrinking filter's reach (2 pixels) plus the registration's error."""


def upscale_burst(model: Any, frames: Iterable[np.ndarray], scale: float, tile: int | None = None,
                  overlap: int | None = None, on_tile: Callable[[int, int], None] | None = None,
                  on_frame: Callable[[int, dict], None] | None = None, sigma: float | None = None,
                  prepare: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray] | None = None,
                  on_refine: Callable[[int, int], None] | None = None) -> tuple[np.ndarray, dict]:
    """Enlarge a burst by ``scale`` (1 < scale <= 4, as :func:`~n3cli.pipelines.sr.upscale`).

    ``frames``: H x W x C arrays of one size (float in [0, 1], uint8 or uint16), the reference
    first. All frames are held until the end (the refinement reads each of them per window).
    ``model``: an SR model or runner. ``sigma``: one frame's noise level (0-255; default read
    from the first): noisier frames hold the result nearer the model's enlargement.
    ``prepare(reference, merge, factor)``: what the merge becomes before the model enlarges it (a
    denoiser, told the factor by which the merge lowered each pixel's noise). ``on_tile`` reports
    the model's tiles, ``on_refine`` the refinement's windows, ``on_frame(i, record)`` each frame.
    Returns (the enlargement, in the first frame's type; ``frames``, ``merged``, ``sigma``,
    ``frame_records``)."""
    from ..imaging.estimate import estimate_sigma

    first, it = first_frame(frames)
    reference, restore = as_float_image(first)
    shape = reference.shape[:2]
    # frames are kept as they came (uint8 takes a quarter of float32's memory); windows convert their part
    kept = [Frame(first, np.eye(3), np.ones(shape, np.float32))]

    def keep(pixels: np.ndarray, H: np.ndarray, weights: np.ndarray) -> None:
        kept.append(Frame(pixels, H, _onto_frame(weights, H, pixels.shape[:2])))

    merged, factor, records = merge_burst(_chain(reference, it), on_frame, keep)
    if prepare is not None:
        merged = prepare(reference, merged, factor)
    k = sr_factor(scale)
    x = upscale(model, merged, k, tile, overlap, on_tile)
    single = float(sigma) if sigma is not None else estimate_sigma(reference)
    used = {"frames": 1 + len(records), "merged": len(kept), "sigma": single, "frame_records": records}
    if len(kept) > 1:
        lam = LAMBDA + LAMBDA_NOISE * max(single**2 - NOISE_FLOOR**2, 0.0) / 255.0**2
        x = refine(x, kept, k, lam, on_refine)
    if k != scale:
        from ..imaging.resize import resize_to

        x = resize_to(x, *output_size(*shape, scale))
    return restore(np.clip(x, 0.0, 1.0)), used


def refine(x0: np.ndarray, frames: list[Frame], scale: int, lam: float,
           on_window: Callable[[int, int], None] | None = None) -> np.ndarray:
    """``x0`` (the reference enlarged by ``scale``, float32) refined by the frames
    (:class:`~n3cli.imaging.superres.Reconstruction`) in windows of the reference that overlap
    and are cross-faded, as the models' tiles are (:mod:`n3cli.tiling`)."""
    H, W = frames[0].pixels.shape[:2]
    solver = Reconstruction(frames, scale, lam)
    rows, cols = plan_grid(H, W, WINDOW, MARGIN)
    out = np.zeros_like(x0)
    total, done = len(rows) * len(cols), 0
    for r in rows:
        wr = blend_weights(r, H, MARGIN, scale)
        for c in cols:
            wc = blend_weights(c, W, MARGIN, scale)
            at = (slice(r.start * scale, r.stop * scale), slice(c.start * scale, c.stop * scale))
            part = solver.solve(x0[at], r.start, c.start)
            out[at] += part * (wr[:, None] * wc[None, :])[:, :, None]
            done += 1
            if on_window is not None:
                on_window(done, total)
    return out


def _onto_frame(weights: np.ndarray, H: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A map on the reference's grid (the merge's weights) carried onto a frame's own grid."""
    import cv2

    return cv2.warpPerspective(weights, H, (shape[1], shape[0]), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_CONSTANT, borderValue=0)
