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


def tile_options(fn):
    """--tile / --overlap, shared by every image command."""
    fn = click.option("--overlap", type=click.IntRange(min=8), default=None,
                      help="Context pixels around each tile [default: the model's receptive margin, e.g. 96 for N³Net].")(fn)
    fn = click.option("-t", "--tile", type=click.IntRange(min=64), default=None,
                      help="Tile size in pixels [default: from free memory]. Smaller uses less memory.")(fn)
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
