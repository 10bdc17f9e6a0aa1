"""The caller's side of every array task: pixels as the caller holds them (uint8, uint16 or
float; H x W or H x W x C) to the float32 H x W x C the pipelines work on and back, and a model
handle (a runner, a loaded checkpoint or a bare network) to a runner."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..errors import N3Error
from ..runtime.runner import Runner


def as_runner(model: Any) -> Runner:
    if hasattr(model, "run") and hasattr(model, "fixed_size"):
        return model
    from ..runtime.torch_runner import TorchRunner  # a LoadedModel or a bare nn.Module

    return TorchRunner(model)



def as_float_image(pixels: np.ndarray) -> tuple[np.ndarray, Callable[[np.ndarray], np.ndarray]]:
    """``pixels`` as H x W x C float32 in [0, 1], and the function that gives a result back in the
    caller's layout: H x W stays H x W; uint8/uint16 are scaled by their maximum and the result
    rounded back to that type (clipped); floats stay float32, not clipped."""
    a = np.asarray(pixels)
    if a.ndim not in (2, 3) or a.size == 0 or (a.ndim == 3 and a.shape[2] not in (1, 3)):
        raise N3Error(f"expected an H x W or H x W x C image with C = 1 or 3, got an array of shape {a.shape}")
    if a.dtype in (np.uint8, np.uint16):
        peak = float(np.iinfo(a.dtype).max)
        f = a.astype(np.float32) / np.float32(peak)
    elif a.dtype.kind == "f":
        f = a.astype(np.float32, copy=False)
        if not np.isfinite(f).all():
            raise N3Error(f"{int((~np.isfinite(f)).sum())} value(s) of the image are NaN or infinite")
    else:
        raise N3Error(f"unsupported pixel type {a.dtype}: give uint8, uint16 or float in [0, 1]")

    def restore(y: np.ndarray) -> np.ndarray:
        if a.dtype.kind == "f":
            return y
        return np.clip(np.rint(y * peak), 0, peak).astype(a.dtype)

    if a.ndim == 2:
        return f[:, :, None], lambda y: restore(y[:, :, 0])
    return f, restore


MAX_STRETCH = 16.0
"""The most an image is brightened for a model: 12-bit data in a 16-bit file."""
MIN_STRETCH = 1.25  # brighter images (nearly every photo) go as they are


def range_gain(pixels: np.ndarray) -> float:
    """The gain that brings an image's brightest value to white, for models that learned on images
    spanning black to white (up to :data:`MAX_STRETCH`); 1 for images brighter than
    1/:data:`MIN_STRETCH` of white. Measured in ``benchmarks/stretch.py`` (denoising) and
    ``benchmarks/upscale_dark.py`` (enlarging)."""
    hi = float(pixels.max())
    if not hi > 0 or 1.0 / hi < MIN_STRETCH:
        return 1.0
    return min(1.0 / hi, MAX_STRETCH)
