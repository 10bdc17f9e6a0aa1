"""Registering one photo of a burst onto another (a homography), and the warp onto its grid.

Hand-held bursts move by a few pixels and turn by a fraction of a degree between frames; over a
scene far from the lens that is a homography. SIFT matches give the turn and shift, and ECC
(Evangelidis & Psarakis 2008: every pixel's brightness aligned) refines them into a homography.
Both work on a smoothed, reduced copy (noise makes SIFT find grain, and a reduced copy is faster
and already averages the noise away) stretched to its own tonal range (low-light bursts, the ones
worth merging, are dark); the homography is then brought back to full size.
"""
from __future__ import annotations

import numpy as np

from ..imaging.color import to_gray

MATCH_SIDE = 1600
"""The reduced copy's longer side: SIFT runs on at most this many pixels a side."""
MIN_INLIERS = 12
"""Fewer RANSAC inliers than this and the frame is not registered."""
ECC_DRIFT = 8.0
"""ECC may move the keypoints' answer's corners by at most this many pixels (reduced scale)."""
MISFIT_SLACK, MISFIT_PX = 1.5, 0.25
"""ECC's homography is kept unless its median distance to the inlier matches exceeds the
keypoints' own by more than this factor plus these pixels (reduced scale)."""
MOVED = 8.0
"""ECC leaves out where a frame differs from the reference by more than this many spreads above
the median difference (:meth:`Registrar._still`), and by more than MOVED_FLOOR of its tonal range:
on noise-free frames the spread is so small that sub-pixel edges would count as moved."""
MOVED_FLOOR = 0.04
STEP = 4
""":func:`resampled_variance` is computed on every STEP-th pixel and interpolated."""
MAX_ZOOM = 0.1
"""A burst's frames differ by a shake, not a zoom: homographies that scale the image by more than
this share (or flip it) are taken for wrong matches."""


