"""The batch loop shared by the image commands: skip/overwrite rules, progress, one-line errors."""
from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

import click

from ..errors import N3Error

_SHOWN: dict[str, str] = {}


def show_as(path: str, name: str) -> None:
    """Name ``path`` ``name`` in every message and record of this run (a temporary file that
    stands for standard input or output)."""
    _SHOWN[path] = name


def forget_shown(path: str) -> None:
    _SHOWN.pop(path, None)


def shown(text: str) -> str:
    for path, name in _SHOWN.items():
        text = text.replace(path, name)
    return text


class Reporter:
    """Messages that do not break the progress bar."""

    def __init__(self, bar) -> None:
        self.bar = bar

    def say(self, msg: str, err: bool = False) -> None:
        msg = shown(msg)
        if self.bar is not None:
            self.bar.write(msg, file=sys.stderr)
        else:
            click.echo(msg, err=True)

    def on_tile(self, desc: str = "  tiles", unit: str = "tile") -> Callable[[int, int], None] | None:
        """A callback that shows one image's tiles as a second bar under the batch's, with the
        ETA of that image (a single large photo would otherwise show no progress until done);
        ``desc`` and ``unit`` name other steps (a burst's frames)."""
        if self.bar is None:
            return None
        from tqdm import tqdm

        inner = None

        def update(done: int, total: int) -> None:
            nonlocal inner
            if inner is not None and (done < inner.n or total != inner.total):  # next pass (e.g. a channel)
                inner.close()
                inner = None
            if inner is None:
                if total <= 1:
                    return
                inner = tqdm(total=total, unit=unit, desc=desc, leave=False, position=1,
                             dynamic_ncols=True, file=sys.stderr)
            inner.update(done - inner.n)
            if done >= total:
                inner.close()
                inner = None

        return update


def on_terminal() -> bool:
    return sys.stderr.isatty()


def progress_bar(total: int, desc: str, quiet: bool):
    """The batch's progress bar on stderr, or None: with ``quiet``, and when stderr is not a
    terminal (a script's log gets the one line per image, not the bar's redraws)."""
    if quiet or not on_terminal():
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="img", desc=desc, dynamic_ncols=True, file=sys.stderr)


def json_records(enabled: bool) -> Callable[[dict], None] | None:
    """``--json``: each job's record (:func:`n3cli.api.job_record`) as one JSON line on stdout,
    written as the job finishes; the human lines stay on stderr."""
    if not enabled:
        return None

    def emit(rec: dict) -> None:
        click.echo(shown(json.dumps(rec, ensure_ascii=False)))
        sys.stdout.flush()

    return emit


def run_batch(jobs, process: Callable[[Any, Reporter], tuple[str, dict]], verb: str, overwrite: bool, quiet: bool,
              as_json: bool = False) -> None:
    """Run ``process(job, reporter)`` (returns the line to print and what was used) for each
    job, then exit.

    Never writes over an input; skips existing outputs unless ``overwrite``; a failing image is
    reported in one line and the batch goes on. Exit code 0 if nothing failed, else 1; on Ctrl-C
    (130) or SIGTERM (143) a summary of what finished (the file in progress leaves nothing).
    ``as_json``: each job's record on stdout too (:func:`json_records`).
    """
    bar = progress_bar(len(jobs), verb, quiet)
    rep = Reporter(bar)
    tally = {"done": 0, "skipped": 0, "failed": []}
    past = {"denoise": "denoised", "upscale": "upscaled"}.get(verb, verb)
    emit = json_records(as_json)
    try:
        for job in jobs:
            _run_one(job, process, overwrite, rep, tally, emit)
            if bar is not None:
                bar.update(1)
    except KeyboardInterrupt as e:
        if bar is not None:
            bar.close()
        left = len(jobs) - tally["done"] - tally["skipped"] - len(tally["failed"])
        click.echo(f"interrupted: {past} {tally['done']}, skipped {tally['skipped']}, failed {len(tally['failed'])}, "
                   f"not done {left}", err=True)
        sys.exit(getattr(e, "exit_code", 130))
    if bar is not None:
        bar.close()
    failed = tally["failed"]
    click.echo(f"{past} {tally['done']}, skipped {tally['skipped']}, failed {len(failed)}", err=True)
    if len(jobs) > 1:  # a single file's error was just printed
        for msg in failed:
            click.echo(f"  failed: {shown(msg)}", err=True)
    sys.exit(1 if failed else 0)


def _run_one(job, process, overwrite: bool, rep: Reporter, tally: dict,
             emit: Callable[[dict], None] | None = None) -> None:
    from ..api import job_record, run_job

    status, line, used = run_job(job.src, job.dst, overwrite, lambda: process(job, rep), job.error)
    if status == "failed":
        tally["failed"].append(line)
        rep.say(f"error: {line}", err=True)
    else:
        tally[status] += 1
        rep.say(line)
    if emit:
        emit(job_record(job.src, job.dst, {"done": "written"}.get(status, status), used,
                        line if status == "failed" else None))


def run_on_cluster(jobs, task: str, address: str, model: str | None, options: dict[str, Any], overwrite: bool,
                   quiet: bool, device: str, backend: str, workers: int | None, gpus_per_worker: float,
                   precision: str = "fp32", as_json: bool = False) -> None:
    """:func:`run_batch` on a Ray cluster (``--ray``): the same lines, records, summary and exit codes."""
    from ..api import run_on_ray

    bar = progress_bar(len(jobs), f"{task} (ray)", quiet)
    rep = Reporter(bar)

    def on_result(status: str, line: str) -> None:
        rep.say(f"error: {line}" if status == "failed" else line, err=status == "failed")
        if bar is not None:
            bar.update(1)

    past = {"denoise": "denoised", "upscale": "upscaled"}[task]
    try:
        tally = run_on_ray(jobs, task, address, model, options, overwrite, device, backend, workers, gpus_per_worker,
                           on_result=on_result, precision=precision, on_record=json_records(as_json))
    except N3Error as e:
        if bar is not None:
            bar.close()
        click.echo(f"error: {e}", err=True)
        sys.exit(2)
    if bar is not None:
        bar.close()
    failed = tally["failed"]
    click.echo(f"{past} {tally['done']}, skipped {tally['skipped']}, failed {len(failed)}", err=True)
    if len(jobs) > 1:
        for msg in failed:
            click.echo(f"  failed: {msg}", err=True)
    sys.exit(1 if failed else 0)
