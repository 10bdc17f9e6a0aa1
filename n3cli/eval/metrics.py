"""Image quality metrics on float images in [0, 1]."""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F


def psnr(x: np.ndarray, ref: np.ndarray, peak: float = 1.0) -> float:
    """``10 log10(peak^2 / MSE)`` over all pixels and channels (float, no clipping)."""
    mse = float(np.mean((np.asarray(x, np.float64) - np.asarray(ref, np.float64)) ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(peak * peak / mse)


def ssim(x: np.ndarray, ref: np.ndarray, peak: float = 1.0) -> float:
    """Mean SSIM (Wang et al. 2004: 11x11 Gaussian window, sigma 1.5, K1=0.01, K2=0.03), channels averaged.

    Valid region only (no padding), as the reference MATLAB implementation."""
    a = torch.as_tensor(np.asarray(x, np.float64))
    b = torch.as_tensor(np.asarray(ref, np.float64))
    if a.dim() == 2:
        a, b = a[..., None], b[..., None]
    a, b = a.permute(2, 0, 1)[:, None], b.permute(2, 0, 1)[:, None]  # (C, 1, H, W)
    g = torch.exp(-((torch.arange(11, dtype=torch.float64) - 5) ** 2) / (2 * 1.5**2))
    g = g / g.sum()
    win = (g[:, None] * g[None, :])[None, None]
    if min(a.shape[-2:]) < 11:
        win = win[..., : min(11, a.shape[-2]), : min(11, a.shape[-1])]
        win = win / win.sum()
    f = lambda t: F.conv2d(t, win)  # noqa: E731
    c1, c2 = (0.01 * peak) ** 2, (0.03 * peak) ** 2
    mu_a, mu_b = f(a), f(b)
    va = f(a * a) - mu_a**2
    vb = f(b * b) - mu_b**2
    cov = f(a * b) - mu_a * mu_b
    m = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (va + vb + c2))
    return float(m.mean())
