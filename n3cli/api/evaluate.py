"""`n3 eval` for Python users: the paper's protocols with the model loading done (the shipped
default when no model is named), each returning the JSON-ready report the CLI prints. The
protocols (and torch) are imported when one runs."""
from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import N3Error
from ..io.folders import list_images
from .loading import load_denoiser, load_raw_denoiser, load_upscaler, resolve_model

Progress = Callable[[str, float, float], None]


def read_images(folder: str | os.PathLike, color: str | None = None) -> list[tuple[str, Any]]:
    """The folder's images, sorted by name, as (name, float32 H x W x C) in ``color`` (``gray``,
    ``rgb``; None: as they are): what the protocols of :mod:`n3cli.eval.protocols` score."""
    from ..imaging.color import as_color
    from ..io.folders import read_folder

    return [(name, as_color(px, color)) for name, px in read_folder(folder)]


def evaluate_denoise(model: str | os.PathLike | None, data: str | os.PathLike, sigmas: list[float], seed: int = 0,
                     estimate_noise: bool = False, tile: int | None = None, save_dir: str | None = None,
                     device: str = "auto", backend: str = "auto", on_image: Progress | None = None,
                     tta: bool = False) -> dict[str, Any]:
    """Gaussian denoising (FACTS §5) of the clean images in ``data`` at each sigma. ``model``
    None: the model `n3 denoise` picks for the folder's first image. ``tta``: with test-time
    augmentation (:func:`n3cli.api.denoise`)."""
    from ..eval.protocols import evaluate_denoiser
    from ..io.images import Image, read_image, write_image

    if model is None:
        color = "rgb" if read_image(list_images(data)[0]).channels == 3 else "gray"
        runner = load_denoiser(None, color, device, backend)
    else:
        runner = load_denoiser(model, device=device, backend=backend)

    def save(sigma: float, name: str, out) -> None:
        import numpy as np

        dst = Path(save_dir) / f"sigma{sigma:g}" / (Path(name).stem + ".png")
        write_image(dst, Image(out, np.dtype(np.uint16)))

    report = evaluate_denoiser(runner, read_images(data, runner.info.color), list(sigmas), seed, estimate_noise,
                               tile, str(data), on_image, save if save_dir else None, tta)
    return {**report, "backend": runner.describe()}


def evaluate_upscale(model: str | os.PathLike | None, data: str | os.PathLike, scales: list[int],
                     tile: int | None = None, device: str = "auto", backend: str = "auto",
                     on_image: Progress | None = None, tta: bool = False) -> dict[str, Any]:
    """The SR protocol (FACTS §7) at each scale; ``model`` None: the shipped model for each scale.
    ``tta``: with test-time augmentation (:func:`n3cli.api.upscale`)."""
    from ..eval.protocols import evaluate_upscaler

    return evaluate_upscaler(lambda s: load_upscaler(model, s, device, backend), read_images(data), list(scales),
                             tile, str(data), on_image, tta)


def evaluate_raw_denoise(model: str | os.PathLike | None, data: str | os.PathLike,
                         levels: list[tuple[float, float]] | None = None, baseline: str | None = "dncnn-raw",
                         seed: int = 0, tile: int | None = None, device: str = "auto", backend: str = "auto",
                         on_image: Progress | None = None, tta: bool = False) -> dict[str, Any]:
    """Raw-space PSNR on synthetic raw versions of ``data`` at each (a, b) level (default: the four
    standard ones), with the DnCNN ablation (``baseline``; None for none) alongside. ``tta``: both
    models with test-time augmentation (:func:`n3cli.pipelines.raw.denoise_mosaic`)."""
    from ..eval.protocols import RAW_EVAL_LEVELS, evaluate_raw

    runner = load_raw_denoiser(model, device, backend)
    base = None if baseline is None else load_raw_denoiser(baseline, device, backend)
    report = evaluate_raw(runner, read_images(data, "rgb"), levels or RAW_EVAL_LEVELS, seed, tile, base, str(data),
                          on_image, tta)
    return {**report, "backend": runner.describe()}


