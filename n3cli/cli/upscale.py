"""`n3 upscale IN... -o OUT --scale 2|3|4`."""
from __future__ import annotations

import click

from ..errors import N3Error
from .common import (
    backend_option,
    check_depths,
    depth_option,
    device_option,
    fail,
    json_lines_option,
    max_pixels_option,
    precision_option,
    quality_option,
    ray_options,
    stretch_note,
    tile_options,
    tta_option,
)
from .stdio import with_stdio


@click.command()
@click.argument("inputs", nargs=-1, required=True)
@click.option("-o", "--output", default=None,
              help="Output file (one input), folder (several inputs, folders, globs) or - (standard output; the input - is standard input). Without it, --suffix writes beside each input.")
@click.option("-s", "--scale", type=click.FloatRange(1, 4, min_open=True), default=None,
              help="Enlargement factor: 2, 3 or 4, or one between (1.5, 2.5, ...: the model enlarges by the next "
                   "whole factor, then the result is shrunk to this one).")
@click.option("--width", "to_width", type=click.IntRange(min=1), default=None, metavar="PX",
              help="Instead of --scale: enlarge each image to this width (the height in proportion; up to 4x).")
@click.option("--height", "to_height", type=click.IntRange(min=1), default=None, metavar="PX",
              help="Instead of --scale: enlarge each image to this height (the width in proportion; up to 4x).")
@click.option("-m", "--model", default=None, metavar="NAME|FILE",
              help="Shipped model name (see `n3 models`), a .safetensors or an .onnx SR model. "
                   "Default: the shipped model for the scale.")
@click.option("--denoise", is_flag=True,
              help="Denoise each photo before enlarging it, with the model `n3 denoise` picks for it and the "
                   "noise level read from it. The SR models learned on clean images and sharpen noise; on clean "
                   "images this costs detail (measured: docs/usage.md).")
@click.option("--noise", "photo_noise", type=click.Choice(["auto", "real", "gaussian"]), default="auto",
              show_default=True, help="With --denoise: the noise, as `n3 denoise --noise` takes it.")
@click.option("--sigma", type=click.FloatRange(min=0, max=255), default=None,
              help="With --denoise: the photos' noise level in 0-255 units (raw files: the noise read from "
                   "the file, as `n3 denoise` reads it); with --burst also without --denoise: one frame's. "
                   "Default: estimated per image.")
@click.option("--strength", type=click.FloatRange(0, 1), default=1.0, show_default=True,
              help="With --denoise: how much of the noise to remove (0.5 keeps half the grain); with "
                   "--chroma-strength, the luminance noise's share, as `n3 denoise --strength`.")
@click.option("--chroma-strength", "chroma_strength", type=click.FloatRange(0, 1), default=None,
              help="With --denoise: how much of the colour noise to remove, apart from the luminance noise "
                   "[default: as --strength].")
@click.option("--burst", is_flag=True,
              help="The inputs are photos of one scene (a hand-held burst, or a TIFF time series): register them "
                   "onto the first and enlarge them into one output (-o FILE) with detail no single frame "
                   "holds. Moving things are taken from the first frame alone.")
@click.option("--ext", type=click.Choice(["png", "jpg", "tif", "bmp", "webp", "heic"]), default=None,
              help="Output format in folder mode [default: the input's].")
@click.option("--suffix", default=None, metavar="TEXT",
              help="Add TEXT to each output's name (photo.png -> photoTEXT.png); without -o, outputs go beside their inputs.")
@click.option("-r", "--recursive", is_flag=True, help="Descend into folders; the output folder mirrors the input tree.")
@click.option("--overwrite", is_flag=True, help="Replace existing outputs (never an input).")
@click.option("--compare", is_flag=True,
              help="Also write OUT.compare.png: the centre 512 px of the result beside the same region "
                   "enlarged bicubically.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar (drawn only when stderr is a terminal).")
