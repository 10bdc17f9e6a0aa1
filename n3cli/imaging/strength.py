"""How much of a denoiser's change to keep: one strength, or the luminance and colour parts apart.

Photographers often keep some luminance grain (it reads as texture) and want every colour blotch
gone; photo tools give the two their own sliders. The change ``d = clean - noisy`` at a pixel is
split into a gray change, ``Y(d)`` on every channel (``Y`` the BT.601 luma, JPEG's), and the rest,
which has no luma: the colour change. Each part is kept by its own strength. The split is linear,
so strengths 1 and 1 give ``clean`` back and 0 and 0 give ``noisy``.
"""
from __future__ import annotations

import numpy as np

from .color import LUMA


def blend(noisy: np.ndarray, clean: np.ndarray, strength: float = 1.0,
          chroma_strength: float | None = None) -> np.ndarray:
    """``noisy + strength * (clean - noisy)``, float32; with ``chroma_strength`` (not None) on
    H x W x 3 images the change's colour part is kept by ``chroma_strength`` and its luminance part
    by ``strength``. Other channel counts (gray) take ``strength`` alone."""
    noisy, clean = np.asarray(noisy, dtype=np.float32), np.asarray(clean, dtype=np.float32)
    s = np.float32(strength)
    if chroma_strength is None or chroma_strength == strength or noisy.ndim != 3 or noisy.shape[2] != 3:
        return clean if s == 1 else noisy + s * (clean - noisy)
    out = clean - noisy  # the change, made the result in place: one image-sized copy in all
    luma = out @ np.asarray(LUMA, dtype=np.float32)
    luma *= s - np.float32(chroma_strength)
    out *= np.float32(chroma_strength)
    out += noisy
    out += luma[..., None]
    return out
