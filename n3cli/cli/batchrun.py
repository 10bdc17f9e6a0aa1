"""The batch loop shared by the image commands: skip/overwrite rules, progress, one-line errors."""
from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import click

from ..errors import N3Error


class Reporter:
    """Messages that do not break the progress bar."""

    def __init__(self, bar) -> None:
        self.bar = bar

    def say(self, msg: str, err: bool = False) -> None:
        if self.bar is not None:
            self.bar.write(msg, file=sys.stderr)
        else:
            click.echo(msg, err=True)

    def on_tile(self) -> Callable[[int, int], None] | None:
        if self.bar is None:
            return None
        return lambda d, t: self.bar.set_postfix_str(f"tile {d}/{t}")


def run_batch(jobs, process: Callable[[Any, Reporter], str], verb: str, overwrite: bool, quiet: bool) -> None:
    """Run ``process(job, reporter)`` (returns the line to print) for each job, then exit.

    Never writes over an input; skips existing outputs unless ``overwrite``; a failing image is
    reported in one line and the batch goes on. Exit code 0 if nothing failed, else 1.
    """
    from ..batch import same_file

    bar = None
    if not quiet:
        from tqdm import tqdm

        bar = tqdm(total=len(jobs), unit="img", desc=verb, dynamic_ncols=True, file=sys.stderr)
    rep = Reporter(bar)
    done, skipped, failed = 0, 0, []
    for job in jobs:
        try:
            if same_file(job.src, job.dst):
                raise N3Error(f"{job.src}: output would overwrite the input; choose another -o")
            if job.dst.exists() and not overwrite:
                skipped += 1
                rep.say(f"skip {job.dst} (exists; --overwrite to replace)")
            else:
                rep.say(process(job, rep))
                done += 1
        except N3Error as e:
            failed.append(str(e))
            rep.say(f"error: {e}", err=True)
        except Exception as e:  # an unexpected bug must not stop a batch; report it in one line
            failed.append(f"{job.src}: {type(e).__name__}: {e}")
            rep.say(f"error: {job.src}: {type(e).__name__}: {e}", err=True)
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    past = {"denoise": "denoised", "upscale": "upscaled"}.get(verb, verb)
    click.echo(f"{past} {done}, skipped {skipped}, failed {len(failed)}", err=True)
    for msg in failed:
        click.echo(f"  failed: {msg}", err=True)
    sys.exit(1 if failed else 0)
