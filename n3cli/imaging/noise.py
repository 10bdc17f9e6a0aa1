"""Noise models and the inputs they give a network (noise-level maps)."""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


def add_gaussian(clean: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """``clean + N(0, (sigma/255)^2)`` in float32, neither clipped nor quantised (the paper's protocol)."""
    n = rng.standard_normal(clean.shape, dtype=np.float32) * np.float32(sigma / 255.0)
    return clean.astype(np.float32) + n


def eval_rng(seed: int, index: int) -> np.random.Generator:
    """The fixed noise stream of evaluation image ``index`` (same noise for every model)."""
    return np.random.default_rng([seed, index, 0x5EED])


def mixed_seed(*key: int) -> int:
    """A 63-bit torch generator seed from integers, every bit depending on each of them. Torch's
    CPU generator keeps only the low 32 bits of its seed, so ``seed * 2**40 + step`` gave every
    config seed the same training batches there; hashed, the low bits differ too."""
    hi, lo = np.random.SeedSequence([int(k) for k in key]).generate_state(2, np.uint32)
    return ((int(hi) << 32) | int(lo)) & ((1 << 63) - 1)


def network_input(noisy: Tensor, sigma: Tensor | float | None, takes_map: bool) -> Tensor:
    """What a denoiser sees: the noisy image, plus a ``sigma/255`` map channel if it takes one.

    ``sigma`` may be a number, one value per sample ``(B,)``, or a per-pixel map ``(B, 1, H, W)``,
    all in 0-255 units.
    """
    if not takes_map:
        return noisy
    if sigma is None:
        raise ValueError("this model needs a noise level (sigma)")
    B, _, H, W = noisy.shape
    s = torch.as_tensor(sigma, dtype=noisy.dtype, device=noisy.device) / 255.0
    if s.dim() == 0:
        s = s.expand(B)
    if s.dim() == 1:
        s = s.view(B, 1, 1, 1)
    return torch.cat([noisy, s.expand(B, 1, H, W)], 1)
