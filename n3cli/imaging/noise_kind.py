"""What kind of noise a photo holds: white Gaussian noise, or the noise of a real camera.

White noise is independent from pixel to pixel and from channel to channel. A camera's is not:
demosaicing spreads it to neighbours, the colour matrix mixes it across channels, sharpening and
JPEG reshape it. Both show in the flattest windows of the photo, where the differences between
pixels are mostly noise:

- ``step_ratio``: the variance of 2-pixel differences over that of 1-pixel differences. White
  noise gives 1 (both are twice the noise variance); noise correlated between neighbours gives
  more, because neighbours cancel in the 1-pixel difference.
- ``channel_correlation``: the mean absolute correlation between the channels' 1-pixel
  differences. White noise gives about 0.

Each window's differences are taken about their mean, so a smooth ramp in a window does not count.
On CBSD68 with Gaussian noise (σ 5-50) and the same images through the camera-noise synthesis,
plus camera JPEGs developed from real raw files, the two features separate the kinds
(docs/usage.md, "Which model a photo gets"; ``benchmarks/noise_kind.py``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

WINDOW = 12
"""Side of the square windows the photo is cut into."""
FRACTION = 0.05
"""Share of the windows measured: the flattest ones."""
WHITE_STEP_RATIO = 1.3
"""At most this step ratio for noise to count as white (Gaussian σ 10-50 on CBSD68: at most 1.28;
camera noise: at least 1.42)."""
WHITE_CHANNEL_CORRELATION = 0.5
"""At most this channel correlation for noise to count as white."""
MIN_WINDOWS = 4
DEAD_FLAT = 0.25 / 255.0
"""Windows whose brightness varies less than this hold no noise to measure (clipped or synthetic)."""


@dataclass(frozen=True)
class NoiseKind:
    """``kind``: ``gaussian`` (white noise) or ``real`` (a camera's); the features it was read from
    (None where the photo had too few windows to measure); ``reason``: one line for people."""

    kind: str
    step_ratio: float | None
    channel_correlation: float | None
    windows: int
    reason: str


def _flattest(px: np.ndarray, window: int, fraction: float) -> list[tuple[int, int]]:
    gray = px.mean(axis=2, dtype=np.float32)
    h, w = gray.shape[0] // window, gray.shape[1] // window
    if h == 0 or w == 0:
        return []
    blocks = gray[: h * window, : w * window].reshape(h, window, w, window)
    spread = blocks.std(axis=(1, 3)).ravel()
    level = blocks.mean(axis=(1, 3)).ravel()
    # away from black and white, where clipping flattens noise; and with some noise in them
    ok = np.flatnonzero((level > 0.06) & (level < 0.94) & (spread > DEAD_FLAT))
    if len(ok) < MIN_WINDOWS:
        return []
    take = ok[np.argsort(spread[ok], kind="stable")[: max(MIN_WINDOWS, int(len(ok) * fraction))]]
    return [(int(i // w) * window, int(i % w) * window) for i in take]


def _differences(t: np.ndarray, step: int) -> np.ndarray:
    """The window's ``step``-pixel differences, across and down, each about its mean: (n, C)."""
    C = t.shape[2]
    across = (t[:, step:] - t[:, :-step]).reshape(-1, C)
    down = (t[step:] - t[:-step]).reshape(-1, C)
    return np.concatenate([across - across.mean(0), down - down.mean(0)])


def noise_kind(pixels: np.ndarray, window: int = WINDOW, fraction: float = FRACTION) -> NoiseKind:
    """Read whether the noise of ``pixels`` (H x W x C float in [0, 1]; C = 1 or 3) is white
    Gaussian noise or a real camera's, from its flattest windows. A photo too small or too clean
    to measure reads as ``gaussian``, the default models' kind. A gray image is judged by the
    step ratio alone."""
    px = np.asarray(pixels)
    if px.ndim == 2:
        px = px[:, :, None]
    windows = _flattest(px, window, fraction)
    if not windows:
        return NoiseKind("gaussian", None, None, 0, "too small or too clean to tell the noise's kind")
    # only the windows in float64: the whole photo in float64 would be 576 MB at 24 MP
    tiles = [px[y : y + window, x : x + window].astype(np.float64) for y, x in windows]
    d1 = np.concatenate([_differences(t, 1) for t in tiles])
    d2 = np.concatenate([_differences(t, 2) for t in tiles])
    v1 = d1.var(axis=0)
    step = float(d2.var(axis=0).sum() / v1.sum())
    live = v1 > 1e-12
    if px.shape[2] == 1:
        corr = 0.0
    elif live.sum() < 2:
        corr = 1.0  # a channel without noise: not independent noise in each channel
    else:
        c = np.corrcoef(d1[:, live].T)
        corr = float(np.abs(c[np.triu_indices(len(c), 1)]).mean())
    white = step <= WHITE_STEP_RATIO and corr <= WHITE_CHANNEL_CORRELATION
    why = (f"white noise (step ratio {step:.2f}, channel correlation {corr:.2f})" if white else
           f"camera noise (step ratio {step:.2f}, channel correlation {corr:.2f})")
    return NoiseKind("gaussian" if white else "real", step, corr, len(windows), why)
