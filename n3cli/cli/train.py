"""`n3 train --config FILE.yaml` and the training queue (`n3 train --queue configs/queue.yaml`)."""
from __future__ import annotations

import json

import click

from .common import device_option, fail, reports_errors


@click.command()
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              help="Training config (YAML); see configs/.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Output folder [default: runs/<config name>; with --queue, the queue's own folder].")
@click.option("--resume", is_flag=True, help="Continue the run in --out exactly where it stopped.")
@click.option("--overwrite", is_flag=True, help="Start again in an --out that holds a run (its n3 files are removed).")
@click.option("--max-steps", type=click.IntRange(min=1), default=None,
              help="Stop after this many steps (the LR schedule still follows the config); resume later.")
@click.option("--build-datastore", "build_for", type=click.Path(dir_okay=False, exists=True), default=None,
              metavar="MODEL", help="Match models: do not train; build the kNN datastore of the trained MODEL file "
                                    "from the config's training pairs, tune k, T and lambda, and record them in MODEL.")
@click.option("--queue", "queue_path", type=click.Path(dir_okay=False), default=None,
              help="A training queue (configs/queue.yaml): continue its unfinished runs, in order, for --budget.")
@click.option("--budget", default=None, metavar="TIME",
              help="With --queue: how long to train, e.g. 540, 9m, 1.5h (the state is saved when it runs out).")
@click.option("--runs", "max_runs", type=click.IntRange(min=1), default=None,
              help="With --queue: continue at most this many runs.")
@click.option("--run", "only", default=None, metavar="NAME", help="With --queue: continue this run only.")
@click.option("--status", is_flag=True, help="With --queue: print where each run stands, train nothing.")
@click.option("--promote", "promote", default=None, metavar="NAME",
              help="With --queue: score the finished run NAME and the shipped model it replaces with the card's "
                   "evaluations; replace the shipped files only when the run is better (a higher mean PSNR, and "
                   "no more noise left in the real photos of a flat guard).")
@click.option("--dry-run", is_flag=True, help="With --promote: score both, replace nothing.")
@click.option("--json", "as_json", is_flag=True, help="With --queue: print the result as JSON.")
@device_option
@reports_errors
def train(config_path: str | None, out_dir: str | None, resume: bool, overwrite: bool, max_steps: int | None,
          build_for: str | None, queue_path: str | None, budget: str | None, max_runs: int | None, only: str | None,
          status: bool, promote: str | None, dry_run: bool, as_json: bool, device: str) -> None:
    """Train a model from a YAML config (also under `torchrun --nproc_per_node N`).

    Writes latest/best checkpoints, log.jsonl and, at the end, model.safetensors, which
    `n3 denoise --model` loads. With --queue, continues the queued runs that accumulate over
    short sessions on a GPU (docs/training.md).
    """
    from .. import api

    if queue_path:
        if config_path:
            fail("--config and --queue: give one (a queue names its configs)")
        return _queue(api, queue_path, out_dir, budget, max_runs, only, status, promote, dry_run, as_json, device)
    if not config_path:
        fail("give --config FILE.yaml (or --queue configs/queue.yaml)")
    for flag, given in (("--budget", budget), ("--runs", max_runs), ("--run", only), ("--status", status),
                        ("--promote", promote), ("--dry-run", dry_run), ("--json", as_json)):
        if given:
            fail(f"{flag} is for --queue")
    cfg = api.load_training_config(config_path)
    if build_for:
        knn = api.build_match_datastore(cfg, build_for)
        click.echo(f"wrote {knn['datastore']} ({knn['entries']} entries) beside {build_for}: k {knn['k']}, "
                   f"T {knn['temperature']}, lambda {knn['lambda']} (validation gain: {'yes' if knn['gain'] else 'no'})")
        return
    final = api.run_training(cfg, out_dir, resume, overwrite, max_steps, device)
    click.echo(f"wrote {final}")


def _queue(api, queue_path, out_dir, budget, max_runs, only, status, promote, dry_run, as_json, device) -> None:
    if sum(map(bool, (budget, status, promote))) != 1:
        fail("--queue needs one of --budget TIME, --status or --promote NAME")
    if promote:
        rep = api.promote_run(queue_path, promote, out_dir, device, dry_run,
                              on_eval=None if as_json else
                              lambda k, who, s: click.echo(f"  {k}: {who} {api.describe_score(s)}"))
        if as_json:
            click.echo(json.dumps(rep, indent=2))
            return
        rose = ", ".join(f"{r['key']} {r['shipped']['noise_left']:.3f} -> {r['run']['noise_left']:.3f}"
                         for r in rep["evaluations"] if r["key"] in rep["held_back_by"])
        verdict = ("replaced " + rep["replaces"]) if rep["replaced"] else \
            ("better; --dry-run: nothing replaced" if rep["better"] else
             f"held back: noise left in real photos rose ({rose}); {rep['replaces']} stays" if rose else
             f"not better: {rep['replaces']} stays")
        click.echo(f"{promote}: mean {rep['run_mean_psnr']:.3f} dB against {rep['shipped_mean_psnr']:.3f} dB "
                   f"for {rep['replaces']}: {verdict}")
        return
    if status:
        rows = api.queue_status(queue_path, out_dir)
        if as_json:
            click.echo(json.dumps(rows, indent=2))
            return
        for r in rows:
            val = f"{r['val_psnr']:.2f} dB" if r["val_psnr"] is not None else "-"
            state = "finished" if r["finished"] else f"{r['steps']}/{r['target']} steps"
            click.echo(f"{r['name']:<24} {state:<22} val {val:<10} replaces {r['replaces'] or '-'}")
        return
    done = api.run_queue(queue_path, budget, out_dir, device, max_runs,
                         on_run=None if as_json else lambda n, s, t: click.echo(f"{n}: from step {s} of {t}", err=True),
                         only=only)
    if as_json:
        click.echo(json.dumps(done, indent=2))
        return
    if not done:
        click.echo("nothing to train: every queued run has finished")
    for d in done:
        click.echo(f"{d['name']}: steps {d['from']} -> {d['to']} of {d['target']}"
                   + (" (finished: --promote it)" if d["finished"] else ""))
