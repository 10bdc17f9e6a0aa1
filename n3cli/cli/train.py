"""`n3 train --config FILE.yaml`."""
from __future__ import annotations

import click

from .common import device_option, reports_errors


@click.command()
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False),
              help="Training config (YAML); see configs/.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Output folder [default: runs/<config name>].")
@click.option("--resume", is_flag=True, help="Continue the run in --out exactly where it stopped.")
@click.option("--overwrite", is_flag=True, help="Start again in an --out that holds a run (its n3 files are removed).")
@click.option("--max-steps", type=click.IntRange(min=1), default=None,
              help="Stop after this many steps (the LR schedule still follows the config); resume later.")
@click.option("--build-datastore", "build_for", type=click.Path(dir_okay=False, exists=True), default=None,
              metavar="MODEL", help="Match models: do not train; build the kNN datastore of the trained MODEL file "
                                    "from the config's training pairs, tune k, T and lambda, and record them in MODEL.")
@device_option
@reports_errors
def train(config_path: str, out_dir: str | None, resume: bool, overwrite: bool, max_steps: int | None,
          build_for: str | None, device: str) -> None:
    """Train a model from a YAML config (also under `torchrun --nproc_per_node N`).

    Writes latest/best checkpoints, log.jsonl and, at the end, model.safetensors, which
    `n3 denoise --model` loads.
    """
    from .. import api

    cfg = api.load_training_config(config_path)
    if build_for:
        knn = api.build_match_datastore(cfg, build_for)
        click.echo(f"wrote {knn['datastore']} ({knn['entries']} entries) beside {build_for}: k {knn['k']}, "
                   f"T {knn['temperature']}, lambda {knn['lambda']} (validation gain: {'yes' if knn['gain'] else 'no'})")
        return
    final = api.run_training(cfg, out_dir, resume, overwrite, max_steps, device)
    click.echo(f"wrote {final}")
