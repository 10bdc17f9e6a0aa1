"""Bayer mosaics as arrays: any of the four 2x2 layouts aligned to RGGB (dropping at most one
leading row and column) and packed into 4 half-resolution planes, and back exactly."""
from __future__ import annotations

import numpy as np


def rggb_offset(pattern: str) -> tuple[int, int]:
    """(dy, dx) at which the 2x2 pattern starting at (0, 0) reads RGGB."""
    grid = [pattern[0:2], pattern[2:4]]
    for dy in (0, 1):
        for dx in (0, 1):
            p = "".join(grid[(dy + i) % 2][(dx + j) % 2] for i in range(2) for j in range(2))
            if p == "RGGB":
                return dy, dx
    raise ValueError(f"{pattern} is not a Bayer pattern")


def pack(mosaic: np.ndarray, pattern: str) -> tuple[np.ndarray, tuple[int, int]]:
    """4 half-resolution planes R, G1, G2, B ``(4, h, w)`` and the (dy, dx) crop that aligned them."""
    dy, dx = rggb_offset(pattern)
    m = mosaic[dy:, dx:]
    h, w = m.shape[0] // 2 * 2, m.shape[1] // 2 * 2
    m = m[:h, :w]
    return np.stack([m[0::2, 0::2], m[0::2, 1::2], m[1::2, 0::2], m[1::2, 1::2]]), (dy, dx)


def unpack(planes: np.ndarray, offset: tuple[int, int], like: np.ndarray) -> np.ndarray:
    """The mosaic of ``like``'s shape with the planes put back; pixels outside the packed area
    (at most one row/column per side) keep ``like``'s values."""
    dy, dx = offset
    out = np.array(like, dtype=np.float32, copy=True)
    _, h, w = planes.shape
    sub = out[dy : dy + 2 * h, dx : dx + 2 * w]
    sub[0::2, 0::2], sub[0::2, 1::2], sub[1::2, 0::2], sub[1::2, 1::2] = planes
    return out
