"""Training samples: random crops of in-memory images, each a pure function of (seed, index).

Because sample i depends only on the seed and i, a resumed run sees exactly the batches the
uninterrupted run would have seen, whatever the number of data workers.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from ..errors import ImageError
from ..imaging.color import as_color
from ..io.folders import read_folder


def load_images(folders: list[str] | str, color: str | None, limit: int = 0) -> list[tuple[str, np.ndarray]]:
    """All images of the folders as (name, float32 H x W x C) in ``color`` (see
    :func:`~n3cli.imaging.color.as_color`: ``gray``, ``rgb``, ``y`` or None), the first ``limit``."""
    if isinstance(folders, (str, Path)):
        folders = [folders]
    out: list[tuple[str, np.ndarray]] = []
    for folder in folders:
        out += [(name, as_color(px, color)) for name, px in read_folder(folder, limit - len(out) if limit else 0)]
        if limit and len(out) >= limit:
            break
    return out


class _RandomCrops(Dataset):
    """Square crops (random position, rotation and flip) chosen by ``rng(seed, i)``."""

    def __init__(self, images: list[np.ndarray], patch: int, seed: int, rot90: bool = True, flip: bool = True,
                 length: int = 2**62) -> None:
        self.images, self.patch, self.seed = images, patch, seed
        self.rot90, self.flip, self.length = rot90, flip, length
        small = [im.shape for im in images if min(im.shape[:2]) < patch]
        if small:
            raise ImageError(f"training image of size {small[0][:2]} is smaller than the patch size {patch}")

    def __len__(self) -> int:
        return self.length

    def _crop(self, i: int) -> tuple[np.ndarray, np.random.Generator]:
        rng = np.random.default_rng([self.seed, int(i)])
        im = self.images[rng.integers(len(self.images))]
        p = self.patch
        y = rng.integers(im.shape[0] - p + 1)
        x = rng.integers(im.shape[1] - p + 1)
        crop = im[y : y + p, x : x + p]
        if self.rot90:
            crop = np.rot90(crop, int(rng.integers(4)))
        if self.flip and rng.integers(2):
            crop = crop[:, ::-1]
        return crop, rng


class NoisyPatches(_RandomCrops):
    """Sample i: (noisy CxPxP, clean CxPxP, sigma) from a crop chosen by ``rng(seed, i)``."""

    def __init__(self, images: list[np.ndarray], patch: int, noise: dict[str, Any], seed: int,
                 rot90: bool = True, flip: bool = True, length: int = 2**62) -> None:
        super().__init__(images, patch, seed, rot90, flip, length)
        self.noise = noise

    def __getitem__(self, i: int):
        crop, rng = self._crop(i)
        clean = np.ascontiguousarray(crop.transpose(2, 0, 1), dtype=np.float32)
        kind = self.noise["kind"]
        if kind == "fixed":
            sigma = float(self.noise["sigma"])
        else:
            lo, hi = self.noise["sigma_range"]
            sigma = float(rng.uniform(lo, hi))
        noisy = clean + rng.standard_normal(clean.shape, dtype=np.float32) * np.float32(sigma / 255.0)
        return torch.from_numpy(noisy), torch.from_numpy(clean), torch.tensor(sigma, dtype=torch.float32)


class SRPatches(_RandomCrops):
    """Sample i: (bicubic-upsampled LR 1xPxP, HR 1xPxP, scale) from a crop chosen by ``rng(seed, i)``.

    The LR image is the protocol's: MATLAB bicubic downscaling of the 8-bit-rounded crop,
    rounded to 8 bits; the network input is its MATLAB bicubic upscaling (not rounded).
    """

    def __init__(self, images: list[np.ndarray], patch: int, scales: list[int], seed: int,
                 rot90: bool = True, flip: bool = True, length: int = 2**62) -> None:
        super().__init__(images, patch, seed, rot90, flip, length)
        self.scales = list(scales)

    def __getitem__(self, i: int):
        from ..imaging.resize import imresize, make_lr

        crop, rng = self._crop(i)
        s = self.scales[int(rng.integers(len(self.scales)))]
        hr = np.rint(crop[:, :, 0] * 255.0)
        inp = imresize(make_lr(hr, s), s) / 255.0
        return (torch.from_numpy(inp[None].astype(np.float32)), torch.from_numpy((hr / 255.0)[None].astype(np.float32)),
                torch.tensor(float(s)))


class RawPatches(_RandomCrops):
    """Sample i: (noisy 4 Bayer planes + a, b maps ``(6, P/2, P/2)``, clean planes ``(4, P/2, P/2)``, a).

    An sRGB crop is unprocessed to linear camera RGB (random colour matrix and gains), mosaicked
    at a random CFA alignment and packed to RGGB planes; Poisson-Gaussian noise with (a, b) drawn
    over the paper's range is added to the mosaic (FACTS §6).
    """

    def __init__(self, images: list[np.ndarray], patch: int, seed: int, rot90: bool = True, flip: bool = True,
                 length: int = 2**62) -> None:
        super().__init__(images, patch + 2, seed, rot90, flip, length)  # +2: room for the CFA alignment
        self.mosaic_size = patch

    def __getitem__(self, i: int):
        from ..imaging.bayer import pack
        from ..imaging.raw_noise import (
            add_poisson_gaussian,
            mosaic_rggb,
            raw_network_input,
            sample_noise_params,
            unprocess,
        )

        crop, rng = self._crop(i)
        lin, _ = unprocess(crop if crop.shape[2] == 3 else np.repeat(crop, 3, 2), rng)
        dy, dx = (int(v) for v in rng.integers(2, size=2))
        p = self.mosaic_size
        clean = mosaic_rggb(lin[dy : dy + p, dx : dx + p])
        a, b = sample_noise_params(rng)
        noisy = add_poisson_gaussian(clean, a, b, rng)
        planes_clean, _ = pack(clean, "RGGB")
        planes_noisy, _ = pack(noisy, "RGGB")
        inp = raw_network_input(planes_noisy, a, b)
        return torch.from_numpy(inp), torch.from_numpy(planes_clean.astype(np.float32)), torch.tensor(a)


class StepSampler(Sampler[int]):
    """Sample indices for steps ``start..end`` of a run: this rank's share of each global batch."""

    def __init__(self, start: int, end: int, batch: int, rank: int = 0, world: int = 1) -> None:
        self.start, self.end, self.batch, self.rank, self.world = start, end, batch, rank, world

    def __len__(self) -> int:
        return (self.end - self.start) * (self.batch // self.world)

    def __iter__(self):
        local = self.batch // self.world
        for step in range(self.start, self.end):
            base = step * self.batch + self.rank * local
            yield from range(base, base + local)
