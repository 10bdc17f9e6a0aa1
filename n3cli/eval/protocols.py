"""The evaluation protocols (N3NET-FACTS §5-7) on images in memory: the test pairs each protocol
makes from clean images and how the results are scored. Reading the images is the caller's
(:mod:`n3cli.api.evaluate` for folders, the training loop for its validation set), so ``n3 eval``
and the validation inside ``n3 train`` score with one implementation."""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..imaging.noise import add_gaussian, eval_rng
from .metrics import psnr, ssim

Images = list[tuple[str, np.ndarray]]
"""(name, pixels) pairs: float32 H x W x C in [0, 1]."""


def evaluate_denoiser(model: Any, images: Images, sigmas: list[float], seed: int = 0,
                      estimate_noise: bool = False, tile: int | None = None, source: str = "",
                      on_image: Callable[[str, float, float], None] | None = None,
                      on_output: Callable[[float, str, np.ndarray], None] | None = None,
                      tta: bool = False) -> dict[str, Any]:
    """Per-image and mean PSNR/SSIM of ``model`` (a runner) on the clean ``images`` (in the model's
    colour) at each sigma; the JSON shape ``n3 eval denoise --json`` prints (``source`` names the data).

    Noise is ``N(0, sigma/255)`` added to the [0, 1] clean image, neither clipped nor quantised,
    from a fixed stream per (seed, image index); the output is scored as float.
    Noise-aware models get the true sigma unless ``estimate_noise``.
    """
    from ..pipelines.denoise import denoise, estimate_level

    results = []
    for sigma in sigmas:
        per = []
        for i, (name, clean) in enumerate(images):
            noisy = add_gaussian(clean, sigma, eval_rng(seed, i))
            rec: dict[str, Any] = {"image": name}
            used = sigma
            if model.info.takes_noise_map:
                if estimate_noise:
                    used = estimate_level(model.info, noisy)
                rec["sigma_used"] = round(float(used), 3)
            out = denoise(model, noisy, used, tile=tile, tta=tta)
            rec["psnr"] = psnr(out, clean)
            rec["ssim"] = ssim(out, clean)
            rec["noisy_psnr"] = psnr(noisy, clean)
            per.append(rec)
            if on_output:
                on_output(sigma, name, out)
            if on_image:
                on_image(name, rec["psnr"], rec["ssim"])
        res: dict[str, Any] = {"data": source, "sigma": sigma,
                               "mean_psnr": float(np.mean([r["psnr"] for r in per])),
                               "mean_ssim": float(np.mean([r["ssim"] for r in per])),
                               "noisy_psnr": float(np.mean([r["noisy_psnr"] for r in per])),
                               "per_image": per}
        if model.info.takes_noise_map:
            res["sigma_estimated"] = bool(estimate_noise)
            if estimate_noise:
                est = np.array([r["sigma_used"] for r in per])
                res["sigma_error"] = {"mean": float(np.mean(est - sigma)), "mean_abs": float(np.mean(np.abs(est - sigma)))}
        results.append(res)
    return {"model": model.info.name, "task": model.info.task, "tta": tta, "results": results}