def _reduced(pixels: np.ndarray, scale: float, lo: float, hi: float) -> np.ndarray:
    """The copy registration looks at: luma, smoothed, reduced by ``scale``, ``lo``..``hi``
    stretched to 0..1 (float32)."""
    import cv2

    g = cv2.GaussianBlur(to_gray(pixels)[:, :, 0].astype(np.float32), (0, 0), 1.0)
    if scale < 1.0:
        g = cv2.resize(g, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    return np.clip((g - lo) / max(hi - lo, 1e-6), 0.0, 1.0)


def _uint8(g: np.ndarray) -> np.ndarray:
    return np.rint(g * 255.0).astype(np.uint8)


class Registrar:
    """Registers frames onto one reference; the reference's features are found once.

    ``reference`` and the frames: H x W x C (C = 1 or 3) float in [0, 1]."""

    def __init__(self, reference: np.ndarray, match_side: int = MATCH_SIDE) -> None:
        import cv2

        self.shape = reference.shape[:2]
        self.scale = min(1.0, match_side / max(self.shape))
        luma = to_gray(reference)[:: 4, :: 4]
        self.lo, self.hi = (float(v) for v in np.percentile(luma, (0.5, 99.5)))
        self._sift = cv2.SIFT_create(nfeatures=4000)
        self._small = _reduced(reference, self.scale, self.lo, self.hi)
        self._kp, self._desc = self._sift.detectAndCompute(_uint8(self._small), None)

    def register(self, frame: np.ndarray) -> tuple[np.ndarray | None, int]:
        """(the 3 x 3 homography taking the reference's pixel coordinates to ``frame``'s, or None
        where the frame cannot be registered; the number of matches that agree with it)."""
        import cv2

        if self._desc is None or len(self._kp) < MIN_INLIERS:
            return None, 0
        small = _reduced(frame, self.scale, self.lo, self.hi)
        kp, desc = self._sift.detectAndCompute(_uint8(small), None)
        if desc is None or len(kp) < MIN_INLIERS:
            return None, 0
        pairs = cv2.BFMatcher(cv2.NORM_L2).knnMatch(self._desc, desc, k=2)
        good = [p[0] for p in pairs if len(p) == 2 and p[0].distance < 0.8 * p[1].distance]
        if len(good) < MIN_INLIERS:
            return None, 0
        a = np.float64([self._kp[m.queryIdx].pt for m in good])
        b = np.float64([kp[m.trainIdx].pt for m in good])
        cv2.setRNGSeed(0)
        # a shake's turn and shift first (4 parameters: stable on noisy keypoints, where a
        # homography's perspective terms are not), then ECC makes it a homography
        A, inliers = cv2.estimateAffinePartial2D(a, b, method=cv2.RANSAC, ransacReprojThreshold=1.5,
                                                 maxIters=4000, confidence=0.999)
        count = int(inliers.sum()) if inliers is not None else 0
        if A is None or count < MIN_INLIERS:
            return None, count
        H = np.vstack([A, [0.0, 0.0, 1.0]])
        keep = inliers.ravel().astype(bool)
        H = self._refine(small, H, a[keep], b[keep])
        s, c = self.scale, 0.5 * (self.scale - 1.0)  # resize's pixel centres: x_small = s * x + c
        S = np.float64([[s, 0, c], [0, s, c], [0, 0, 1]])
        H = np.linalg.inv(S) @ H @ S  # back to full-size pixel coordinates
        H /= H[2, 2]
        zoom = np.linalg.det(H[:2, :2])
        if not (1 - MAX_ZOOM) ** 2 < zoom < (1 + MAX_ZOOM) ** 2 or np.abs(H[2, :2]).max() * max(self.shape) > MAX_ZOOM:
            return None, count
        return H, count

    def _refine(self, small: np.ndarray, H: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """``H`` (reduced scale) refined by ECC, which aligns every pixel's brightness rather than
        a few hundred keypoints' positions: on noisy frames the keypoints' answer is off by up to
        a pixel or more at the corners, ECC's by under a tenth. Where the frame, put in place,
        still differs from the reference far more than elsewhere (something moved), ECC runs
        again without those pixels: a subject walking across a small frame pulled ECC 4-5 px off
        the scene behind it, and a moving square on noise-free frames 0.3-0.6 px (0.04-0.2 px
        once left out). Unchanged where ECC fails, and where its answer fits the inlier matches
        ``a`` -> ``b`` worse than the keypoints' own."""
        first = self._ecc(small, H, a, b, None)
        still = self._still(small, H if first is None else first)
        if still is None:
            return H if first is None else first
        second = self._ecc(small, H, a, b, still)  # again, without what moved
        return second if second is not None else H if first is None else first

    def _ecc(self, small: np.ndarray, H: np.ndarray, a: np.ndarray, b: np.ndarray,
             mask: np.ndarray | None) -> np.ndarray | None:
        """ECC from ``H`` on the frame's pixels in ``mask``; None where it fails or its answer is
        not taken (:meth:`_refine`)."""
        import cv2

        criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 60, 1e-6)
        try:
            _, refined = cv2.findTransformECC(self._small, small, H.astype(np.float32), cv2.MOTION_HOMOGRAPHY,
                                              criteria, mask, 5)
        except cv2.error:
            return None
        refined = refined.astype(np.float64)
        h, w = small.shape
        corners = np.float64([[0, 0, 1], [w, 0, 1], [0, h, 1], [w, h, 1]]).T
        p, q = H @ corners, refined @ corners
        if not np.isfinite(q).all() or np.abs(p[:2] / p[2] - q[:2] / q[2]).max() > ECC_DRIFT:
            return None  # ECC wandered off: the matches' answer stands
        if _misfit(refined, a, b) > MISFIT_SLACK * _misfit(H, a, b) + MISFIT_PX:
            return None  # ECC followed something else than the matched scene
        return refined

    def _still(self, small: np.ndarray, H: np.ndarray) -> np.ndarray | None:
        """Where the frame ``small`` (its own reduced grid) shows what the reference shows, as
        ECC's mask (uint8), or None where nothing moved: the smoothed difference to the reference,
        the frame put in place by ``H``, is over :data:`MOVED` spreads above its median (and over
        :data:`MOVED_FLOOR`) where something moved."""
        import cv2

        h, w = self._small.shape
        placed = cv2.warpPerspective(small, H, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                     borderMode=cv2.BORDER_REPLICATE)
        d = cv2.GaussianBlur(np.abs(placed - self._small), (0, 0), 2.0)
        inside = cv2.warpPerspective(np.ones_like(small, np.uint8), H, (w, h), borderValue=0,
                                     flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP)
        d *= cv2.erode(inside, np.ones((9, 9), np.uint8))  # past the frame's edge nothing moved
        sample = d[::4, ::4]
        med = float(np.median(sample))
        spread = 1.4826 * float(np.median(np.abs(sample - med)))
        moved = (d > max(med + MOVED * spread, MOVED_FLOOR)).astype(np.uint8)
        # a moving thing is a blob; thin lines along edges are each frame's own aliasing
        moved = cv2.morphologyEx(moved, cv2.MORPH_OPEN, np.ones((5, 5), np.uint8))
        if moved.mean() < 0.002:
            return None
        moved = cv2.dilate(moved, np.ones((9, 9), np.uint8))  # its rim too
        onto = cv2.warpPerspective(moved, H, (small.shape[1], small.shape[0]), flags=cv2.INTER_NEAREST,
                                   borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        return (1 - onto).astype(np.uint8)


def _misfit(H: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """The median distance between ``H`` applied to points ``a`` and their matches ``b``."""
    p = np.c_[a, np.ones(len(a))] @ H.T
    return float(np.median(np.hypot(*(p[:, :2] / p[:, 2:] - b).T)))


def warp(frame: np.ndarray, H: np.ndarray, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``frame`` (H x W x C float32) resampled onto the reference's grid through ``H``
    (:meth:`Registrar.register`); where it has data, an H x W bool mask, False where the frame
    does not reach and in the two pixels along that edge the bicubic filter spans; and how much
    of white noise's variance the resampling left at each pixel (:func:`resampled_variance`)."""
    import cv2

    h, w = shape
    flags = cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP
    src = np.ascontiguousarray(frame, dtype=np.float32)
    out = cv2.warpPerspective(src if src.shape[2] != 1 else src[:, :, 0], H, (w, h), flags=flags,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    if out.ndim == 2:
        out = out[:, :, None]
    inside = cv2.warpPerspective(np.ones(frame.shape[:2], np.uint8), H, (w, h), flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP,
                                 borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    inside = cv2.erode(inside, np.ones((5, 5), np.uint8))  # outside the image counts as inside here
    return out, inside.astype(bool), resampled_variance(H, shape)


def _cubic_weights(t: np.ndarray) -> list[np.ndarray]:
    """OpenCV's bicubic weights (a = -0.75) of the four samples around a fractional offset ``t``."""
    a = -0.75

    def near(x):  # |x| <= 1
        return ((a + 2) * x - (a + 3)) * x * x + 1

    def far(x):  # 1 < |x| < 2
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a

    return [far(1 + t), near(t), near(1 - t), far(2 - t)]


def resampled_variance(H: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The share of white noise's variance that bicubic resampling through ``H`` keeps at each
    pixel of the ``shape`` grid: 1 on whole-pixel offsets, 0.52 at half a pixel in both
    directions, where it averages neighbours (and so also correlates the noise)."""
    import cv2

    h, w = shape
    # the share is a smooth function of the sampling phase, which drifts slowly across a
    # shake's frame: read on every STEP-th pixel and interpolated (a fifth of the time)
    ys, xs = (np.mgrid[0 : -(-h // STEP) + 1, 0 : -(-w // STEP) + 1] * STEP).astype(np.float32)
    Hf = H.astype(np.float32)
    z = Hf[2, 0] * xs + Hf[2, 1] * ys + Hf[2, 2]
    share = np.ones(xs.shape, np.float32)
    for row in (0, 1):
        u = (Hf[row, 0] * xs + Hf[row, 1] * ys + Hf[row, 2]) / z
        t = u - np.floor(u)
        share *= sum(k * k for k in _cubic_weights(t))
    # pixel x takes the value at x / STEP on the grid of samples (read at x = STEP * i)
    back = np.float64([[1.0 / STEP, 0, 0], [0, 1.0 / STEP, 0]])
    return cv2.warpAffine(share, back, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_REPLICATE)
