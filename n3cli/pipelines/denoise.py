"""Denoising an image array with any runner: the channel rules (a gray model on colour works
per channel, a colour model on gray on the gray replicated), the noise-level map of noise-aware
models (given or estimated), and ``strength`` (:mod:`n3cli.imaging.strength`)."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..errors import N3Error
from ..imaging.estimate import estimate_sigma
from ..imaging.strength import blend
from ..runtime.runner import Runner, run_image
from ..store.modelinfo import ModelInfo
from .arrays import MIN_STRETCH, as_float_image, as_runner, range_gain


def noise_estimator(info: ModelInfo, kind: str | None = None) -> str:
    """The :func:`~n3cli.imaging.estimate.estimate_sigma` method a model is given the reading of.

    "all-patches" for models trained on that reading (their map is "estimated sigma ..."). Models
    trained on the true sigma get the "weak-texture" reading, which is closer to it, when the noise
    is white (``kind`` "gaussian", :func:`~n3cli.imaging.noise_kind.noise_kind`); on a camera's
    correlated noise ("real") that reading takes only its finest scale (1.2-2.9 against 3.6-9.9 on
    the raw-sample pairs, where n3net-color scored 29.27 dB with it and 29.50 with all-patches), so
    they get all-patches there too."""
    meaning = str(info.noise.get("map", ""))
    if meaning.startswith("estimated sigma") and "weak-texture" not in meaning:
        return "all-patches"
    return "all-patches" if kind == "real" else "weak-texture"


def estimate_level(info: ModelInfo, pixels: np.ndarray, kind: str | None = None) -> float:
    """The noise level (0-255) a model is given for ``pixels`` (H x W x C float) when none is told;
    ``kind``: the noise's kind if already read (else it is read here when it matters)."""
    if kind is None and noise_estimator(info) == "weak-texture":
        from ..imaging.noise_kind import noise_kind

        kind = noise_kind(pixels).kind
    return estimate_sigma(pixels, method=noise_estimator(info, kind))


def denoise(
    model: Any,
    pixels: np.ndarray,
    sigma: float | np.ndarray | None = None,
    tile: int | None = None,
    overlap: int | None = None,
    strength: float = 1.0,
    on_tile: Callable[[int, int], None] | None = None,
    tta: bool = False,
    chroma_strength: float | None = None,
    stretch: bool = True,
) -> np.ndarray:
    """Denoise an image: H x W x C (C = 1 or 3) or H x W; float in [0, 1] (returned float32, not
    clipped) or uint8/uint16 (returned in the same type). The result has the input's shape.

    ``model`` is what :func:`load_denoiser` returns (or a loaded checkpoint). ``sigma`` (0-255
    units, whatever the pixel type) steers models that take a noise level: a number, or an H x W
    map; when absent it is estimated. A model trained for one sigma gets the image's contrast scaled
    about its mean so that the noise is at that sigma (at most :data:`MAX_GAIN` up), and the
    result scaled back; within :data:`SAME_SIGMA` of it, the image as it is. A gray model on a
    colour image works per channel; a colour model on a gray image works on the gray replicated.
    ``strength`` blends the result with the input (1: fully denoised); ``chroma_strength``, on colour
    images, keeps the colour part of the change by its own amount and the luminance part by
    ``strength`` (:func:`n3cli.imaging.strength.blend`). ``tta``: average the results on the image's
    eight rotations and mirror images (8x the time). ``stretch``: an image whose brightest value is
    far below white goes to the Gaussian-noise models brightened to it (:func:`stretch_gain`).
    """
    pixels, restore = as_float_image(pixels)
    runner = as_runner(model)
    gain, sigma = stretch_gain(runner.info, pixels, sigma) if stretch else (1.0, sigma)
    if gain == 1.0:
        out = _denoise(runner, pixels, sigma, tile, overlap, on_tile, tta)
    else:
        g = np.float32(gain)
        out = _denoise(runner, pixels * g, np.asarray(sigma, np.float32) * g, tile, overlap, on_tile, tta)
        out /= g
    return restore(blend(pixels, out, strength, chroma_strength))