def evaluate_upscaler(model: Any, images: Images, scales: list[int], tile: int | None = None, source: str = "",
                      on_image: Callable[[str, float, float], None] | None = None, tta: bool = False) -> dict[str, Any]:
    """The SR protocol (FACTS §7) at each scale: 8-bit HR cropped to a multiple of the scale, LR
    by MATLAB bicubic downscaling rounded to 8 bits, outputs rounded to 8 bits, PSNR and SSIM on
    the rounded BT.601 Y channel with ``scale`` pixels shaved; bicubic upscaling alongside.

    ``images``: the HR images as they are (gray or colour); ``model``: a runner, or a function giving
    the runner for a scale (:func:`n3cli.api.evaluate_upscale` loads them).
    """
    from ..imaging.resize import imresize, make_lr, modcrop, psnr_y, rgb_to_y
    from ..pipelines.sr import upscale

    results, name = [], None
    for s in scales:
        runner = model if hasattr(model, "run") else model(s)
        name = runner.info.name
        per = []
        for image_name, px in images:
            rgb = np.repeat(px, 3, 2) if px.shape[2] == 1 else px  # gray images: Y of the replicated gray
            hr = modcrop(np.rint(rgb * 255.0), s)
            lr = make_lr(hr, s)
            bic = np.clip(np.rint(imresize(lr, s)), 0, 255)
            out = np.clip(np.rint(upscale(runner, (lr / 255.0).astype(np.float32), s, tile, tta=tta) * 255.0), 0, 255)
            y_hr, y_out, y_bic = (np.rint(rgb_to_y(a)) for a in (hr, out, bic))
            shave = (slice(s, -s), slice(s, -s))
            rec = {"image": image_name, "psnr": psnr_y(y_out, y_hr, s), "bicubic_psnr": psnr_y(y_bic, y_hr, s),
                   "ssim": ssim(y_out[shave] / 255.0, y_hr[shave] / 255.0)}
            per.append(rec)
            if on_image:
                on_image(image_name, rec["psnr"], rec["ssim"])
        results.append({"data": source, "scale": s, "mean_psnr": float(np.mean([r["psnr"] for r in per])),
                        "mean_ssim": float(np.mean([r["ssim"] for r in per])),
                        "bicubic_psnr": float(np.mean([r["bicubic_psnr"] for r in per])), "per_image": per})
    return {"model": name, "task": "sr", "tta": tta, "results": results}


RAW_EVAL_LEVELS: list[tuple[float, float]] = [(1e-4, 1e-6), (1e-3, 1e-5), (1e-2, 1e-4), (5e-2, 5e-4)]
"""The four (a, b) of ``n3 eval --task raw``: low to very high noise, b = a/100, all inside the
training range (log10 a in [-5, -1], log10 b - log10 a in [-3.6, 0.6]; the shipped models were
trained on the paper's narrower log10 a in [-4, -1], log10 b - log10 a in [-3.6, -1])."""


def raw_eval_pair(clean_srgb: np.ndarray, a: float, b: float, seed: int, index: int,
                  level: int) -> tuple[np.ndarray, np.ndarray]:
    """The synthetic raw test pair of one image: (clean RGGB mosaic, noisy mosaic).

    The image is unprocessed with ``rng(seed, index)`` (the same camera for every level) and
    noised with ``rng(seed, index, level + 1)``.
    """
    from ..imaging.raw_noise import add_poisson_gaussian, mosaic_rggb, unprocess

    rgb = clean_srgb if clean_srgb.shape[2] == 3 else np.repeat(clean_srgb, 3, 2)
    lin, _ = unprocess(rgb, np.random.default_rng([seed, index]))
    h, w = lin.shape[0] // 2 * 2, lin.shape[1] // 2 * 2
    clean = mosaic_rggb(lin[:h, :w])
    return clean, add_poisson_gaussian(clean, a, b, np.random.default_rng([seed, index, level + 1]))


def evaluate_raw(model: Any, images: Images, levels: list[tuple[float, float]] | None = None,
                 seed: int = 0, tile: int | None = None, baseline: Any = None, source: str = "",
                 on_image: Callable[[str, float, float], None] | None = None,
                 tta: bool = False) -> dict[str, Any]:
    """Raw-space PSNR of a RAW model (and optionally a ``baseline``) on synthetic raw versions of
    the sRGB ``images`` (FACTS §6 unprocessing, RGGB, Poisson-Gaussian noise at each level).

    PSNR is on the 4 packed planes in [0, 1], outputs not clipped; the model is told the true
    (a, b); ``tta``: both models with test-time augmentation. Returns the JSON shape
    ``n3 eval --task raw --json`` prints.
    """
    from ..imaging.bayer import pack
    from ..io.raw import RawImage
    from ..pipelines.raw import NoiseParams, denoise_mosaic

    results = []
    for k, (a, b) in enumerate(levels or RAW_EVAL_LEVELS):
        per = []
        for i, (name, srgb) in enumerate(images):
            clean, noisy = raw_eval_pair(srgb, a, b, seed, i, k)
            raw = RawImage(noisy, "RGGB", np.zeros((2, 2)), 1.0)
            params = NoiseParams(a, b, "given")
            ref = pack(clean, "RGGB")[0]
            rec: dict[str, Any] = {"image": name, "noisy_psnr": psnr(pack(noisy, "RGGB")[0], ref)}
            rec["psnr"] = psnr(pack(denoise_mosaic(model, raw, params, tile, tta=tta), "RGGB")[0], ref)
            if baseline is not None:
                rec["baseline_psnr"] = psnr(pack(denoise_mosaic(baseline, raw, params, tile, tta=tta), "RGGB")[0], ref)
            per.append(rec)
            if on_image:
                on_image(name, rec["psnr"], rec["noisy_psnr"])
        res: dict[str, Any] = {"data": source, "a": a, "b": b,
                               "mean_psnr": float(np.mean([r["psnr"] for r in per])),
                               "noisy_psnr": float(np.mean([r["noisy_psnr"] for r in per]))}
        if baseline is not None:
            res["baseline_psnr"] = float(np.mean([r["baseline_psnr"] for r in per]))
        res["per_image"] = per
        results.append(res)
    out: dict[str, Any] = {"model": model.info.name, "task": "raw", "seed": seed, "tta": tta, "results": results}
    if baseline is not None:
        out["baseline"] = baseline.info.name
    return out


