"""Super-resolution around any runner: YCbCr split, bicubic upsampling, the model on Y.

The SR networks (VDSR-style, FACTS §7) refine a bicubic-upsampled luma channel. Tiles are
planned on the low-resolution image: each LR tile is upsampled (MATLAB bicubic) and then run,
so the network only ever sees one tile, and the context needed is the network's divided by the
scale, plus the bicubic kernel's reach.
"""
from __future__ import annotations

import math

import numpy as np

from ..errors import N3Error
from ..imaging.resize import imresize
from ..runtime.runner import Runner

# MATLAB rgb2ycbcr (BT.601, "studio" range) on [0, 1] data
_M = np.array([[65.481, 128.553, 24.966], [-37.797, -74.203, 112.0], [112.0, -93.786, -18.214]]) / 255.0
_OFF = np.array([16.0, 128.0, 128.0]) / 255.0
_MINV = np.linalg.inv(_M)


def rgb_to_ycbcr(rgb: np.ndarray) -> np.ndarray:
    """H x W x 3 RGB in [0, 1] -> YCbCr in [0, 1] (Y in 16/255..235/255), like MATLAB's rgb2ycbcr."""
    return rgb.astype(np.float64) @ _M.T + _OFF


def ycbcr_to_rgb(ycc: np.ndarray) -> np.ndarray:
    return (ycc - _OFF) @ _MINV.T


def model_scales(info) -> list[int]:
    """Scale factors an SR model was trained for."""
    return [int(s) for s in info.extra.get("scales", [info.scale])]


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
        up = imresize(x[0].transpose(1, 2, 0), self.scale).transpose(2, 0, 1)[None]
        return self.runner.run(np.ascontiguousarray(up, dtype=np.float32))

    def auto_tile(self, overlap: int) -> int:
        return max(32, self.runner.auto_tile(overlap * self.scale) // self.scale)

    def describe(self) -> str:
        return self.runner.describe()
