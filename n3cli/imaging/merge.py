"""Merging registered burst frames into one image with less noise, without ghosts.

Averaging N frames of a still scene divides the noise's variance by N. Where something moved
(a walker, leaves, a misregistered edge) the frames disagree and an average would show each
position at once; there a frame's weight falls to nothing and the reference stays as it was. A
frame's disagreement is judged on the smoothed difference to the reference and on its local
energy (the smoothed squared difference), each in units of its own spread (the median absolute
deviation) among the pixels of like brightness: the noise, measured as it is, correlated or
not, growing with brightness or not, without a model of it. Most of a burst is still, so the
median reads the noise and not the motion.

What the merge returns besides the image is how much each pixel was averaged: the factor by
which its noise's standard deviation fell (1 where only the reference counts), counting what
resampling a frame onto the reference's grid took from its noise (:func:`n3cli.imaging.align.
resampled_variance`), which becomes a noise-level map for the denoiser.
"""
from __future__ import annotations

import numpy as np

AGREE = 2.5
"""A frame whose smoothed difference to the reference is under this many of its spreads counts fully."""
DISAGREE = 4.0
"""At this many spreads and over, a frame counts for nothing there (linear in between)."""
SMOOTH = 2.0
"""The difference is judged after a Gaussian blur of this sigma (pixels): single noisy pixels do not decide."""
ENERGY_AGREE = 6.0
"""The same for the change's local energy, in its own spreads above its typical value (it is
skewed: noise alone reaches 4 spreads more often than the mean change does)."""
ENERGY_DISAGREE = 10.0
LEVELS = 8
"""Brightness bands the noise's spread is read in (:meth:`Merge.weights`)."""
SAMPLE = 7
"""The spreads are read on every SAMPLE-th pixel."""
_SCALE = 1024  # brightness steps the bands' values are interpolated on


class Merge:
    """A running weighted mean of frames onto ``reference`` (H x W x C float32 in [0, 1]): only
    the reference, the sums and one frame are held, whatever the number of frames."""

    def __init__(self, reference: np.ndarray) -> None:
        self.reference = np.ascontiguousarray(reference, dtype=np.float32)
        self._sum = self.reference.copy()
        self._weight = np.ones(reference.shape[:2], np.float32)
        self._squares = np.ones(reference.shape[:2], np.float32)
        self._brightness: np.ndarray | None = None
        self._index: np.ndarray | None = None
        self.frames = 1

    def add(self, frame: np.ndarray, valid: np.ndarray | None = None, variance: np.ndarray | None = None,
            weights: np.ndarray | None = None) -> float:
        """Add a frame registered onto the reference (:func:`n3cli.imaging.align.warp`), with
        ``valid`` where it has data and ``variance`` the share of its noise's variance resampling
        left (default 1); returns the share of the reference's pixels it counted for.
        ``weights``: its :meth:`weights`, where the caller has them already."""
        w = self.weights(frame, valid) if weights is None else weights
        self._sum += frame * w[:, :, None]
        self._weight += w
        self._squares += w * w * (1.0 if variance is None else variance)
        self.frames += 1
        return float(w.mean())

    def weights(self, frame: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
        """How much ``frame`` counts at each pixel, 0 to 1 (see the module's docstring)."""
        import cv2

        change = frame - self.reference
        inside = np.ones(change.shape[:2], bool) if valid is None else valid
        # the mean change finds a faint shift of brightness over an area; the change's energy
        # finds texture that differs with the same mean (a patterned coat passing a wall)
        diff = cv2.GaussianBlur(_channel_mean(change), (0, 0), SMOOTH)
        energy = cv2.GaussianBlur(_channel_mean(change * change), (0, 0), SMOOTH)
        _, spread = self._bands(diff, inside)
        typical, energy_spread = self._bands(energy, inside)
        w = np.minimum(_ramp(np.abs(diff) / spread, AGREE, DISAGREE),
                       _ramp((energy - typical) / energy_spread, ENERGY_AGREE, ENERGY_DISAGREE))
        # a moving thing's rim differs less than its body: rejection reaches a few pixels past it
        w = cv2.erode(w, np.ones((5, 5), np.uint8))
        if valid is not None:
            w *= valid
        return w

    def _bands(self, x: np.ndarray, inside: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The median and spread (1.4826 MAD) of ``x`` where nothing moved, per pixel: a camera's
        noise grows with brightness, so they are read within each of :data:`LEVELS` bands of the
        reference's brightness and interpolated between them."""
        import cv2

        if self._brightness is None:
            self._brightness = cv2.GaussianBlur(_channel_mean(self.reference), (0, 0), SMOOTH)
            # each pixel's place on a fine brightness scale: the bands' values are looked up there
            self._index = np.clip(np.rint(self._brightness * (_SCALE - 1)), 0, _SCALE - 1).astype(np.int32)
        # every SAMPLE-th pixel is plenty for a median, and 12 MP frames make the whole costly
        keep = inside.ravel()[::SAMPLE]
        level, v = self._brightness.ravel()[::SAMPLE], x.ravel()[::SAMPLE]
        if keep.sum() >= 64 * LEVELS:
            level, v = level[keep], v[keep]
        edges = np.quantile(level, np.linspace(0, 1, LEVELS + 1))
        band = np.clip(np.searchsorted(edges, level, side="right") - 1, 0, LEVELS - 1)
        centres, medians, spreads = [], [], []
        for k in range(LEVELS):
            vk = v[band == k]
            if vk.size >= 64:
                m = float(np.median(vk))
                centres.append(float(np.median(level[band == k])))
                medians.append(m)
                spreads.append(1.4826 * float(np.median(np.abs(vk - m))))
        scale = np.linspace(0.0, 1.0, _SCALE)
        median = np.interp(scale, centres, medians).astype(np.float32)[self._index]
        spread = np.interp(scale, centres, spreads).astype(np.float32)[self._index]
        return median, np.maximum(spread, 1e-9)

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        """(the merged image, H x W x C float32; the factor by which each pixel's noise standard
        deviation fell: sqrt(sum w^2 v) / sum w, v each frame's share of variance left by
        resampling: 1 where only the reference counts, 1/sqrt(N) or less where all N frames did)."""
        merged = self._sum / self._weight[:, :, None]
        return merged, np.sqrt(self._squares) / self._weight


def _ramp(z: np.ndarray, agree: float, disagree: float) -> np.ndarray:
    """1 up to ``agree``, 0 from ``disagree``, linear in between."""
    return np.clip((disagree - z) / (disagree - agree), 0.0, 1.0).astype(np.float32)


def _channel_mean(x: np.ndarray) -> np.ndarray:
    """H x W x C -> H x W (OpenCV's per-pixel transform: several times numpy's mean over the last axis)."""
    import cv2

    if x.shape[2] == 1:
        return x[:, :, 0]
    return cv2.transform(x, np.full((1, x.shape[2]), 1.0 / x.shape[2], np.float32))
