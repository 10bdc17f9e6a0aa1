"""Pieces shared by the subcommands: error reporting and common options."""
from __future__ import annotations

import functools
import sys

import click

from ..errors import N3Error


def fail(msg: str, code: int = 2) -> "NoReturn":  # noqa: F821
    click.echo(f"error: {msg}", err=True)
    sys.exit(code)


def reports_errors(fn):
    """Turn N3Error into one line on stderr and exit code 2 (no traceback)."""

    @functools.wraps(fn)
    def wrapper(*a, **kw):
        try:
            return fn(*a, **kw)
        except N3Error as e:
            fail(str(e))

    return wrapper


device_option = click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True,
                             help="Where to run. `cuda` without a usable GPU is an error.")


tta_option = click.option("--tta", is_flag=True,
                          help="Test-time augmentation: average the results on the image's 8 rotations and mirror "
                               "images (8x the time, a little more quality; measured gains: weights/README.md).")


json_lines_option = click.option(
    "--json", "as_json", is_flag=True,
    help="Also print one JSON object per input on stdout as it finishes (input, output, status, model, noise "
         "read, error): for scripts and pipelines.")


quality_option = click.option(
    "--quality", type=click.IntRange(1, 100), default=95, show_default=True,
    help="JPEG, WebP and HEIC outputs: the encoder's quality (lossless PNG and TIFF ignore it).")


depth_option = click.option(
    "--depth", type=click.Choice(["8", "16", "float"]), default=None,
    help="Output samples: 8 or 16 bits, or 32-bit float [default: the input's; raw files: 16-bit TIFF, else "
         "8-bit]. 16 (.png, .tif) keeps the gradations a denoised 8-bit photo has between its levels; float "
         "(.tif) the model's values unrounded.")


def check_depths(jobs, depth: str | None) -> None:
    """Fail the command (exit 2) before any work when an output's format cannot hold ``--depth``."""
    from ..api import check_depth

    try:
        for job in jobs:
            check_depth(job.dst, depth)
    except N3Error as e:
        fail(str(e))


precision_option = click.option(
    "--precision", type=click.Choice(["fp32", "bf16"]), default="fp32", show_default=True,
    help="bf16: convolutions in bfloat16 (for GPUs; the N³ blocks stay float32, a tile that comes out "
         "non-finite or black is run again in float32). Torch backend only.")


def ray_options(fn):
    """--ray / --workers / --gpus-per-worker, for the batch commands."""
    fn = click.option("--gpus-per-worker", type=click.FloatRange(min=0), default=0.0, show_default=True,
                      help="With --ray: GPUs each worker holds (e.g. 1, or 0.5 for two workers per GPU).")(fn)
    fn = click.option("--workers", type=click.IntRange(min=1), default=None,
                      help="With --ray: workers (one model each) [default: one per CPU, or per GPU share].")(fn)
    fn = click.option("--ray", "ray_address", default=None, metavar="local|auto|ADDRESS",
                      help="Run the batch on a Ray cluster: `local` starts one on this machine, `auto` joins the "
                           "running one, or its address (needs `pip install \"n3cli[ray]\"`).")(fn)
    return fn


def tile_options(fn):
    """--tile / --overlap, shared by every image command."""
    fn = click.option("--overlap", type=click.IntRange(min=8), default=None,
                      help="Context pixels around each tile [default: the model's receptive margin, e.g. 96 for N³Net].")(fn)
    fn = click.option("-t", "--tile", type=click.IntRange(min=64), default=None,
                      help="Tile size in pixels [default: from free memory]. Smaller uses less memory; a GPU then "
                           "runs several tiles per pass.")(fn)
    return fn


backend_option = click.option(
    "--backend", type=click.Choice(["auto", "torch", "onnx"]), default="auto", show_default=True,
    help="What runs the model: torch, or onnxruntime (`onnx`: .onnx files, or the exported copy of a shipped "
         "model; needs no torch). `auto` goes by the model file's extension.")


def max_pixels_option(fn):
    """--max-megapixels, shared by the image commands: the size limit checked on each header."""
    from ..api import MAX_PIXELS

    return click.option("--max-megapixels", "max_megapixels", type=click.FloatRange(min=0), default=MAX_PIXELS / 1e6,
                        show_default=True,
                        help="Refuse images whose header declares more pixels than this, before decoding them "
                             "(0: no limit); the whole image is held in memory, several float32 copies of it.")(fn)


def frames_note(used: dict) -> str:
    """"N frames, sigma LO-HI" for a TIFF stack's record (the noise read per frame), else ""."""
    if "frames" not in used:
        return ""
    levels = used.get("frame_sigmas")
    return f"{used['frames']} frames" + (f", sigma {min(levels):.1f}-{max(levels):.1f}" if levels else "")


def stretch_note(used: dict) -> list[str]:
    """How many of a stack's frames were brightened for the model (``frame_stretch``), as a note."""
    gains = used.get("frame_stretch")
    if not gains:
        return []
    return [f"{sum(g != 1.0 for g in gains)} of {len(gains)} frames brightened for the model"]