def evaluate_matching(model: str | os.PathLike | None = None, data: str | os.PathLike | None = None,
                      pairs: int = 200, outliers: tuple[float, float] = (0.5, 0.95),
                      ratio: float | None = 0.8) -> dict[str, Any]:
    """Pose mAP at 5/10/20 degrees of robust estimation, the shipped CNNet and N³Net (``model``
    replaces the N³Net), each with its kNN interpolation where it carries one, on the synthetic
    test set or the pairs file ``data``."""
    from ..match.evaluate import evaluate_match
    from ..match.knn_vote import scorer_for
    from ..store.checkpoint import load_model

    nets: dict[str, Any] = {"robust": None}
    for key, name in (("cnnet", "cnnet-match"), ("n3net", model)):  # None: the shipped N³Net
        path = resolve_model(name, "match", backend="torch")
        m = load_model(path)
        nets[key] = m.net.eval()
        if m.info.extra.get("knn"):  # its kNN interpolation too, with the lambda tuned on validation
            scorer, _ = scorer_for(path, m.info, True)
            nets[f"{key}+knn"] = (nets[key], scorer)
    report = evaluate_match(nets, data, pairs, outliers=tuple(outliers), ratio=ratio)
    if model is not None:
        report["n3net"] = str(model)
    return report


def count_images(data: str | os.PathLike, pairs: bool = False) -> int:
    """How many images an evaluation of ``data`` runs per level (for a progress bar); ``pairs``:
    how many noisy/clean pairs it holds."""
    if pairs:
        from ..io.folders import list_pairs

        return len(list_pairs(data))
    return len(list_images(data))


def read_pairs(folder: str | os.PathLike) -> list[tuple[str, Any, Any]]:
    """The noisy/clean pairs of ``folder`` (:func:`n3cli.io.folders.list_pairs`) as (name, noisy,
    clean), float32 RGB in [0, 1]; the two images of a pair must have the same size."""
    from ..imaging.color import as_color
    from ..io.folders import list_pairs
    from ..io.images import read_image

    out = []
    for name, noisy_path, clean_path in list_pairs(folder):
        noisy, clean = (as_color(read_image(p).pixels, "rgb") for p in (noisy_path, clean_path))
        if noisy.shape != clean.shape:
            raise N3Error(f"{noisy_path}: {noisy.shape[1]}x{noisy.shape[0]}, its clean image {clean_path.name} is "
                          f"{clean.shape[1]}x{clean.shape[0]}")
        out.append((name, noisy, clean))
    return out


def read_raw_pairs(data: str | os.PathLike, pushes: tuple[float, ...] = (1.0, 4.0)
                   ) -> list[tuple[str, Any, Any]]:
    """Noisy/clean pairs made from the Bayer raw files of ``data`` (a folder, or one file), one per
    push (:func:`n3cli.eval.raw_pairs.raw_pairs`: each 3x3 block's centre photosite against the
    mean of the other 8, developed alike); raw files that are not Bayer are left out."""
    from ..errors import ImageError
    from ..eval.raw_pairs import raw_pairs
    from ..io.raw import is_raw_path, read_raw

    data = Path(data)
    if not data.exists():
        raise N3Error(f"{data}: no such file or folder")
    files = sorted(p for p in data.iterdir() if p.is_file() and is_raw_path(p)) if data.is_dir() else [data]
    out = []
    for f in files:
        try:
            out += raw_pairs(f.name, read_raw(f), tuple(pushes))
        except ImageError:
            if data.is_file():
                raise
    if not out:
        raise N3Error(f"{data}: no Bayer raw files to make pairs from")
    return out


