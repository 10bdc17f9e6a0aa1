"""Super-resolution around any runner: YCbCr split, bicubic upsampling, the model on Y.

The SR networks (VDSR-style, FACTS §7) refine a bicubic-upsampled luma channel. Tiles are
planned on the low-resolution image: each LR tile is upsampled (MATLAB bicubic) and then run,
so the network only ever sees one tile, and the context needed is the network's divided by the
scale, plus the bicubic kernel's reach.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from ..errors import N3Error
from ..imaging.color import rgb_to_ycbcr, ycbcr_to_rgb
from ..imaging.resize import imresize, resize_to
from ..runtime.runner import Runner, run_image
from .arrays import as_float_image, as_runner, range_gain

ROWS = 256
"""Rows of the enlargement turned from YCbCr to RGB at a time (float64 only for those)."""


def model_scales(info) -> list[int]:
    """Scale factors an SR model was trained for."""
    return [int(s) for s in info.extra.get("scales", [info.scale])]


def require_scale(runner: Runner, factor: int) -> None:
    """N3Error unless the SR model ``runner`` was trained for ``factor``."""
    if factor not in model_scales(runner.info):
        raise N3Error(f"{runner.path}: trained for x{'/x'.join(map(str, model_scales(runner.info)))}, not x{factor}")


def sr_factor(scale: float) -> int:
    """The model's whole factor for an enlargement by ``scale`` (1 < scale <= 4): ``scale`` when
    whole, else the next whole factor and at least 2; the result is then shrunk to ``scale``
    (MATLAB bicubic). Enlarging past the target and shrinking keeps the model's detail: on Set5
    and Set14 at x1.5 / x2.5 / x3.5, 2.1-2.8 dB over bicubic (docs/usage.md)."""
    if not 1.0 < scale <= 4.0:
        raise N3Error(f"scale {scale:g}: give a factor above 1 and at most 4")
    return max(2, math.ceil(scale - 1e-9))


def scale_for(height: int, width: int, scale: float | None = None, to_width: int | None = None,
              to_height: int | None = None, name: str = "") -> float:
    """The factor that enlarges a ``height`` x ``width`` image by ``scale``, or to ``to_width`` or
    ``to_height`` pixels (the other side in proportion); N3Error outside (1, 4], naming the image
    ``name`` where given."""
    if (scale is not None) + (to_width is not None) + (to_height is not None) != 1:
        raise N3Error("give one of a scale, a width and a height")
    if scale is not None:
        s, what = float(scale), f"scale {scale:g}"
    elif to_width is not None:
        s, what = to_width / width, f"width {to_width} px is x{to_width / width:.3g} of {width} px"
    else:
        s, what = to_height / height, f"height {to_height} px is x{to_height / height:.3g} of {height} px"
    if not 1.0 < s <= 4.0:
        raise N3Error(f"{name}: {what}: n3 enlarges by more than 1 and at most 4 times" if name else
                      f"{what}: n3 enlarges by more than 1 and at most 4 times")
    return s


def output_size(height: int, width: int, scale: float) -> tuple[int, int]:
    """The size of an image enlarged by ``scale``: ``ceil(side * scale)``, as MATLAB's imresize."""
    return math.ceil(round(height * scale, 6)), math.ceil(round(width * scale, 6))


class LowResRunner:
    """A runner over low-resolution tiles: bicubic upsampling by ``scale``, then ``runner``."""

    def __init__(self, runner: Runner, scale: int) -> None:
        self.runner, self.scale = runner, scale
        self.info, self.path = runner.info, runner.path
        m = runner.size_multiple
        self.size_multiple = m // math.gcd(m, scale)  # LR starts whose HR position is on the stride grid
        self.min_size = math.ceil(runner.min_size / scale)
        self.context = math.ceil(runner.context / scale) + 2  # + the bicubic kernel's reach (2 LR px)
        self.fixed_size = None
        if runner.fixed_size:
            fh, fw = runner.fixed_size
            if fh % scale or fw % scale:
                raise N3Error(f"{runner.path}: fixed input {fh}x{fw} is not a multiple of the scale {scale}")
            self.fixed_size = (fh // scale, fw // scale)

    def run(self, x: np.ndarray) -> np.ndarray:
        up = np.stack([imresize(t.transpose(1, 2, 0), self.scale).transpose(2, 0, 1) for t in x])
        return self.runner.run(np.ascontiguousarray(up, dtype=np.float32))

    def auto_tile(self, overlap: int) -> int:
        return max(32, self.runner.auto_tile(overlap * self.scale) // self.scale)

    def tiles_per_forward(self, tile: int, overlap: int) -> int:
        return self.runner.tiles_per_forward(tile * self.scale, overlap * self.scale)

    def describe(self) -> str:
        return self.runner.describe()


def upscale(model: Any, pixels: np.ndarray, scale: float, tile: int | None = None, overlap: int | None = None,
            on_tile: Callable[[int, int], None] | None = None, tta: bool = False, stretch: bool = True) -> np.ndarray:
    """Enlarge an image by ``scale``: H x W x C (C = 1 or 3) or H x W, float in [0, 1] (returned
    float32) or uint8/uint16 (returned in the same type); the result is :func:`output_size`.

    Colour images: the model refines the bicubic-upsampled luma (Y of BT.601 YCbCr); chroma is
    upsampled bicubically. Gray images go to the model directly. Tiles are planned on the input.
    A scale between whole ones (1.5, 2.5, ...) runs the model at :func:`sr_factor` and shrinks
    the result. ``tta``: average the results on the image's eight rotations and mirror images
    (8x the time). ``stretch``: an image whose brightest value is far below white is enlarged
    brightened to it and scaled back (:func:`~n3cli.pipelines.arrays.range_gain`: at 1/16 of the
    range, x2 on Set5 + Set14, vdsr-sr fell below bicubic, 30.98 against 31.15 dB; brightened 33.46,
    as at full range; ``benchmarks/upscale_dark.py``).
    """
    k = sr_factor(scale)
    runner = as_runner(model)
    require_scale(runner, k)
    runner = LowResRunner(runner, k)
    pixels, restore = as_float_image(pixels)
    gain = range_gain(pixels) if stretch else 1.0
    if gain == 1.0:
        out = _upscale(runner, pixels, k, tile, overlap, on_tile, tta)
    else:
        out = _upscale(runner, pixels * np.float32(gain), k, tile, overlap, on_tile, tta)
        out /= np.float32(gain)
    if k != scale:
        out = resize_to(out, *output_size(*pixels.shape[:2], scale))
    return restore(out)


def _upscale(runner, pixels: np.ndarray, scale: int, tile, overlap, on_tile, tta=False) -> np.ndarray:
    H, W, C = pixels.shape
    ycc = rgb_to_ycbcr(pixels) if C == 3 else pixels.astype(np.float64)
    x = np.ascontiguousarray(ycc[None, :, :, 0], dtype=np.float32)[None]
    y = run_image(runner, x, tile, overlap, on_tile, scale=scale, tta=tta)[0, 0]
    if C == 1:
        return np.ascontiguousarray(y[:, :, None], dtype=np.float32)
    chroma = resize_to(ycc[:, :, 1:], *y.shape)  # float32, in strips: no float64 copy of the enlargement
    rgb = np.empty((*y.shape, 3), np.float32)
    for r0 in range(0, y.shape[0], ROWS):
        rgb[r0 : r0 + ROWS] = ycbcr_to_rgb(np.concatenate([y[r0 : r0 + ROWS, :, None], chroma[r0 : r0 + ROWS]], 2))
    return rgb
