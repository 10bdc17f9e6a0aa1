"""Synthetic two-view matching problems with known geometry (for training and testing).

A pair: random intrinsics per camera, 3D points in front of camera A, camera B placed at a random
baseline and looking at the scene, projections with pixel noise, a random fraction of the
matches replaced by wrong ones; coordinates normalised by the intrinsics; labels from the
symmetric epipolar distance to the true essential matrix. Pair ``i`` of seed ``s`` is always the
same (``numpy.random.default_rng([s, i])``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .geometry import essential, sym_epipolar_distance

LABEL_THRESHOLD = 1e-4  # squared symmetric epipolar distance (CNNet's)


@dataclass
class Pair:
    xa: np.ndarray  # (N, 2) normalised coordinates in A
    xb: np.ndarray  # (N, 2) in B
    labels: np.ndarray  # (N,) bool: inlier
    R: np.ndarray  # x_B = R x_A + t
    t: np.ndarray  # unit norm
    E: np.ndarray  # unit Frobenius norm


def _look_at(c: np.ndarray, target: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    z = target - c
    z /= np.linalg.norm(z)
    up = rng.normal(size=3)
    x = np.cross(up, z)
    x /= np.linalg.norm(x)
    return np.stack([x, np.cross(z, x), z])  # rows: B's axes in A's frame


def make_pair(rng: np.random.Generator, n: int = 512, outliers: tuple[float, float] = (0.5, 0.95),
              noise_px: tuple[float, float] = (0.0, 1.5), size: tuple[int, int] = (640, 480)) -> Pair:
    """One random pair with ``n`` matches (see the module docstring)."""
    W, H = size
    p_out = rng.uniform(*outliers)
    n_in = int(round(n * (1 - p_out)))
    while True:
        fa, fb = rng.uniform(0.7, 1.5, 2) * W
        sigma = rng.uniform(*noise_px)
        m = 4 * n + 64
        uv = rng.uniform([0, 0], [W, H], (m, 2))
        depth = rng.uniform(3.0, 12.0, m)
        X = np.concatenate([(uv - [W / 2, H / 2]) / fa, np.ones((m, 1))], 1) * depth[:, None]
        c = rng.normal(size=3)
        c *= rng.uniform(0.3, 1.5) / np.linalg.norm(c)
        R = _look_at(c, np.median(X, 0) + rng.normal(0, 0.5, 3), rng)
        t = -R @ c
        Xb = X @ R.T + t
        ok = Xb[:, 2] > 0.5
        ub = Xb[:, :2] / np.maximum(Xb[:, 2:], 1e-9) * fb + [W / 2, H / 2]
        ok &= (ub[:, 0] >= 0) & (ub[:, 0] < W) & (ub[:, 1] >= 0) & (ub[:, 1] < H)
        if ok.sum() >= max(n_in, 8):
            break
    sel = np.flatnonzero(ok)[:n_in]
    pa = uv[sel] + rng.normal(0, sigma, (n_in, 2))
    pb = ub[sel] + rng.normal(0, sigma, (n_in, 2))
    k = n - n_in  # wrong matches: random points in both images
    pa = np.concatenate([pa, rng.uniform([0, 0], [W, H], (k, 2))])
    pb = np.concatenate([pb, rng.uniform([0, 0], [W, H], (k, 2))])
    order = rng.permutation(n)
    xa = ((pa - [W / 2, H / 2]) / fa)[order]
    xb = ((pb - [W / 2, H / 2]) / fb)[order]
    tn = t / np.linalg.norm(t)
    E = essential(R, tn)
    labels = sym_epipolar_distance(xa, xb, E) < LABEL_THRESHOLD
    return Pair(xa.astype(np.float32), xb.astype(np.float32), labels, R, tn, E)


def pair_tensor(p: Pair) -> np.ndarray:
    """The network input ``(4, N)``: x_A, y_A, x_B, y_B."""
    return np.concatenate([p.xa, p.xb], 1).T.astype(np.float32)
