"""Entry point of the `n3` command. Subcommands are imported lazily so `--help` stays fast."""
from __future__ import annotations

import importlib
import sys

import click

from .. import __version__

COMMANDS = {
    "denoise": ("n3cli.cli.denoise", "denoise", "Denoise photos (gray, colour) with an N³Net."),
    "export": ("n3cli.cli.export_cmd", "export_cmd", "Export a model to ONNX for onnxruntime."),
    "eval": ("n3cli.cli.evaluate", "evaluate", "Measure a model with the paper's protocols (denoise, sr, raw, match)."),
    "import": ("n3cli.cli.import_cmd", "import_cmd", "Convert the authors' N³Net checkpoint to an n3 model file."),
    "match": ("n3cli.cli.match", "match", "Classify SIFT matches between two photos and recover the pose."),
    "models": ("n3cli.cli.models_cmd", "models", "List the shipped models."),
    "noise-profile": ("n3cli.cli.noise_profile", "noise_profile", "Measure each camera's raw noise by ISO from your files."),
    "upscale": ("n3cli.cli.upscale", "upscale", "Enlarge photos x2/x3/x4 (super-resolution)."),
    "train": ("n3cli.cli.train", "train", "Train a model from a YAML config."),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx):
        return sorted(COMMANDS)

    def get_command(self, ctx, name):
        if name not in COMMANDS:
            return None
        mod, attr, _ = COMMANDS[name]
        return getattr(importlib.import_module(mod), attr)

    def format_commands(self, ctx, formatter):
        rows = [(n, COMMANDS[n][2]) for n in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="n3")
def cli() -> None:
    """n3: Neural Nearest Neighbors Networks for photos.

    \b
    Examples:
      n3 denoise photo.png -o clean.png
      n3 denoise shots/ -o cleaned/ --recursive
      n3 models
    """


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so the same clean-up runs (temporary files removed, summary)."""

    exit_code = 143


def _on_sigterm(signum, frame) -> None:
    raise Terminated()


def main() -> None:
    import signal

    from ..api import keep_freed_memory

    keep_freed_memory()
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        cli.main(prog_name="n3", standalone_mode=False)
    except KeyboardInterrupt as e:
        click.echo("interrupted", err=True)
        sys.exit(getattr(e, "exit_code", 130))
    except click.exceptions.Abort:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
