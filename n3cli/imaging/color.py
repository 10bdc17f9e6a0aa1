"""Colour conversions on arrays: BT.601 luma (gray models, SIFT), a model's colour from an
image's, and YCbCr as MATLAB's rgb2ycbcr computes it (the SR protocol's)."""
from __future__ import annotations

import numpy as np

LUMA = (0.299, 0.587, 0.114)
"""ITU-R BT.601 luma weights of R, G, B (JPEG's Y)."""

# MATLAB rgb2ycbcr (BT.601, "studio" range) on [0, 1] data
_M = np.array([[65.481, 128.553, 24.966], [-37.797, -74.203, 112.0], [112.0, -93.786, -18.214]]) / 255.0
_OFF = np.array([16.0, 128.0, 128.0]) / 255.0
_MINV = np.linalg.inv(_M)


def rgb_to_ycbcr(rgb: np.ndarray) -> np.ndarray:
    """H x W x 3 RGB in [0, 1] -> YCbCr in [0, 1] (Y in 16/255..235/255), like MATLAB's rgb2ycbcr."""
    return rgb.astype(np.float64) @ _M.T + _OFF


def ycbcr_to_rgb(ycc: np.ndarray) -> np.ndarray:
    return (ycc - _OFF) @ _MINV.T


def as_color(pixels: np.ndarray, color: str | None) -> np.ndarray:
    """The pixels as a model of ``color`` sees them: ``gray`` BT.601 luma, ``rgb`` (gray
    replicated), ``y`` the SR protocol's luma (YCbCr Y of colour images, gray images as they are),
    None as they are."""
    if color is None:
        return pixels
    if color == "gray":
        return to_gray(pixels)
    if color == "y":
        return pixels if pixels.shape[2] == 1 else rgb_to_ycbcr(pixels)[:, :, :1].astype(np.float32)
    return np.repeat(pixels, 3, axis=2) if pixels.shape[2] == 1 else pixels


def to_gray(pixels: np.ndarray) -> np.ndarray:
    """ITU-R BT.601 luma of an H x W x 3 float image, kept H x W x 1."""
    if pixels.shape[2] == 1:
        return pixels
    return (pixels @ np.asarray(LUMA, dtype=np.float32))[:, :, None].astype(np.float32)
