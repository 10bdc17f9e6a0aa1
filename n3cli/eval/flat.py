"""Noise left on real photos that have no clean reference: the flat areas of each photo (walls,
sky, colour-chart patches) measured before and after denoising.

Flat windows are the ``WINDOW`` x ``WINDOW`` squares whose blurred image (Gaussian, sigma 3)
varies least: the lowest ``fraction`` of them by the blurred square's standard deviation, away
from black and white (clipped noise reads low), among the squares whose own standard deviation
is at most the median square's (fine texture, stripes a few pixels apart, blurs flat too but
is no noise, and a denoiser is right to keep it). Where the scene is flat the standard deviation
of each channel is the noise, so per window the figure is output std / input std, and per photo
its median over windows: 1 is untouched, 0 is perfectly flat. It says nothing of detail (a blur
scores well), so it is read beside a PSNR on synthetic pairs, as a guard, never alone.

A RAW model is measured the same way on the packed RGGB planes of the mosaic, where the noise is
the sensor's own (:func:`evaluate_flat_raw`); unlike the Laplacian-residual measure of
``benchmarks/raw_noise_left.py`` it does not count texture, so 0 is within reach.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

WINDOW = 24
"""Side of a flat window, pixels: large enough for a noise std, small enough to find flat ones."""

Window = tuple[int, int]


def flat_windows(px: np.ndarray, fraction: float = 0.05, window: int = WINDOW,
                 levels: tuple[float, float] = (0.08, 0.92)) -> list[Window]:
    """Top-left corners of the flattest ``window``-square tiles of ``px`` (H x W x C in [0, 1]),
    on a grid of ``window`` steps, among those whose blurred mean lies inside ``levels`` (sRGB:
    away from black and white; a linear raw mosaic's planes: below clipping); at least one when
    any tile does."""
    import torch

    from ..imaging.camera import gaussian_blur

    blurred = gaussian_blur(torch.from_numpy(np.ascontiguousarray(px.transpose(2, 0, 1), np.float32))[None],
                            3.0)[0].numpy()
    H, W = px.shape[:2]
    cand = []
    for y in range(0, H - window + 1, window):
        for x in range(0, W - window + 1, window):
            b = blurred[:, y : y + window, x : x + window]
            if levels[0] < float(b.mean()) < levels[1]:
                raw_std = float(px[y : y + window, x : x + window].std(axis=(0, 1)).max())
                cand.append((float(b.std(axis=(1, 2)).max()), raw_std, y, x))
    if not cand:
        return []
    cap = float(np.median([c[1] for c in cand]))
    scored = sorted(c for c in cand if c[1] <= cap)
    return [(y, x) for _, _, y, x in scored[: max(1, int(len(cand) * fraction))]]


def window_noise(px: np.ndarray, windows: list[Window], window: int = WINDOW) -> np.ndarray:
    """The noise in each window: the standard deviation of each channel, averaged over channels."""
    return np.array([px[y : y + window, x : x + window].std(axis=(0, 1)).mean() for y, x in windows], np.float64)


def noise_left(noisy: np.ndarray, out: np.ndarray, windows: list[Window], clip: bool = True) -> float:
    """Median over ``windows`` of the output's noise over the input's; ``clip``: the output clipped
    to [0, 1] first, as a photo is saved (a raw mosaic is not)."""
    before = window_noise(noisy, windows)
    after = window_noise(np.clip(out, 0.0, 1.0) if clip else out, windows)
    return float(np.median(after / np.maximum(before, 1e-12)))


def _result(per: list[dict[str, Any]], source: str, sigma_used: str) -> dict[str, Any]:
    """The per-photo records and their mean noise left (photos without a flat window left out)."""
    scored = [r["noise_left"] for r in per if "noise_left" in r]
    return {"data": source, "photos": len(scored), "mean_noise_left": float(np.mean(scored)) if scored else None,
            "sigma_used": sigma_used, "per_image": per}


Photos = list[tuple[str, np.ndarray]]
"""(name, pixels) pairs: float32 H x W x 3 in [0, 1], noisy photos as they came."""


def evaluate_flat(model: Any, photos: Photos, sigma: float | None = None, tile: int | None = None,
                  source: str = "", on_image: Callable[[str, float], None] | None = None,
                  on_output: Callable[[str, np.ndarray], None] | None = None, tta: bool = False) -> dict[str, Any]:
    """Noise left by ``model`` (a runner) in the flat windows of each photo, and its mean over the
    photos; noise-aware models get the estimator's reading of each photo unless ``sigma``. Photos
    without a flat window (all black, white or texture) are reported and left out of the mean."""
    from ..pipelines.denoise import denoise, estimate_level

    per = []
    for name, px in photos:
        est = estimate_level(model.info, px)
        windows = flat_windows(px)
        rec: dict[str, Any] = {"image": name, "size": [int(px.shape[1]), int(px.shape[0])],
                               "sigma_estimated": round(float(est), 3), "windows": len(windows)}
        if windows:
            out = denoise(model, px, est if sigma is None else sigma, tile=tile, tta=tta)
            rec["input_noise"] = round(float(np.median(window_noise(px, windows))) * 255.0, 3)
            rec["noise_left"] = noise_left(px, out, windows)
            if on_output:
                on_output(name, out)
        per.append(rec)
        if on_image:
            on_image(name, rec.get("noise_left", float("nan")))
    res = _result(per, source, "given" if sigma is not None else "estimated")
    if sigma is not None:
        res["sigma"] = sigma
    return {"model": model.info.name, "task": "flat", "tta": tta, "results": [res]}


RAW_LEVELS = (0.0, 0.9)
"""A raw mosaic's planes are linear: flat windows anywhere below clipping (dark ones too)."""


def evaluate_flat_raw(model: Any, files: list[tuple[str, Any, Any]], tile: int | None = None, source: str = "",
                      on_image: Callable[[str, float], None] | None = None, tta: bool = False) -> dict[str, Any]:
    """Noise left by a RAW ``model`` (a runner) in the flattest windows of each mosaic's packed
    RGGB planes: ``files`` are (name, :class:`~n3cli.io.raw.RawImage`, noise parameters) triples,
    each denoised with the parameters given (n3's reading of the whole file) as `n3 denoise` does."""
    from ..imaging.bayer import pack
    from ..pipelines.raw import denoise_mosaic

    per = []
    for name, raw, noise in files:
        planes = pack(raw.mosaic, raw.pattern)[0].transpose(1, 2, 0)
        windows = flat_windows(planes, levels=RAW_LEVELS)
        rec: dict[str, Any] = {"image": name, "size": [int(raw.mosaic.shape[1]), int(raw.mosaic.shape[0])],
                               "a": float(noise.a), "b": float(noise.b), "noise_source": noise.source,
                               "windows": len(windows)}
        if windows:
            out = pack(denoise_mosaic(model, raw, noise, tile, tta=tta), raw.pattern)[0].transpose(1, 2, 0)
            rec["input_noise"] = float(np.median(window_noise(planes, windows)))  # linear, 1 = white level
            rec["noise_left"] = noise_left(planes, out, windows, clip=False)
        per.append(rec)
        if on_image:
            on_image(name, rec.get("noise_left", float("nan")))
    return {"model": model.info.name, "task": "flat", "mosaic": True, "tta": tta,
            "results": [_result(per, source, "n3's reading of each file")]}
