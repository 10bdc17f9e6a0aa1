"""Noise-level estimation for images with additive white Gaussian noise.

Chen, Zhu & Heng, "An Efficient Statistical Method for Image Noise Level Estimation", ICCV 2015:
the covariance of the image's small patches has eigenvalues that are the noise variance plus the
signal's; natural images' patches live near a low-dimensional subspace, so the smallest
eigenvalues are noise alone. Their mean is the noise variance once it no longer exceeds their
median (the tail that behaves like pure noise).
"""
from __future__ import annotations

import numpy as np


def estimate_sigma(pixels: np.ndarray, patch: int = 7, max_patches: int = 200_000, seed: int = 0) -> float:
    """Estimated Gaussian noise sigma of an H x W x C float image in [0, 1], in 0-255 units.

    Colour images are measured channel by channel and the estimates averaged: measuring the
    channels jointly breaks down on JPEGs, whose subsampled chroma makes the channels' noise
    correlated (measured on a q98 4:2:0 JPEG with sigma 25: joint 0.6, per channel 16).
    """
    img = np.asarray(pixels)
    if img.ndim == 2:
        img = img[:, :, None]
    if img.shape[2] > 1:
        return float(np.mean([estimate_sigma(img[:, :, c : c + 1], patch, max_patches, seed) for c in range(img.shape[2])]))
    H, W, C = img.shape
    if H < patch or W < patch:
        raise ValueError(f"image of {H}x{W} is too small to estimate noise (needs {patch}x{patch})")
    win = np.lib.stride_tricks.sliding_window_view(img, (patch, patch), axis=(0, 1))  # (H', W', C, p, p)
    rows, cols = win.shape[:2]
    n = rows * cols
    # only the sampled patches are copied: all of a 12 MP image's would take 4.7 GB in float64
    pick = np.arange(n) if n <= max_patches else np.random.default_rng(seed).choice(n, max_patches, replace=False)
    X = win[pick // cols, pick % cols].reshape(len(pick), C * patch * patch).astype(np.float64)
    X -= X.mean(0)
    lam = np.linalg.eigvalsh(X.T @ X / len(X))[::-1]  # descending
    lam = np.clip(lam, 0.0, None)
    for i in range(len(lam)):
        tail = lam[i:]
        if tail.mean() <= np.median(tail):
            return float(np.sqrt(tail.mean()) * 255.0)
    return float(np.sqrt(lam[-1]) * 255.0)


def estimate_sigma_batch(images, patch: int = 7):
    """:func:`estimate_sigma` of each image of a torch batch ``(n, C, H, W)`` in [0, 1] (all of
    its patches, on the batch's device), ``(n,)`` in 0-255 units: what a noise-aware model is
    given at training time, equal to what :func:`estimate_sigma` reads on the same pixels."""
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