Pairs = list[tuple[str, np.ndarray, np.ndarray]]
"""(name, noisy, clean) triples: float32 H x W x 3 in [0, 1]."""


def camera_pairs(images: Images, seed: int = 0) -> Pairs:
    """Synthetic real-noise test pairs of clean sRGB ``images``: each through the camera noise
    pipeline (:mod:`n3cli.imaging.camera_noise`) with its own fixed draws from (seed, index);
    both sides 8-bit, as photo files are."""
    import torch

    from ..imaging.camera_noise import camera_noise, pad16
    from ..imaging.noise import mixed_seed

    pairs = []
    for i, (name, px) in enumerate(images):
        rgb = np.repeat(px, 3, 2) if px.shape[2] == 1 else px
        x, (H, W) = pad16(torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1), dtype=np.float32))[None])
        g = torch.Generator().manual_seed(mixed_seed(seed, i, 0xCA3E))
        noisy, clean, _ = camera_noise(x, g)
        as_hwc = lambda t: np.ascontiguousarray(t[0, :, :H, :W].permute(1, 2, 0).numpy())  # noqa: E731
        pairs.append((name, as_hwc(noisy), np.rint(as_hwc(clean) * 255.0).astype(np.float32) / 255.0))
    return pairs


def evaluate_real(model: Any, pairs: Pairs, sigma: float | None = None, tile: int | None = None,
                  source: str = "", on_image: Callable[[str, float, float], None] | None = None,
                  on_output: Callable[[str, np.ndarray], None] | None = None, tta: bool = False) -> dict[str, Any]:
    """PSNR/SSIM on 8-bit RGB of ``model`` (a runner) on noisy/clean ``pairs``: the output is
    rounded to 8 bits as a saved photo is. Every image's noise level is read by the estimator
    (reported per image); noise-aware models are given it, or ``sigma`` when set."""
    from ..pipelines.denoise import denoise, estimate_level

    per = []
    for name, noisy, clean in pairs:
        est = estimate_level(model.info, noisy)
        out = denoise(model, noisy, est if sigma is None else sigma, tile=tile, tta=tta)
        out8 = np.rint(np.clip(out, 0.0, 1.0) * 255.0) / 255.0
        rec = {"image": name, "sigma_estimated": round(float(est), 3), "psnr": psnr(out8, clean),
               "ssim": ssim(out8, clean), "noisy_psnr": psnr(noisy, clean), "noisy_ssim": ssim(noisy, clean)}
        per.append(rec)
        if on_output:
            on_output(name, out)
        if on_image:
            on_image(name, rec["psnr"], rec["ssim"])
    mean = lambda k: float(np.mean([r[k] for r in per]))  # noqa: E731
    res = {"data": source, "pairs": len(per), "mean_psnr": mean("psnr"), "mean_ssim": mean("ssim"),
           "noisy_psnr": mean("noisy_psnr"), "noisy_ssim": mean("noisy_ssim"),
           "sigma_used": "given" if sigma is not None else "estimated", "per_image": per}
    if sigma is not None:
        res["sigma"] = sigma
    return {"model": model.info.name, "task": "real", "tta": tta, "results": [res]}
