"""Noise-level estimation for images with additive white Gaussian noise.

Chen, Zhu & Heng, "An Efficient Statistical Method for Image Noise Level Estimation", ICCV 2015:
the covariance of the image's small patches has eigenvalues that are the noise variance plus the
signal's; natural images' patches live near a low-dimensional subspace, so the smallest
eigenvalues are noise alone. Their mean is the noise variance once it no longer exceeds their
median (the tail that behaves like pure noise).

Fine texture still adds to those eigenvalues, so on all patches ("all-patches") weak noise reads
high: σ 5 on BSD68 read 8.7 on average, a clean image 6.8. The default ("weak-texture") first keeps the patches whose gradient
energy is what noise alone would give (Liu, Tanaka & Okutomi, "Single-Image Noise Level Estimation
for Blind Denoising", IEEE TIP 2013: the energy of a flat patch's noise follows a Gamma law; those
below its 99th percentile at the current estimate are kept, and the estimate is taken again on
them until it settles), and patches touching 0 or 1 are left out, since clipped highlights or
shadows hold no noise. On BSD68 it reads σ 5 as 5.2 and 25 as 25.4
(``benchmarks/noise_estimators.py``). On a camera's correlated noise it reads only the finest
scale, far below the noise's own spread: which reading a model gets is
:func:`n3cli.pipelines.denoise.noise_estimator`'s choice.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

METHODS = ("weak-texture", "all-patches")
_QUANTILE_Z = 2.3263  # the standard normal's 99th percentile
_ITERATIONS = 5


def estimate_sigma(pixels: np.ndarray, patch: int = 7, max_patches: int = 200_000, seed: int = 0,
                   method: str = "weak-texture") -> float:
    """Estimated Gaussian noise sigma of an H x W x C float image in [0, 1], in 0-255 units.

    ``method``: "weak-texture" (default) or "all-patches" (Chen et al. on every patch: what
    models trained on the estimator's reading were given, :func:`estimate_sigma_batch`).

    Colour images are measured channel by channel and the estimates averaged: measuring the
    channels jointly breaks down on JPEGs, whose subsampled chroma makes the channels' noise
    correlated (measured on a q98 4:2:0 JPEG with sigma 25: joint 0.6, per channel 16).
    """
    if method not in METHODS:
        raise ValueError(f"unknown noise estimator {method!r} (use {' or '.join(METHODS)})")
    img = np.asarray(pixels)
    if img.ndim == 2:
        img = img[:, :, None]
    if img.shape[2] > 1:
        return float(np.mean([estimate_sigma(img[:, :, c : c + 1], patch, max_patches, seed, method)
                              for c in range(img.shape[2])]))
    H, W, C = img.shape
    if H < patch or W < patch:
        raise ValueError(f"image of {H}x{W} is too small to estimate noise (needs {patch}x{patch})")
    win = np.lib.stride_tricks.sliding_window_view(img, (patch, patch), axis=(0, 1))  # (H', W', C, p, p)
    rows, cols = win.shape[:2]
    n = rows * cols
    # only the sampled patches are copied (all of a 12 MP image's would take 4.7 GB in float64), in
    # the image's own precision: chunks are widened to float64 where they are used (_CHUNK)
    pick = np.arange(n) if n <= max_patches else np.random.default_rng(seed).choice(n, max_patches, replace=False)
    X = win[pick // cols, pick % cols].reshape(len(pick), C * patch * patch)
    sigma = _tail_sigma(X)
    if method == "weak-texture":
        sigma = _weak_texture_sigma(X, patch, sigma)
    return float(sigma * 255.0)


def _tail_sigma(X: np.ndarray, keep: np.ndarray | None = None) -> float:
    """Chen et al.'s reading on the patches ``X`` (n x d; those where ``keep``): the root mean of
    their covariance's smallest eigenvalues, from the first tail whose mean does not exceed its
    median."""
    lam = np.clip(np.linalg.eigvalsh(_covariance(X, keep))[::-1], 0.0, None)  # descending
    for i in range(len(lam)):
        tail = lam[i:]
        if tail.mean() <= np.median(tail):
            return float(np.sqrt(tail.mean()))
    return float(np.sqrt(lam[-1]))


_CHUNK = 16384  # patches at a time, in float64: no float64 copy of all the samples (200,000 x 49 is 78 MB)


def _covariance(X: np.ndarray, keep: np.ndarray | None) -> np.ndarray:
    d = X.shape[1]
    total, outer, count = np.zeros(d), np.zeros((d, d)), 0
    for i in range(0, len(X), _CHUNK):
        x = X[i : i + _CHUNK].astype(np.float64)
        if keep is not None:
            x = x[keep[i : i + _CHUNK]]
        total += x.sum(0)
        outer += x.T @ x
        count += len(x)
    mean = total / count
    return outer / count - np.outer(mean, mean)


def _weak_texture_sigma(X: np.ndarray, patch: int, sigma: float) -> float:
    """Re-read ``sigma`` on the patches of ``X`` whose gradient energy noise of that sigma
    explains, until it settles; ``sigma`` itself when too few such patches remain."""
    energy = np.empty(len(X))
    for i in range(0, len(X), _CHUNK):
        P = X[i : i + _CHUNK].astype(np.float64).reshape(-1, patch, patch)
        e = (np.diff(P, axis=2) ** 2).sum((1, 2)) + (np.diff(P, axis=1) ** 2).sum((1, 2))
        e[((P == 0.0) | (P == 1.0)).any((1, 2))] = np.inf  # clipped (0 or 1 exactly): no noise there to read
        energy[i : i + _CHUNK] = e
    shape, scale = _gamma_of_energy(patch)
    need = 4 * patch * patch  # a covariance of p² x p² needs several times p² samples
    for _ in range(_ITERATIONS):
        keep = energy < _gamma_quantile(shape, scale * sigma * sigma)
        if keep.sum() < need:
            break
        new = _tail_sigma(X, keep)
        settled = abs(new - sigma) <= 1e-3 * max(sigma, 1e-8)
        sigma = new
        if settled:
            break
    return sigma


@lru_cache(maxsize=4)
def _gamma_of_energy(patch: int) -> tuple[float, float]:
    """Shape and scale (per unit noise variance) of the Gamma law matched to the first two moments
    of n'Mn, the squared horizontal and vertical differences of a p x p patch of white noise n."""
    idx = np.arange(patch * patch).reshape(patch, patch)
    pairs = [(idx[r, c], idx[r, c + 1]) for r in range(patch) for c in range(patch - 1)]
    pairs += [(idx[r, c], idx[r + 1, c]) for r in range(patch - 1) for c in range(patch)]
    D = np.zeros((len(pairs), patch * patch))
    for k, (a, b) in enumerate(pairs):
        D[k, a], D[k, b] = -1.0, 1.0
    M = D.T @ D
    tr, tr2 = float(np.trace(M)), float(np.trace(M @ M))  # mean tr(M), variance 2 tr(M²) per unit variance
    return tr * tr / (2.0 * tr2), 2.0 * tr2 / tr


def _gamma_quantile(shape: float, scale: float) -> float:
    """The 99th percentile of Gamma(shape, scale), by the Wilson-Hilferty cube-root approximation
    (within 0.1% of the exact value at the 7 x 7 patch's shape, 18.5)."""
    h = 1.0 / (9.0 * shape)
    return shape * scale * (1.0 - h + _QUANTILE_Z * np.sqrt(h)) ** 3


def estimate_sigma_batch(images, patch: int = 7):
    """:func:`estimate_sigma` with ``method="all-patches"`` of each image of a torch batch
    ``(n, C, H, W)`` in [0, 1] (all of its patches, on the batch's device), ``(n,)`` in 0-255
    units: what a model trained on the estimator's reading is given at training time."""
    import torch
    import torch.nn.functional as F

    n, C, H, W = images.shape
    x = images.reshape(n * C, 1, H, W).double()
    X = F.unfold(x, patch)  # (n*C, p*p, L)
    X = X - X.mean(2, keepdim=True)
    lam = torch.linalg.eigvalsh(X @ X.transpose(1, 2) / X.shape[2]).flip(1).clamp_min(0.0)  # descending
    d = lam.shape[1]
    out = lam[:, -1].clone()
    found = torch.zeros(len(lam), dtype=torch.bool, device=lam.device)
    for i in range(d):  # the first tail whose mean does not exceed its median (torch's median is the lower one)
        tail = lam[:, i:]
        s = tail.sort(1).values
        k = s.shape[1]
        med = s[:, k // 2] if k % 2 else 0.5 * (s[:, k // 2 - 1] + s[:, k // 2])
        mean = tail.mean(1)
        hit = (mean <= med) & ~found
        out = torch.where(hit, mean, out)
        found |= hit
    return (out.sqrt() * 255.0).view(n, C).mean(1).float()