@quality_option
@depth_option
@json_lines_option
@tta_option
@tile_options
@max_pixels_option
@device_option
@backend_option
@precision_option
@ray_options
@with_stdio(lambda f: ".tif" if _raw(f) else f.suffix)
def upscale(inputs, output, scale, to_width, to_height, model, denoise, photo_noise, sigma, strength, chroma_strength, burst, ext, suffix, recursive, overwrite, compare, quiet, quality, depth, as_json, tta, tile, overlap, max_megapixels,
            device, backend, precision, ray_address, workers, gpus_per_worker):
    """Enlarge photos (super-resolution) with an N³Net SR model.

    The model refines the bicubic-upsampled luma; colour is upsampled bicubically, alpha too
    (without the model). Bit depth, ICC profile and EXIF are kept. --tile and --overlap are in
    input pixels. Camera raw files are developed (as `n3 denoise` develops them; with --denoise,
    their mosaic denoised first) and enlarged to a developed image: .tif 16-bit by default. A TIFF
    stack is enlarged frame by frame into a stack (its pixel size divided by the factor).

    \b
    Examples:
      n3 upscale small.png -o big.png --scale 2
      n3 upscale shots/ -o big/ --scale 4 --ext tif
      n3 upscale small.png -o big.png --scale 1.5       # x2 by the model, then shrunk to x1.5
      n3 upscale shots/ -o print/ --width 6000          # each photo to 6000 px wide
      n3 upscale shots/*.png --scale 2 --suffix _x2   # beside the inputs
      n3 upscale phone.jpg -o big.jpg --scale 2 --denoise   # a noisy photo: denoised first
      n3 upscale phone.jpg -o big.jpg -s 2 --denoise --strength 0.5 --chroma-strength 1   # keep half the grain
      n3 upscale photo.dng -o big.tif --scale 2 --denoise   # raw: mosaic denoised, developed, enlarged
      n3 upscale --burst IMG_12*.jpg -o big.png -s 2   # a hand-held burst: one sharper enlargement

    Exit code: 0 if every image was written (or skipped because it exists), 1 if any failed,
    2 for bad usage.
    """
    from .. import api
    from ..api import WRITE_EXTS, is_image_path, is_raw_path, plan_jobs
    from .batchrun import run_batch, run_on_cluster

    if (scale is not None) + (to_width is not None) + (to_height is not None) != 1:
        fail("give one of --scale, --width and --height")
    s = None if scale is None else int(scale) if float(scale).is_integer() else float(scale)
    # --burst reads --sigma without --denoise too: one frame's noise, which sets how far the frames move the result
    if not denoise and ((sigma is not None and not burst) or photo_noise != "auto" or strength != 1.0
                        or chroma_strength is not None):
        fail("--sigma, --noise, --strength and --chroma-strength are the denoiser's: add --denoise")
    if burst:
        if ray_address or workers or gpus_per_worker or tta:
            fail("--burst makes one image on this machine: it does not go with --ray or --tta")
        from .burst import run_upscale_burst

        try:
            runner = api.load_upscaler(model, None if s is None else api.sr_factor(s), device, backend, precision)
            denoiser = api.ModelCache(None, device, backend, precision, photo_noise) if denoise else None
        except N3Error as e:
            fail(str(e))
        click.echo(f"running on {runner.describe()}", err=True)
        run = {"scale": s, "width": to_width, "height": to_height, "model": runner, "tile": tile, "overlap": overlap,
               "max_pixels": int(max_megapixels * 1e6), "quality": quality, "depth": depth, "compare": compare,
               "denoiser": denoiser, "sigma": sigma, "strength": strength, "chroma_strength": chroma_strength}
        return run_upscale_burst(inputs, output, recursive, ext, suffix, run, overwrite, quiet, as_json)
    try:
        jobs = plan_jobs(inputs, output, recursive, lambda p: is_image_path(p) or is_raw_path(p), ext,
                         lambda e: e in WRITE_EXTS, default_ext=lambda f: ".tif" if is_raw_path(f) else f.suffix,
                         suffix=suffix or "")
        check_depths(jobs, depth)
        runner = api.load_upscaler(model, None if s is None else api.sr_factor(s), device, backend, precision)
        denoiser = api.ModelCache(None, device, backend, precision, photo_noise) if denoise else None
        profiles = api.find_noise_profiles() if denoise else None
    except N3Error as e:
        fail(str(e))
    if ray_address:
        options = {"scale": s, "width": to_width, "height": to_height, "tile": tile, "overlap": overlap, "max_pixels": int(max_megapixels * 1e6), "tta": tta,
                   "quality": quality, "depth": depth, "compare": compare, "overwrite": overwrite}
        if denoise:
            options.update(denoise=True, sigma=sigma, photo_noise=photo_noise, noise_profiles=profiles,
                           strength=strength, chroma_strength=chroma_strength)
        return run_on_cluster(jobs, "upscale", ray_address, model, options, overwrite, quiet, device, backend,
                              workers, gpus_per_worker, precision, as_json)
    if workers or gpus_per_worker:
        fail("--workers and --gpus-per-worker are for --ray")
    click.echo(f"running on {runner.describe()}", err=True)

    def process(job, rep) -> tuple[str, dict]:
        used = api.upscale_file(job.src, job.dst, s, runner, tile, overlap, on_tile=rep.on_tile(),
                                max_pixels=int(max_megapixels * 1e6), tta=tta, quality=quality,
                                denoiser=denoiser, sigma=sigma, noise_profiles=profiles, compare=compare,
                                overwrite=overwrite, strength=strength, chroma_strength=chroma_strength,
                                width=to_width, height=to_height, depth=depth)
        if "warning" in used:
            rep.say(f"note: {job.src}: {used['warning']}")
        if "compare_skipped" in used:
            rep.say(f"skip {used['compare_skipped']} (exists; --overwrite to replace)")
        also = f" and {used['compare']}" if "compare" in used else ""
        frames = f", {used['frames']} frames" if "frames" in used else ""
        return f"wrote {job.dst}{also} (x{used['scale']:.4g}{frames}) with {used['model']}{denoised_by(used)}", used

    run_batch(jobs, process, "upscale", overwrite, quiet, as_json)


def denoised_by(used: dict) -> str:
    """`` after MODEL (sigma S, camera noise)`` for an upscale that denoised first, else ''."""
    if "denoise_model" not in used:
        return ""
    notes = [f"sigma {used['sigma']:.1f}"] if used.get("sigma") is not None else []
    if "frame_sigmas" in used:
        notes = [f"sigma {min(used['frame_sigmas']):.1f}-{max(used['frame_sigmas']):.1f}"]
    if "noise" in used:
        notes.append(f"noise {used['noise']}")
    if "noise_kind" in used:
        notes.append("camera noise" if used["noise_kind"] == "real" else "white noise")
    if "stretch" in used:
        notes.append(f"brightened x{used['stretch']:.1f} for the model")
    notes += stretch_note(used)
    return f", denoised first with {used['denoise_model']}" + (f" ({', '.join(notes)})" if notes else "")


def _raw(path) -> bool:
    from ..api import is_raw_path

    return is_raw_path(path)
