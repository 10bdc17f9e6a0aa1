"""`n3 export MODEL -o model.onnx`."""
from __future__ import annotations

import click

from .common import fail, reports_errors


@click.command("export")
@click.argument("model")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="ONNX file to write (.onnx).")
@click.option("--opset", type=click.IntRange(min=18), default=18, show_default=True, help="ONNX opset version.")
@click.option("--tile", "tile", type=(click.IntRange(min=1), click.IntRange(min=1)), default=None, metavar="H W",
              help="Pin the input size in the graph (for runtimes that need static shapes); n3 then tiles to it.")
@click.option("--dynamic", "dynamic", is_flag=True, help="Dynamic height and width (the default).")
@click.option("--fp16", is_flag=True, help="float16 weights and arithmetic (float32 input and output); for GPUs.")
@click.option("--no-verify", is_flag=True, help="Skip the onnxruntime-vs-PyTorch check after export.")
@click.option("--overwrite", is_flag=True, help="Replace an existing output file.")
@reports_errors
def export_cmd(model, output, opset, tile, dynamic, fp16, no_verify, overwrite):
    """Export a model (shipped name or .safetensors file) to ONNX for onnxruntime.

    Standard operators only, N³ blocks included; height and width stay dynamic unless --tile
    pins them. The model's config is stored in the file's metadata, so `n3 denoise --model
    model.onnx` needs nothing else. After export, onnxruntime and PyTorch are run on random
    inputs and their largest difference is printed (it must be at most 1e-4 in float32).

    \b
    Examples:
      n3 export n3net-color -o color.onnx
      n3 export my.safetensors -o my_512.onnx --tile 512 512
    """
    from pathlib import Path

    from .. import api

    if tile and dynamic:
        fail("--tile and --dynamic exclude each other")
    out = Path(output)
    click.echo(f"exporting {model} (an N³Net takes 1-2 minutes on a small CPU) ...", err=True)
    rep = api.export_model(model, out, opset, tuple(tile) if tile else None, fp16, verify=not no_verify,
                           overwrite=overwrite)
    g = rep["graph"]
    shape = f"{g['input_size'][0]}x{g['input_size'][1]}" if g["input_size"] else \
        f"dynamic (multiples of {g['size_multiple']}, >= {g['min_size']})"
    click.echo(f"wrote {out} ({rep['bytes'] / 1e6:.1f} MB, opset {opset}, {g['dtype']}, input {g['in_channels']} x {shape})")
    if "max_abs_err" in rep:
        err = rep["max_abs_err"]
        limit = 1e-2 if fp16 else 1e-4
        click.echo(f"verified: max |onnxruntime - torch| = {err:.2e} on random inputs")
        if err > limit:
            fail(f"{out}: onnxruntime differs from torch by {err:.2e} (> {limit:g})", code=1)
