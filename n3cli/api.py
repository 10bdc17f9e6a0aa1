"""The library API that the CLI and Python users share.

>>> from n3cli import api
>>> model = api.load_denoiser(color="rgb")
>>> clean = api.denoise(model, noisy_pixels)  # H x W x C float32 in [0, 1]
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from . import zoo
from .checkpoint import LoadedModel, load_model
from .errors import N3Error
from .estimate import estimate_sigma
from .noise import network_input
from .tiling import run_tiled

BYTES_PER_PIXEL = 3000  # measured peak working memory of the N³Net forward pass, float32, per tile pixel
DEFAULT_OVERLAP = 64


def select_device(device: str = "auto") -> torch.device:
    """``auto``: CUDA when usable, else CPU. ``cuda`` without a usable GPU is an error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise N3Error("--device cuda: no usable CUDA GPU (torch.cuda.is_available() is False)")
    return torch.device(device)


def resolve_model(model: str | os.PathLike | None, color: str = "gray") -> Path:
    """A model file from a shipped name, a path, or (None) the default for ``color`` images."""
    if model is None:
        entry = zoo.default_for(color)
        zoo.verify(entry)
        return entry.path
    p = Path(model)
    if p.suffix == ".safetensors" or p.exists() or os.sep in str(model):
        return p
    entry = zoo.find(str(model))
    zoo.verify(entry)
    return entry.path


def load_denoiser(model: str | os.PathLike | None = None, color: str = "gray", device: str = "auto") -> LoadedModel:
    """Load a denoising model by name or path (None: the shipped default for ``color``)."""
    loaded = load_model(resolve_model(model, color), select_device(device))
    if loaded.info.task != "denoise":
        raise N3Error(f"{loaded.path}: a {loaded.info.task} model, not a denoiser")
    return loaded


def auto_tile(device: torch.device, overlap: int, bytes_per_px: int = BYTES_PER_PIXEL) -> int:
    """Largest tile core whose working set fits a safe share of free memory on ``device``."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        budget = 0.5 * free
        cap = 4096
    else:
        budget = min(0.25 * _available_ram(), 3 * 2**30)
        cap = 2048
    side = int(math.sqrt(budget / bytes_per_px)) - 2 * overlap
    return int(max(128, min(cap, side)) // 16 * 16)


def _available_ram() -> float:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return float(line.split()[1]) * 1024
    except OSError:
        pass
    return 8 * 2**30


def denoise(
    model: LoadedModel,
    pixels: np.ndarray,
    sigma: float | np.ndarray | None = None,
    tile: int | None = None,
    overlap: int | None = None,
    strength: float = 1.0,
    on_tile: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """Denoise an H x W x C float image in [0, 1]; returns the same shape (not clipped).

    ``sigma`` (0-255 units) steers models that take a noise level: a number, or an H x W map;
    when absent it is estimated. Models trained for one sigma ignore it. A gray model on a colour
    image works per channel; a colour model on a gray image works on the gray replicated.
    ``strength`` blends the result with the input (1: fully denoised).
    """
    info, net = model.info, model.net
    H, W, C = pixels.shape
    want = info.image_channels
    if C != want:
        if want == 1:
            return np.concatenate([denoise(model, pixels[:, :, i : i + 1], sigma, tile, overlap, strength, on_tile)
                                   for i in range(C)], axis=2)
        if C == 1 and want == 3:
            out = denoise(model, np.repeat(pixels, 3, axis=2), sigma, tile, overlap, strength, on_tile)
            return out.mean(axis=2, keepdims=True)
        raise N3Error(f"model {info.name} takes {want}-channel images, got {C} channels")
    x = torch.from_numpy(np.ascontiguousarray(pixels.transpose(2, 0, 1))).unsqueeze(0)
    if info.takes_noise_map:
        if sigma is None:
            sigma = estimate_sigma(pixels)
        smap = torch.as_tensor(np.asarray(sigma, dtype=np.float32))
        smap = smap.expand(H, W) if smap.dim() == 0 else smap
        if tuple(smap.shape) != (H, W):
            raise N3Error(f"noise map of shape {tuple(smap.shape)} does not match the image {H}x{W}")
        x = network_input(x, smap.view(1, 1, H, W), True)
    y = run_model(net, x, tile, overlap, on_tile)
    out = y[0, :C].numpy().transpose(1, 2, 0)
    if strength != 1.0:
        out = pixels + np.float32(strength) * (out - pixels)
    return np.ascontiguousarray(out, dtype=np.float32)


def run_model(net: torch.nn.Module, x: torch.Tensor, tile: int | None = None, overlap: int | None = None,
              on_tile: Callable[[int, int], None] | None = None) -> torch.Tensor:
    """Run an image-to-image network tiled, honouring its declared size requirements.

    The image is mirror-padded to the network's size multiple first, so that tiled and whole-image
    runs see the same patch grid; the padding is cropped from the result.
    """
    dev = next(net.parameters()).device
    mult = getattr(net, "size_multiple", 1)
    min_size = getattr(net, "min_size", 1)
    overlap = getattr(net, "context", DEFAULT_OVERLAP) if overlap is None else overlap
    tile = tile or auto_tile(dev, overlap)
    H, W = x.shape[-2:]
    ph, pw = (-H) % mult, (-W) % mult
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph), mode="reflect" if min(H, W) > max(ph, pw) else "replicate")

    def fn(t: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return net(t.to(dev)).float()

    while True:
        try:
            y = run_tiled(fn, x, tile, overlap, align=mult, min_size=min_size, on_tile=on_tile)
            break
        except torch.OutOfMemoryError:
            if dev.type != "cuda" or tile <= 128:
                raise N3Error(f"out of memory with tile {tile}; try a smaller --tile") from None
            torch.cuda.empty_cache()
            tile = max(128, tile // 2)
    return y[..., :H, :W]


class ModelCache:
    """Loads each model once per run; picks the shipped default by image kind when none is named."""

    def __init__(self, model: str | os.PathLike | None, device: str = "auto") -> None:
        self.model, self.device = model, select_device(device)
        self._loaded: dict[str, LoadedModel] = {}

    def for_channels(self, channels: int) -> LoadedModel:
        key = "rgb" if channels == 3 else "gray"
        path = str(resolve_model(self.model, key))
        if path not in self._loaded:
            self._loaded[path] = load_denoiser(path, key, str(self.device))
        return self._loaded[path]


def denoise_file(src: str | os.PathLike, dst: str | os.PathLike, model: ModelCache | str | None = None,
                 sigma: float | None = None, tile: int | None = None, overlap: int | None = None,
                 strength: float = 1.0, device: str = "auto",
                 on_tile: Callable[[int, int], None] | None = None) -> dict:
    """Read ``src``, denoise, write ``dst`` atomically (format from its extension, bit depth kept).

    Returns what was used: ``{"model": name, "sigma": value or None}``.
    """
    from .io.images import read_image, write_image

    cache = model if isinstance(model, ModelCache) else ModelCache(model, device)
    img = read_image(src)
    loaded = cache.for_channels(img.channels)
    used = sigma
    if loaded.info.takes_noise_map and sigma is None:
        used = estimate_sigma(img.pixels)
    out = denoise(loaded, img.pixels, used, tile, overlap, strength, on_tile)
    write_image(dst, img, out)
    return {"model": loaded.info.name, "sigma": used if loaded.info.takes_noise_map else None}
