"""MATLAB-compatible bicubic resizing (``imresize(x, s, 'bicubic')``) and the SR protocol's Y channel.

The standard super-resolution numbers are computed with MATLAB's ``imresize``: Keys' cubic
kernel (a = -0.5), the kernel widened by 1/scale when shrinking (antialiasing), symmetric
boundary handling, and the rows resized before the columns. Matching it matters: a plain
bicubic interpolation makes different low-resolution images and shifts PSNRs by tenths of a dB.

NumPy only, so that the onnxruntime path (which must not import torch) upscales the same way as
training and evaluation do.
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np


def _cubic(x: np.ndarray) -> np.ndarray:
    ax = np.abs(x)
    ax2, ax3 = ax * ax, ax * ax * ax
    return ((1.5 * ax3 - 2.5 * ax2 + 1) * (ax <= 1)
            + (-0.5 * ax3 + 2.5 * ax2 - 4 * ax + 2) * ((ax > 1) & (ax <= 2)))


@lru_cache(maxsize=64)
def contributions(in_len: int, out_len: int, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Source indices and weights ``(out_len, taps)`` of MATLAB's bicubic resize along one axis."""
    width = 4.0 / scale if scale < 1 else 4.0
    x = np.arange(1, out_len + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1 - 1 / scale)  # output pixel centre in input coordinates (1-based)
    left = np.floor(u - width / 2)
    taps = int(math.ceil(width)) + 2
    idx = left[:, None] + np.arange(taps)[None, :]  # 1-based
    d = u[:, None] - idx
    w = scale * _cubic(scale * d) if scale < 1 else _cubic(d)
    w = w / w.sum(1, keepdims=True)
    # symmetric boundary: ... 2 1 | 1 2 ... n | n n-1 ...
    mirror = np.concatenate([np.arange(in_len), np.arange(in_len - 1, -1, -1)])
    src = mirror[np.mod(idx.astype(np.int64) - 1, 2 * in_len)]
    keep = np.any(w != 0, axis=0)  # drop all-zero tap columns, as MATLAB does
    return src[:, keep], w[:, keep]


def resize_matrix(in_len: int, out_len: int, scale: float) -> np.ndarray:
    """:func:`imresize` along one axis as a dense ``(out_len, in_len)`` matrix (float64), for
    resizing many same-sized crops with matrix products."""
    src, w = contributions(in_len, out_len, scale)
    m = np.zeros((out_len, in_len))
    np.add.at(m, (np.repeat(np.arange(out_len), src.shape[1]), src.ravel()), w.ravel())  # mirrored taps repeat
    return m


def _resize_axis(x: np.ndarray, axis: int, out_len: int, scale: float) -> np.ndarray:
    src, w = contributions(x.shape[axis], out_len, scale)
    x = np.moveaxis(x, axis, 0)
    out = np.zeros((out_len, *x.shape[1:]), dtype=np.float64)
    for t in range(src.shape[1]):
        out += w[:, t].reshape(-1, *([1] * (x.ndim - 1))) * x[src[:, t]]
    return np.moveaxis(out, 0, axis)


def imresize(img: np.ndarray, scale: float) -> np.ndarray:
    """Resize the first two axes of ``img`` (H x W or H x W x C) by ``scale``, like MATLAB.

    Output size is ``ceil(H * scale) x ceil(W * scale)``; the result is float64 and not
    rounded (round it to emulate MATLAB on uint8 input).
    """
    if scale <= 0:
        raise ValueError(f"scale must be positive (got {scale})")
    h, w = img.shape[:2]
    out = img.astype(np.float64)
    out = _resize_axis(out, 0, math.ceil(h * scale), scale)  # rows first, as MATLAB orders equal scales
    return _resize_axis(out, 1, math.ceil(w * scale), scale)


def resize_to(img: np.ndarray, height: int, width: int, rows: int = 256,
              region: tuple[int, int, int, int] | None = None) -> np.ndarray:
    """:func:`imresize` of ``img`` (H x W or H x W x C) to exactly ``height`` x ``width`` (each
    axis scaled by its own ratio, as MATLAB's ``imresize(x, [h w])``), float32, computed in strips
    of ``rows`` output rows: a full-size photo needs the result and a few strips, not float64
    copies of the whole image. ``region=(top, bottom, left, right)``: only that part of the result."""
    h, w = img.shape[:2]
    top, bottom, left, right = region or (0, height, 0, width)
    src_r, w_r = contributions(h, height, height / h)
    src_c, w_c = contributions(w, width, width / w)
    src_c, w_c = src_c[left:right], w_c[left:right]
    rest = img.shape[2:]
    ones = (1,) * len(rest)
    out = np.empty((bottom - top, right - left, *rest), np.float32)
    for r0 in range(top, bottom, rows):
        r1 = min(bottom, r0 + rows)
        strip = np.zeros((r1 - r0, w, *rest))
        for t in range(src_r.shape[1]):
            strip += w_r[r0:r1, t].reshape(-1, 1, *ones) * img[src_r[r0:r1, t]]
        cols = np.zeros((r1 - r0, right - left, *rest))
        for t in range(src_c.shape[1]):
            cols += w_c[:, t].reshape(1, -1, *ones) * strip[:, src_c[:, t]]
        out[r0 - top : r1 - top] = cols
    return out


def rgb_to_y(rgb: np.ndarray) -> np.ndarray:
    """BT.601 luma in the 16-235 range from RGB in 0-255 (MATLAB's ``rgb2ycbcr`` Y), float."""
    return 16.0 + (65.481 * rgb[..., 0] + 128.553 * rgb[..., 1] + 24.966 * rgb[..., 2]) / 255.0


def modcrop(img: np.ndarray, scale: int) -> np.ndarray:
    """Crop H and W down to multiples of ``scale`` (the SR protocol's ground truth)."""
    h, w = img.shape[:2]
    return img[: h - h % scale, : w - w % scale]


def make_lr(hr: np.ndarray, scale: int) -> np.ndarray:
    """The protocol's low-resolution image: MATLAB bicubic downscaling of an 8-bit image (0-255
    floats), rounded and clipped to 8 bits as MATLAB's uint8 arithmetic does."""
    return np.clip(np.rint(imresize(hr, 1.0 / scale)), 0, 255)


def psnr_y(sr: np.ndarray, hr: np.ndarray, scale: int) -> float:
    """PSNR of two Y images (0-255 range) with ``scale`` pixels shaved at the border."""
    a = sr[scale:-scale, scale:-scale].astype(np.float64)
    b = hr[scale:-scale, scale:-scale].astype(np.float64)
    mse = np.mean((a - b) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))
