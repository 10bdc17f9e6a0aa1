"""`n3 train --config FILE.yaml`."""
from __future__ import annotations

from pathlib import Path

import click

from ..errors import N3Error
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
    from ..train.config import load_config
    from ..train.loop import prepare_run_dir
    from ..train.loop import train as run

    cfg = load_config(config_path)
    out = Path(out_dir) if out_dir else Path("runs") / cfg["name"]
    if build_for:
        if cfg["model"]["task"] != "match":
            raise N3Error("--build-datastore is for match models (model.task: match)")
        from ..match.train import add_datastore

        knn = add_datastore(cfg, build_for)
        click.echo(f"wrote {knn['datastore']} ({knn['entries']} entries) beside {build_for}: k {knn['k']}, "
                   f"T {knn['temperature']}, lambda {knn['lambda']} (validation gain: {'yes' if knn['gain'] else 'no'})")
        return
    prepare_run_dir(out, resume, overwrite)
    if cfg["model"]["task"] == "match":
        from ..match.train import train_match

        if resume:
            raise N3Error("--resume is not supported for match training yet (runs are short; start again)")
        final = train_match(cfg, out, device=device, max_steps=max_steps)
    else:
        final = run(cfg, out, resume=resume, device=device, max_steps=max_steps)
    click.echo(f"wrote {final}")
