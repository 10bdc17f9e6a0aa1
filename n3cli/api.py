"""The library API that the CLI and Python users share.

>>> from n3cli import api
>>> model = api.load_denoiser(color="rgb")            # torch, shipped colour model
>>> clean = api.denoise(model, noisy_pixels)          # H x W x C float32 in [0, 1]
>>> fast = api.load_denoiser(color="rgb", backend="onnx")  # onnxruntime, no torch needed

Nothing here imports torch until a torch model is loaded.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .errors import N3Error
from .imaging.estimate import estimate_sigma
from .runtime.backends import backend_for, open_runner
from .runtime.runner import Runner, run_image
from .store import zoo


def select_device(device: str = "auto"):
    """The torch device for ``auto``/``cpu``/``cuda`` (``cuda`` without a GPU is an error)."""
    from .runtime.torch_runner import select_device as _select

    return _select(device)


def resolve_model(model: str | os.PathLike | None, color: str = "gray", backend: str = "auto") -> Path:
    """A model file from a shipped name, a path, or (None) the shipped default for ``color``
    (``gray``, ``rgb``, or ``sr_x2``/``sr_x3``/``sr_x4`` for super-resolution).

    Shipped models resolve to their ``.onnx`` file for ``backend="onnx"``, else to the checkpoint.
    """
    if model is None:
        return zoo.default_for(color).file_for("onnx" if backend == "onnx" else "torch")
    p = Path(model)
    if p.suffix.lower() in (".safetensors", ".onnx") or p.exists() or os.sep in str(model):
        return p
    return zoo.find(str(model)).file_for("onnx" if backend == "onnx" else "torch")


def load_denoiser(model: str | os.PathLike | None = None, color: str = "gray", device: str = "auto",
                  backend: str = "auto") -> Runner:
    """Load a denoising model by name or path (None: the shipped default for ``color``).

    ``backend``: ``torch``, ``onnx`` (onnxruntime; shipped models have an exported copy), or
    ``auto`` (by the file's extension).
    """
    path = resolve_model(model, color, backend)
    runner = open_runner(path, backend_for(path, backend), device)
    if runner.info.task != "denoise":
        raise N3Error(f"{path}: a {runner.info.task} model, not a denoiser")
    return runner


def load_raw_denoiser(model: str | os.PathLike | None = None, device: str = "auto", backend: str = "auto") -> Runner:
    """Load a RAW (Bayer) denoising model by name or path (None: the shipped one)."""
    path = resolve_model(model, "bayer", backend)
    runner = open_runner(path, backend_for(path, backend), device)
    if runner.info.task != "raw":
        raise N3Error(f"{path}: a {runner.info.task} model, not a RAW denoiser (see `n3 models`)")
    return runner


def load_matcher(model: str | os.PathLike | None = None, knn: bool | None = None):
    """A match network by name or path (None: the shipped N³Net) for :func:`n3cli.match.pipeline.match_images`.

    Returns ``(net, name, knn_scorer or None, warning or None)``. ``knn``: True uses the
    model's kNN datastore (an error if it has none or it does not match), False never, None
    when the model carries one whose validation showed a gain.
    """
    from .match.knn_vote import scorer_for
    from .store.checkpoint import load_model

    path = resolve_model(model, "match", backend="torch")
    m = load_model(path)
    if m.info.task != "match":
        raise N3Error(f"{path}: a {m.info.task} model, not a match network")
    scorer, warning = scorer_for(path, m.info, knn)
    return m.net.eval(), m.info.name, scorer, warning


def load_upscaler(model: str | os.PathLike | None = None, scale: int = 2, device: str = "auto",
                  backend: str = "auto") -> Runner:
    """Load a super-resolution model for ``scale`` by name or path (None: the shipped one)."""
    from .pipelines.sr import model_scales

    path = resolve_model(model, f"sr_x{scale}", backend)
    runner = open_runner(path, backend_for(path, backend), device)
    if runner.info.task != "sr":
        raise N3Error(f"{path}: a {runner.info.task} model, not a super-resolution model")
    if scale not in model_scales(runner.info):
        raise N3Error(f"{path}: trained for x{'/x'.join(map(str, model_scales(runner.info)))}, not x{scale}")
    return runner


def upscale(model: Any, pixels: np.ndarray, scale: int, tile: int | None = None, overlap: int | None = None,
            on_tile: Callable[[int, int], None] | None = None) -> np.ndarray:
    """Enlarge an image by ``scale``: H x W x C (C = 1 or 3) or H x W, float in [0, 1] (returned
    float32) or uint8/uint16 (returned in the same type); the result is (H*scale) x (W*scale)[ x C].

    Colour images: the model refines the bicubic-upsampled luma (Y of BT.601 YCbCr); chroma is
    upsampled bicubically. Gray images go to the model directly. Tiles are planned on the input.
    """
    from .pipelines.sr import LowResRunner

    runner = LowResRunner(_as_runner(model), scale)
    pixels, restore = _as_float_image(pixels)
    return restore(_upscale(runner, pixels, scale, tile, overlap, on_tile))


def _upscale(runner, pixels: np.ndarray, scale: int, tile, overlap, on_tile) -> np.ndarray:
    from .imaging.resize import imresize
    from .pipelines.sr import rgb_to_ycbcr, ycbcr_to_rgb

    H, W, C = pixels.shape
    ycc = rgb_to_ycbcr(pixels) if C == 3 else pixels.astype(np.float64)
    x = np.ascontiguousarray(ycc[None, :, :, 0], dtype=np.float32)[None]
    y = run_image(runner, x, tile, overlap, on_tile, scale=scale)[0, 0]
    if C == 1:
        return np.ascontiguousarray(y[:, :, None], dtype=np.float32)
    chroma = imresize(ycc[:, :, 1:], scale)
    return np.ascontiguousarray(ycbcr_to_rgb(np.concatenate([y[:, :, None], chroma], 2)), dtype=np.float32)


def _as_runner(model: Any) -> Runner:
    if hasattr(model, "run") and hasattr(model, "fixed_size"):
        return model
    from .runtime.torch_runner import TorchRunner  # a LoadedModel or a bare nn.Module

    return TorchRunner(model)


def _as_float_image(pixels: np.ndarray) -> tuple[np.ndarray, Callable[[np.ndarray], np.ndarray]]:
    """``pixels`` as H x W x C float32 in [0, 1], and the function that gives a result back in the
    caller's layout: H x W stays H x W; uint8/uint16 are scaled by their maximum and the result
    rounded back to that type (clipped); floats stay float32, not clipped."""
    a = np.asarray(pixels)
    if a.ndim not in (2, 3) or a.size == 0 or (a.ndim == 3 and a.shape[2] not in (1, 3)):
        raise N3Error(f"expected an H x W or H x W x C image with C = 1 or 3, got an array of shape {a.shape}")
    if a.dtype in (np.uint8, np.uint16):
        peak = float(np.iinfo(a.dtype).max)
        f = a.astype(np.float32) / np.float32(peak)
        back_dtype = a.dtype

        def restore_int(y: np.ndarray) -> np.ndarray:
            return np.clip(np.rint(y * peak), 0, peak).astype(back_dtype)
        restore = restore_int
    elif a.dtype.kind == "f":
        f = a.astype(np.float32, copy=False)
        if not np.isfinite(f).all():
            raise N3Error(f"{int((~np.isfinite(f)).sum())} value(s) of the image are NaN or infinite")
        restore = lambda y: y  # noqa: E731
    else:
        raise N3Error(f"unsupported pixel type {a.dtype}: give uint8, uint16 or float in [0, 1]")
    if a.ndim == 2:
        return f[:, :, None], lambda y: restore(y[:, :, 0])
    return f, restore


def denoise(
    model: Any,
    pixels: np.ndarray,
    sigma: float | np.ndarray | None = None,
    tile: int | None = None,
    overlap: int | None = None,
    strength: float = 1.0,
    on_tile: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """Denoise an image: H x W x C (C = 1 or 3) or H x W; float in [0, 1] (returned float32, not
    clipped) or uint8/uint16 (returned in the same type). The result has the input's shape.

    ``model`` is what :func:`load_denoiser` returns (or a loaded checkpoint). ``sigma`` (0-255
    units, whatever the pixel type) steers models that take a noise level: a number, or an H x W
    map; when absent it is estimated. Models trained for one sigma ignore it. A gray model on a
    colour image works per channel; a colour model on a gray image works on the gray replicated.
    ``strength`` blends the result with the input (1: fully denoised).
    """
    pixels, restore = _as_float_image(pixels)
    return restore(_denoise(_as_runner(model), pixels, sigma, tile, overlap, strength, on_tile))


def _denoise(runner: Runner, pixels: np.ndarray, sigma, tile, overlap, strength, on_tile) -> np.ndarray:
    info = runner.info
    H, W, C = pixels.shape
    want = info.image_channels
    if C != want:
        if want == 1:
            return np.concatenate([_denoise(runner, pixels[:, :, i : i + 1], sigma, tile, overlap, strength, on_tile)
                                   for i in range(C)], axis=2)
        if C == 1 and want == 3:
            out = _denoise(runner, np.repeat(pixels, 3, axis=2), sigma, tile, overlap, strength, on_tile)
            return out.mean(axis=2, keepdims=True)
        raise N3Error(f"model {info.name} takes {want}-channel images, got {C} channels")
    x = np.ascontiguousarray(pixels.transpose(2, 0, 1), dtype=np.float32)[None]
    if info.takes_noise_map:
        if sigma is None:
            sigma = estimate_sigma(pixels)
        smap = np.asarray(sigma, dtype=np.float32)
        smap = np.broadcast_to(smap, (H, W)) if smap.ndim == 0 else smap
        if smap.shape != (H, W):
            raise N3Error(f"noise map of shape {smap.shape} does not match the image {H}x{W}")
        x = np.concatenate([x, (smap / np.float32(255.0))[None, None]], axis=1)
    y = run_image(runner, x, tile, overlap, on_tile)
    out = y[0, :C].transpose(1, 2, 0)
    if strength != 1.0:
        out = pixels + np.float32(strength) * (out - pixels)
    return np.ascontiguousarray(out, dtype=np.float32)


def run_model(net, x, tile: int | None = None, overlap: int | None = None,
              on_tile: Callable[[int, int], None] | None = None):
    """Torch convenience: run an ``nn.Module`` on a ``(1, C, H, W)`` tensor with tiling and padding."""
    import torch

    y = run_image(_as_runner(net), x.detach().cpu().numpy(), tile, overlap, on_tile)
    return torch.from_numpy(np.ascontiguousarray(y))


def upscale_file(src: str | os.PathLike, dst: str | os.PathLike, scale: int, model: Runner | str | None = None,
                 tile: int | None = None, overlap: int | None = None, device: str = "auto",
                 on_tile: Callable[[int, int], None] | None = None, backend: str = "auto",
                 max_pixels: int | None = None) -> dict:
    """Read ``src``, upscale by ``scale``, write ``dst`` atomically (bit depth kept; alpha is
    upscaled bicubically without the model). Returns ``{"model", "backend"}``. ``max_pixels``:
    see :func:`n3cli.io.images.read_image`."""
    from dataclasses import replace

    from .imaging.resize import imresize
    from .io.images import read_image, write_image

    runner = model if hasattr(model, "run") else load_upscaler(model, scale, device, backend)
    img = read_image(src, max_pixels)
    out = upscale(runner, img.pixels, scale, tile, overlap, on_tile)
    alpha = img.alpha
    if alpha is not None:
        peak = 1.0 if alpha.dtype.kind == "f" else float(np.iinfo(alpha.dtype).max)
        a = np.clip(imresize(alpha.astype(np.float64) / peak, scale), 0, 1) * peak
        alpha = (a if alpha.dtype.kind == "f" else np.rint(a)).astype(alpha.dtype)
    write_image(dst, replace(img, pixels=out, alpha=alpha))
    return {"model": runner.info.name, "backend": runner.describe()}


class ModelCache:
    """Loads each model once per run; picks the shipped default by image kind when none is named."""

    def __init__(self, model: str | os.PathLike | None, device: str = "auto", backend: str = "auto") -> None:
        self.model, self.device, self.backend = model, device, backend
        if backend == "torch" or (backend == "auto" and not str(model or "").lower().endswith(".onnx")):
            select_device(device)  # fail on a bad --device before any image
        self._loaded: dict[str, Runner] = {}

    def for_channels(self, channels: int) -> Runner:
        key = "rgb" if channels == 3 else "gray"
        path = str(resolve_model(self.model, key, self.backend))
        if path not in self._loaded:
            self._loaded[path] = load_denoiser(path, key, self.device, self.backend)
        return self._loaded[path]

    def for_raw(self) -> Runner:
        path = str(resolve_model(self.model, "bayer", self.backend))
        if path not in self._loaded:
            self._loaded[path] = load_raw_denoiser(path, self.device, self.backend)
        return self._loaded[path]

    def first(self, raw: bool) -> Runner:
        """Load the named model (to fail fast on a broken one) as what it is."""
        return self.for_raw() if raw else self.for_channels(1)


def denoise_file(src: str | os.PathLike, dst: str | os.PathLike, model: ModelCache | str | None = None,
                 sigma: float | None = None, tile: int | None = None, overlap: int | None = None,
                 strength: float = 1.0, device: str = "auto",
                 on_tile: Callable[[int, int], None] | None = None, backend: str = "auto",
                 noise: tuple[float, float] | None = None, compare: bool = False, overwrite: bool = False,
                 max_pixels: int | None = None) -> dict:
    """Read ``src``, denoise, write ``dst`` atomically (format from its extension, bit depth kept).

    Camera raw files (``.dng``, ``.cr2``, ``.nef``, ...) go through the RAW model
    (:mod:`n3cli.pipelines.raw`); ``noise`` (a, b) overrides their noise parameters.

    Returns what was used: ``{"model": name, "sigma": value or None, "backend": description}``
    (raw files: ``"noise"`` instead of ``"sigma"``). ``compare`` also writes
    ``<dst>.compare.png``: the centre 512 px of input and result side by side (raw files: both
    developed by LibRaw); its path is returned as ``"compare"``. The comparison obeys the rules of
    every output: never the input (an error, before any work), an existing file only with
    ``overwrite`` (else it is left alone and its path returned as ``"compare_skipped"``).
    ``max_pixels``: see :func:`n3cli.io.images.read_image`.
    """
    from .io.images import read_image, write_image
    from .io.raw import is_raw_path

    cache = model if isinstance(model, ModelCache) else ModelCache(model, device, backend)
    cmp, skipped = None, {}
    if compare:
        from .pipelines.compare import compare_target

        cmp, write_it = compare_target(src, dst, overwrite)
        if not write_it:
            cmp, skipped = None, {"compare_skipped": cmp}
    if is_raw_path(src):
        from .pipelines.raw import denoise_raw_file

        loaded = cache.for_raw()
        used = denoise_raw_file(src, dst, loaded, noise, tile, overlap, on_tile, strength, cmp)
        return {**used, **skipped, "backend": loaded.describe()}
    if Path(dst).suffix.lower() == ".dng":
        raise N3Error(f"{src}: a DNG holds a camera's raw mosaic; write an sRGB image as .png, .jpg or .tif")
    img = read_image(src, max_pixels)
    loaded = cache.for_channels(img.channels)
    used = sigma
    if loaded.info.takes_noise_map and sigma is None:
        used = estimate_sigma(img.pixels)
    out = denoise(loaded, img.pixels, used, tile, overlap, strength, on_tile)
    write_image(dst, img, out)
    res = {"model": loaded.info.name, "sigma": used if loaded.info.takes_noise_map else None,
           "backend": loaded.describe(), **skipped}
    if cmp:
        from .pipelines.compare import write_compare

        res["compare"] = write_compare(cmp, img.pixels, out)
    return res