def evaluate_real_noise(model: str | os.PathLike | None, data: str | os.PathLike, synthesize: bool = False,
                        seed: int = 0, sigma: float | None = None, tile: int | None = None,
                        save_dir: str | None = None, device: str = "auto", backend: str = "auto",
                        on_image: Progress | None = None, tta: bool = False, from_raw: bool = False,
                        pushes: tuple[float, ...] = (1.0, 4.0)) -> dict[str, Any]:
    """Real-noise denoising: PSNR/SSIM on 8-bit RGB over the noisy/clean pairs of ``data``
    (:func:`read_pairs`); with ``synthesize``, over pairs made from its clean images by the camera
    noise pipeline (:func:`n3cli.eval.protocols.camera_pairs`, ``seed``); with ``from_raw``, over
    pairs made from its real Bayer raw files (:func:`read_raw_pairs`, ``pushes``). ``model`` None:
    the shipped real-noise model. Noise-aware models get the estimator's reading unless ``sigma``."""
    from ..eval.protocols import camera_pairs, evaluate_real
    from ..io.images import Image, write_image

    if synthesize and from_raw:
        raise N3Error("pairs come from clean images (synthesize) or from raw files (from_raw), not both")
    runner = load_denoiser(model, "real" if model is None else "rgb", device, backend)
    if from_raw:
        pairs = read_raw_pairs(data, pushes)
    else:
        pairs = camera_pairs(read_images(data, "rgb"), seed) if synthesize else read_pairs(data)

    def save(name: str, out) -> None:
        import numpy as np

        write_image(Path(save_dir) / (Path(name).stem + ".png"), Image(out, np.dtype(np.uint8)))

    report = evaluate_real(runner, pairs, sigma, tile, str(data), on_image, save if save_dir else None, tta)
    report["results"][0]["pairs_from"] = (f"camera noise synthesis, seed {seed}" if synthesize else
                                          f"raw files: 3x3 centre vs mean of 8, pushes {list(pushes)}" if from_raw
                                          else "files")
    return {**report, "backend": runner.describe()}


def read_photos(data: str | os.PathLike, crop: tuple[int, int] | None = None,
                jpeg_quality: int = 92) -> tuple[list[tuple[str, Any]], list[str]]:
    """The photos of ``data`` (a folder, or one file) for :func:`evaluate_flat_noise`: images as
    they are (RGB in [0, 1]) and Bayer raw files developed to camera JPEGs at ``jpeg_quality``
    (:func:`n3cli.io.camera_jpeg.camera_jpeg`), each centre-cropped to ``crop`` (width, height).
    Returns them with the one-line reasons for the files left out (raw files that are not Bayer)."""
    from ..errors import ImageError
    from ..imaging.color import as_color
    from ..io.camera_jpeg import camera_jpeg, centre_crop
    from ..io.images import is_image_path, read_image
    from ..io.raw import is_raw_path

    data = Path(data)
    if data.is_dir():
        files = sorted(p for p in data.iterdir() if p.is_file() and (is_image_path(p) or is_raw_path(p)))
    elif data.is_file():
        files = [data]
    else:
        raise N3Error(f"{data}: no such file or folder")
    photos, skipped = [], []
    for f in files:
        if is_raw_path(f):
            try:
                photos.append((f.name, camera_jpeg(f, jpeg_quality, crop)))
            except ImageError as e:
                if data.is_file():
                    raise
                skipped.append(str(e))
        elif is_image_path(f):
            photos.append((f.name, centre_crop(as_color(read_image(f).pixels, "rgb"), crop)))
        else:
            raise N3Error(f"{f}: not an image or camera raw file")
    if not photos:
        raise N3Error(f"{data}: no photos to measure (images, or Bayer raw files)"
                      + (f"; left out: {'; '.join(skipped)}" if skipped else ""))
    return photos, skipped