def stretch_gain(info: ModelInfo | None, pixels: np.ndarray, sigma) -> tuple[float, Any]:
    """The gain that brings an image's brightest value to white for a Gaussian noise-map model, and
    the noise level (0-255, of ``pixels`` as they are) it needs, read here when not given.

    The models learned on images that span black to white; on one that spans a sixteenth of it
    (12-bit data in a 16-bit file) with the same noise relative to its range, n3net-gray was 3.6 dB
    worse than on that image brightened (BSD68 crops, ``benchmarks/stretch.py``). 1 for images
    brighter than 1/:data:`~n3cli.pipelines.arrays.MIN_STRETCH` (:func:`~n3cli.pipelines.arrays.range_gain`),
    for the real-noise and fixed-sigma models, and no more than keeps the noise within the model's
    trained range."""
    if info is None or not info.takes_noise_map or info.noise.get("trained_on") == "camera":
        return 1.0, sigma
    gain = range_gain(pixels)
    if gain == 1.0:
        return 1.0, sigma
    if sigma is None:
        sigma = estimate_level(info, pixels)
    top = float(info.noise.get("sigma_range", [0.0, 255.0])[1])
    level = float(np.max(sigma))
    gain = min(gain, top / level) if level > 0 else gain
    return (gain if gain >= MIN_STRETCH else 1.0), sigma


def _denoise(runner: Runner, pixels: np.ndarray, sigma, tile, overlap, on_tile, tta=False) -> np.ndarray:
    """The model's full result (strength 1), float32 of ``pixels``' shape."""
    info = runner.info
    H, W, C = pixels.shape
    want = info.image_channels
    if C != want:
        if want == 1:
            return np.concatenate([_denoise(runner, pixels[:, :, i : i + 1], sigma, tile, overlap, on_tile, tta)
                                   for i in range(C)], axis=2)
        if C == 1 and want == 3:
            out = _denoise(runner, np.repeat(pixels, 3, axis=2), sigma, tile, overlap, on_tile, tta)
            return out.mean(axis=2, keepdims=True)
        raise N3Error(f"model {info.name} takes {want}-channel images, got {C} channels")
    gain = _fixed_sigma_gain(info, pixels, sigma)
    if gain != 1.0:  # the noise brought to the level the model knows, and the result taken back
        mid = np.float32(pixels.mean())
        out = _denoise(runner, (pixels - mid) * np.float32(gain) + mid, info.noise["sigma"], tile, overlap,
                       on_tile, tta)
        return np.ascontiguousarray((out - mid) / np.float32(gain) + mid, dtype=np.float32)
    x = np.ascontiguousarray(pixels.transpose(2, 0, 1), dtype=np.float32)[None]
    constants: tuple[float, ...] = ()
    if info.takes_noise_map:
        if sigma is None:
            sigma = estimate_level(info, pixels)
        smap = np.asarray(sigma, dtype=np.float32)
        if smap.ndim == 0:  # one level: added to each tile as it runs, not as a full-size plane
            constants = (float(smap / np.float32(255.0)),)
        elif smap.shape != (H, W):
            raise N3Error(f"noise map of shape {smap.shape} does not match the image {H}x{W}")
        else:
            x = np.concatenate([x, (smap / np.float32(255.0))[None, None]], axis=1)
    y = run_image(runner, x, tile, overlap, on_tile, tta=tta, constants=constants)
    del x  # a full-size copy: not to be alive beside the result's own (12 MP colour: 137 MB each)
    return np.ascontiguousarray(y[0, :C].transpose(1, 2, 0), dtype=np.float32)


MAX_GAIN = 2.0
"""At most this much contrast is added to bring weak noise up to a fixed-sigma model's level:
more takes the image far outside the range the model was trained on (measured: on BSD68 at
sigma 5, gains up to 2 scored best; docs/usage.md)."""
SAME_SIGMA = 0.2
"""Within this share of a fixed-sigma model's sigma the noise counts as its own level (the
estimator over-reads textured images by up to a fifth at sigma 25)."""


def _fixed_sigma_gain(info, pixels: np.ndarray, sigma) -> float:
    """For a model trained at one sigma: the contrast gain that brings the image's noise (``sigma``,
    estimated when None) to that sigma, 1.0 when they already agree or the model takes a map."""
    trained = info.noise.get("sigma") if info.noise.get("kind") == "fixed" else None
    if not trained or (sigma is not None and np.ndim(sigma) != 0):
        return 1.0
    level = float(estimate_level(info, pixels) if sigma is None else sigma)
    if level <= 0 or abs(level - trained) <= SAME_SIGMA * trained:
        return 1.0
    return min(float(trained) / level, MAX_GAIN)


def run_model(net, x, tile: int | None = None, overlap: int | None = None,
              on_tile: Callable[[int, int], None] | None = None):
    """Torch convenience: run an ``nn.Module`` on a ``(1, C, H, W)`` tensor with tiling and padding."""
    import torch

    y = run_image(as_runner(net), x.detach().cpu().numpy(), tile, overlap, on_tile)
    return torch.from_numpy(np.ascontiguousarray(y))
