"""`n3 denoise IN... -o OUT`."""
from __future__ import annotations

import sys

import click

from ..errors import N3Error
from .common import (
    backend_option,
    check_depths,
    depth_option,
    device_option,
    fail,
    frames_note,
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
@click.option("-m", "--model", default=None, metavar="NAME|FILE",
              help="Shipped model name (see `n3 models`), a .safetensors or an .onnx file. Default: the shipped gray, colour or RAW model matching each input.")
@click.option("--sigma", type=click.FloatRange(min=0, max=255), default=None,
              help="Noise level in 0-255 units: the noise map of the models that take one (the default gray and "
                   "colour models); a model trained at one sigma gets the image scaled so that its noise is at that "
                   "sigma. Default: estimated per image.")
@click.option("--strength", type=click.FloatRange(0.0, 1.0), default=1.0, show_default=True,
              help="Blend of the denoised result with the input: 1 = fully denoised, 0 = unchanged. With "
                   "--chroma-strength, the luminance noise's share only.")
@click.option("--chroma-strength", "chroma_strength", type=click.FloatRange(0.0, 1.0), default=None,
              help="Colour images and raw files: how much of the colour noise to remove, apart from the "
                   "luminance noise (--strength); e.g. --strength 0.5 --chroma-strength 1 keeps half the "
                   "grain and no colour blotches [default: as --strength].")
@click.option("--noise", "noise", default=None, metavar="auto|real|gaussian|A,B",
              help="What the noise is. Photos: 'auto' (default) reads each colour photo's noise and picks the model "
                   "for real camera noise (photos straight from a camera or phone: demosaiced, sharpened, JPEG) "
                   "unless the noise is white, then the Gaussian model; 'real' and 'gaussian' force one. "
                   "Raw files: the noise variance a*x + b on the [0, 1] mosaic [default: the DNG NoiseProfile, "
                   "your noise profile of the camera, the sensor's optical black, else estimated].")
@click.option("--noise-profiles", "noise_profiles", default=None, metavar="FILE", envvar="N3_NOISE_PROFILES",
              help="Raw files: the noise profiles `n3 noise-profile add` wrote [default: "
                   "~/.config/n3/noise-profiles.json where it exists; env N3_NOISE_PROFILES; 'none': not used].")
@click.option("--ext", type=click.Choice(["png", "jpg", "tif", "bmp", "webp", "heic", "dng"]), default=None,
              help="Output format in folder mode [default: the input's; dng for raw files].")
@click.option("--suffix", default=None, metavar="TEXT",
              help="Add TEXT to each output's name (photo.jpg -> photoTEXT.jpg); without -o, outputs go beside their inputs.")
@click.option("-r", "--recursive", is_flag=True, help="Descend into folders; the output folder mirrors the input tree.")
@click.option("--overwrite", is_flag=True, help="Replace existing outputs (never an input).")
@click.option("--print-noise", is_flag=True,
              help="Only print each image's noise: sigma (0-255 units) or, for raw files, a and b and their source.")
@click.option("--burst", is_flag=True,
              help="The inputs are photos or raw files of one scene (a burst, or a TIFF time series): register "
                   "them onto the first, merge them where they agree and denoise the merge into one output "
                   "(-o FILE; raw files: a DNG or developed). Moving things are taken from the first frame alone.")
@click.option("--temporal", type=click.IntRange(0, 8), default=0, metavar="N",
              help="TIFF time series: denoise each frame with N frames on either side registered and merged "
                   "onto it (what moved stays as the frame has it); the output has every frame. 0: off.")
@click.option("--compare", is_flag=True,
              help="Also write OUT.compare.png: the centre 512 px of input and result side by side (raw: both developed).")
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
@with_stdio(lambda f: ".dng" if _raw(f) else f.suffix)
def denoise(inputs, output, model, sigma, strength, chroma_strength, noise, noise_profiles, ext, suffix, recursive, overwrite, print_noise, burst, temporal, compare, quiet,
            quality, depth, as_json, tta, tile, overlap, max_megapixels, device, backend, precision, ray_address, workers, gpus_per_worker):
    """Denoise gray and colour photos (PNG, JPEG, TIFF 8/16-bit/float, BMP, WebP, HEIC), TIFF stacks
    (frame by frame, into a stack of the same shape) and camera raw files (DNG, CR2, NEF, ARW, RAF,
    ORF, RW2, ... with a Bayer sensor).

    Raw files are denoised on the mosaic; the output's extension picks what is written:
    .dng the clean mosaic (levels, CFA, colour metadata kept), .tif a 16-bit developed sRGB
    image, .png/.jpg developed 8-bit (--depth 16: a 16-bit PNG).

    \b
    Examples:
      n3 denoise noisy.png -o clean.png
      n3 denoise shots/*.jpg -o cleaned/ --sigma 15
      n3 denoise shots/ -o cleaned/ --recursive --ext tif
      n3 denoise photo.dng -o clean.tiff
      n3 denoise shots/*.jpg --suffix _clean        # shots/a_clean.jpg, ...
      n3 denoise raws/*.NEF -o cleaned/            # clean DNGs
      n3 denoise photo.dng -o clean.tif --tta       # 8 views averaged: cleaner, 8x the time
      n3 denoise noisy.png -o clean.png --backend onnx
      n3 denoise phone/*.jpg -o cleaned/ --noise real   # always the real camera noise model
      n3 denoise photo.dng -o clean.tif --strength 0.6 --chroma-strength 1   # keep some grain, no colour noise
      magick in.heic png:- | n3 denoise - -o - > clean.png   # standard input and output
      n3 denoise --burst IMG_1201.jpg IMG_1202.jpg IMG_1203.jpg -o clean.jpg   # a hand-held burst, merged
      n3 denoise timelapse.tif -o clean.tif --temporal 2   # each frame helped by 2 on either side

    Exit code: 0 if every image was written (or skipped because it exists), 1 if any failed,
    2 for bad usage.
    """
    from ..api import (
        WRITE_EXTS,
        find_noise_profiles,
        is_raw_path,
        parse_noise,
        plan_jobs,
    )

    ab, photo_noise = None, "auto"
    try:
        if noise is not None and noise.strip().lower() in ("auto", "real", "gaussian"):
            photo_noise = noise.strip().lower()
            if photo_noise == "real" and model is not None:
                raise N3Error("--noise real picks the shipped real-noise model; it does not go with --model")
        elif noise is not None:
            ab = parse_noise(noise)
        profiles = None if (noise_profiles or "").lower() == "none" else find_noise_profiles(noise_profiles)
    except N3Error as e:
        fail(str(e))
    if burst and (print_noise or ray_address or workers or gpus_per_worker or temporal):
        fail("--burst makes one photo on this machine: it does not go with --print-noise, --temporal or --ray")
    if print_noise:
        return _print_noise(inputs, recursive, ab, int(max_megapixels * 1e6), profiles, as_json)
    if burst:
        from .. import api
        from .burst import run_burst

        try:
            cache = api.ModelCache(model, device, backend, precision, photo_noise)
        except N3Error as e:
            fail(str(e))
        run = {"sigma": sigma, "tile": tile, "overlap": overlap, "strength": strength, "tta": tta,
               "chroma_strength": chroma_strength, "quality": quality, "depth": depth,
               "max_pixels": int(max_megapixels * 1e6), "compare": compare, "noise": ab,
               "noise_profiles": profiles}
        return run_burst(inputs, output, recursive, ext, suffix, cache, run, overwrite, quiet, as_json)
    try:
        jobs = plan_jobs(inputs, output, recursive, _accept, ext, lambda e: e in WRITE_EXTS or e == ".dng",
                         default_ext=lambda f: ".dng" if is_raw_path(f) else f.suffix, suffix=suffix or "")
    except N3Error as e:
        fail(str(e))
    check_depths(jobs, depth)
    from .. import api

    try:
        cache = api.ModelCache(model, device, backend, precision, photo_noise)
        kinds = {is_raw_path(j.src) for j in jobs}
        if model is not None and len(kinds) == 1:  # fail fast on an unknown or broken model, before any image
            cache.first(raw=kinds.pop())
    except N3Error as e:
        fail(str(e))
    from .batchrun import run_batch, run_on_cluster

    if ray_address:
        options = {"sigma": sigma, "tile": tile, "overlap": overlap, "strength": strength,
                   "chroma_strength": chroma_strength, "noise": ab,
                   "compare": compare, "overwrite": overwrite, "max_pixels": int(max_megapixels * 1e6), "tta": tta,
                   "photo_noise": photo_noise, "noise_profiles": profiles, "quality": quality, "depth": depth,
                   "temporal": temporal}
        return run_on_cluster(jobs, "denoise", ray_address, model, options, overwrite, quiet, device, backend,
                              workers, gpus_per_worker, precision, as_json)
    if workers or gpus_per_worker:
        fail("--workers and --gpus-per-worker are for --ray")
    state = {"backend": False, "warned": False}

    def process(job, rep) -> tuple[str, dict]:
        used = api.denoise_file(job.src, job.dst, cache, sigma, tile, overlap, strength, on_tile=rep.on_tile(),
                                noise=ab, compare=compare, overwrite=overwrite,
                                max_pixels=int(max_megapixels * 1e6), tta=tta, noise_profiles=profiles,
                                chroma_strength=chroma_strength, quality=quality, depth=depth, temporal=temporal)
        if not state["backend"]:
            state["backend"] = True
            rep.say(f"running on {used['backend']}")
        also = f" and {used['compare']}" if "compare" in used else ""
        if "compare_skipped" in used:
            rep.say(f"skip {used['compare_skipped']} (exists; --overwrite to replace)")
        if "warning" in used:
            rep.say(f"note: {job.src}: {used['warning']}")
        if "noise" in used:
            return f"wrote {job.dst}{also} with {used['model']} (noise {used['noise']})", used
        if sigma is not None and used["sigma"] is None and not state["warned"]:
            state["warned"] = True
            rep.say(f"note: {used['model']} takes no noise level; --sigma is ignored")
        notes = [f"sigma {used['sigma']:.1f}"] if used["sigma"] is not None else []
        if "frames" in used:
            notes = [frames_note(used)]
        if "frame_merged" in used:
            notes.append(f"{min(used['frame_merged'])}-{max(used['frame_merged'])} frames merged into each")
        if "noise_kind" in used:
            notes.append("camera noise" if used["noise_kind"] == "real" else "white noise")
        if "stretch" in used:
            notes.append(f"brightened x{used['stretch']:.1f} for the model")
        notes += stretch_note(used)
        note = f" ({', '.join(notes)})" if notes else ""
        return f"wrote {job.dst}{also} with {used['model']}{note}", used

    run_batch(jobs, process, "denoise", overwrite, quiet, as_json)


def _raw(path) -> bool:
    from ..api import is_raw_path

    return is_raw_path(path)


def _accept(path) -> bool:
    from ..api import is_image_path, is_raw_path

    return is_image_path(path) or is_raw_path(path)


def _print_noise(inputs, recursive, ab, max_pixels: int, profiles, as_json: bool = False) -> None:
    import json

    from ..api import expand_inputs, noise_level
    from .batchrun import shown

    bad = 0
    for f, _ in expand_inputs(inputs, recursive, _accept):
        try:
            n = noise_level(f, ab, max_pixels, profiles)
            if as_json:  # one object per file: what the lines below say
                if "sources" in n:
                    n["sources"] = {k: {"a": a, "b": b} for k, (a, b) in n["sources"].items()}
                click.echo(shown(json.dumps({"input": str(f), **n})))
            elif "sigma" in n:
                click.echo(f"{shown(str(f))}\tsigma={n['sigma']:.2f}\t{n['reason']}" + (f"\t{frames_note(n)}" if "frames" in n else ""))
            else:
                click.echo(f"{shown(str(f))}\ta={n['a']:.4g}\tb={n['b']:.4g}\t({n['source']})")
                for source, (a, b) in n.get("sources", {}).items():
                    if source != n["source"]:  # what the other sources read, for comparison
                        click.echo(f"  also\ta={a:.4g}\tb={b:.4g}\t({source})")
        except (N3Error, ValueError) as e:
            bad += 1
            msg = str(e) if str(f) in str(e) else f"{f}: {e}"  # always the file
            click.echo(shown(f"error: {msg}"), err=True)
            if as_json:
                click.echo(shown(json.dumps({"input": str(f), "error": msg})))
    sys.exit(1 if bad else 0)
