"""`n3 import LEGACY -o OUT.safetensors --sigma S`."""
from __future__ import annotations

import click

from .common import reports_errors


@click.command("import")
@click.argument("legacy", type=click.Path(dir_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="Model file to write (.safetensors).")
@click.option("--sigma", required=True, type=click.FloatRange(min=0, max=255),
              help="Noise level the checkpoint was trained for (0-255 units).")
@click.option("--name", default=None, help="Model name stored in the file [default: the output's stem].")
@click.option("--overwrite", is_flag=True, help="Replace an existing output (never the checkpoint itself).")
@reports_errors
def import_cmd(legacy: str, output: str, sigma: float, name: str | None, overwrite: bool) -> None:
    """Convert the N³Net authors' denoising checkpoint to an n3 model file.

    The authors' weights are under a non-commercial licence that forbids redistribution: bring
    your own copy; n3 never downloads or ships it. The file is read with weights_only=True, so
    nothing in it is executed.
    """
    from ..api import import_checkpoint

    info = import_checkpoint(legacy, output, sigma, name, overwrite)
    click.echo(f"wrote {output} ({info.arch}, {info.color}, sigma {sigma:g})")