def read_mosaics(data: str | os.PathLike, crop: tuple[int, int] | None = None
                 ) -> tuple[list[tuple[str, Any, Any]], list[str]]:
    """The Bayer raw files of ``data`` (a folder, or one file) for a RAW model's
    :func:`evaluate_flat_noise`: (name, RawImage, noise parameters) with the noise n3 reads from
    the whole file (NoiseProfile, optical black, fit; no user profiles), the mosaic then cut to
    its centre ``crop`` (width, height in photosites, the CFA phase kept). Returns them with the
    one-line reasons for the files left out."""
    from dataclasses import replace

    import numpy as np

    from ..errors import ImageError
    from ..io.raw import is_raw_path, read_raw
    from ..pipelines.raw import noise_params

    data = Path(data)
    if not data.exists():
        raise N3Error(f"{data}: no such file or folder")
    if data.is_file() and not is_raw_path(data):
        raise N3Error(f"{data}: not a camera raw file (a RAW model measures raw files)")
    files = sorted(p for p in data.iterdir() if p.is_file() and is_raw_path(p)) if data.is_dir() else [data]
    out, skipped = [], []
    for f in files:
        try:
            raw = read_raw(f)
        except ImageError as e:
            if data.is_file():
                raise
            skipped.append(str(e))
            continue
        noise = noise_params(raw)
        if crop:
            H, W = raw.mosaic.shape
            h, w = min(crop[1], H), min(crop[0], W)
            y, x = (H - h) // 4 * 2, (W - w) // 4 * 2  # even offsets: the CFA pattern stays
            raw = replace(raw, mosaic=np.ascontiguousarray(raw.mosaic[y : y + h, x : x + w]))
        out.append((f.name, raw, noise))
    if not out:
        raise N3Error(f"{data}: no Bayer raw files to measure" + (f"; left out: {'; '.join(skipped)}" if skipped else ""))
    return out, skipped


def evaluate_flat_noise(model: str | os.PathLike | None, data: str | os.PathLike,
                        crop: tuple[int, int] | None = None, jpeg_quality: int = 92, sigma: float | None = None,
                        tile: int | None = None, save_dir: str | None = None, device: str = "auto",
                        backend: str = "auto", on_image: Callable[[str, float], None] | None = None,
                        tta: bool = False) -> dict[str, Any]:
    """Noise left in the flat windows of real photos, which need no clean reference
    (:mod:`n3cli.eval.flat`). An sRGB denoiser (``model`` None: the shipped real-noise model) is
    measured on the photos of ``data`` (:func:`read_photos`), noise-aware models given the
    estimator's reading unless ``sigma``; a RAW model on the mosaics of its Bayer raw files
    (:func:`read_mosaics`, ``crop`` in photosites), with the noise n3 reads from each file."""
    from ..eval.flat import evaluate_flat, evaluate_flat_raw
    from ..io.images import Image, write_image
    from ..runtime.backends import backend_for, open_runner

    path = resolve_model(model, "real" if model is None else "rgb", backend)
    runner = open_runner(path, backend_for(path, backend), device)
    if runner.info.task == "raw":
        if sigma is not None or save_dir:
            raise N3Error(f"{path}: a RAW model is measured with the noise each file reads, and writes no images "
                          "(no --sigma, no --save)")
        files, skipped = read_mosaics(data, crop)
        report = evaluate_flat_raw(runner, files, tile, str(data), on_image, tta)
    elif runner.info.task == "denoise":
        photos, skipped = read_photos(data, crop, jpeg_quality)

        def save(name: str, out) -> None:
            import numpy as np

            write_image(Path(save_dir) / (Path(name).stem + ".png"), Image(np.clip(out, 0, 1), np.dtype(np.uint8)))

        report = evaluate_flat(runner, photos, sigma, tile, str(data), on_image, save if save_dir else None, tta)
        report["results"][0]["jpeg_quality"] = jpeg_quality
    else:
        raise N3Error(f"{path}: a {runner.info.task} model, not a denoiser")
    res = report["results"][0]
    res["skipped"] = skipped
    if crop:
        res["crop"] = f"{crop[0]}x{crop[1]}"
    return {**report, "backend": runner.describe()}
