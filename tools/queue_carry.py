"""Prepare a device session's training-queue run (docs/training.md).

Copies the datasets of the next unfinished run of the queue (or --run NAME) into `.carry/datasets`
(git-ignored), checks that the working tree plus that folder fits what the device tool carries
(64 MiB), and prints the one command to give the device tool's `run`, with carry [".carry"].

    python tools/queue_carry.py [configs/queue.yaml] [--run NAME] [--budget 8m]

After the run, copy what came back (files_at/queue/NAME/*) into runs/queue/NAME/ and commit it.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

LIMIT = 64 * 2**20  # the device tool's working-tree limit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def travel_bytes(repo: Path) -> int:
    """Tracked plus untracked-not-ignored files: what the device tool sends besides `carry`."""
    out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=repo,
                         capture_output=True, check=True).stdout
    return sum((repo / p).stat().st_size for p in out.decode().split("\0") if p and (repo / p).is_file())


def main() -> None:
    from n3cli.io.folders import list_images
    from n3cli.train.queue import load_queue, status

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("queue", nargs="?", default="configs/queue.yaml")
    ap.add_argument("--run", default=None, help="the run to prepare [default: the first unfinished one]")
    ap.add_argument("--budget", default="8m", help="training time on the device (leave room in the 10-minute call)")
    a = ap.parse_args()
    repo = Path(__file__).resolve().parents[1]
    q = load_queue(a.queue)
    rows = {r["name"]: r for r in status(q)}
    run = next((r for r in q.runs if (a.run and r.name == a.run) or (not a.run and not rows[r.name]["finished"])), None)
    if run is None:
        sys.exit("nothing to prepare: every run has finished (or no run has that name)")
    carry = repo / ".carry" / "datasets"
    if carry.exists():
        shutil.rmtree(carry)
    folders = list(run.config["data"]["train"]) + ([run.config["data"]["val"]] if run.config["data"]["val"] else [])
    for i, folder in enumerate(folders):
        src = Path(folder)
        dst = carry / src.name
        dst.mkdir(parents=True, exist_ok=True)
        files = list_images(src)
        if i == len(folders) - 1 and run.config["data"]["val"] and run.config["data"]["val_max_images"]:
            files = files[: run.config["data"]["val_max_images"]]  # validation reads no more than these
        for f in files:
            shutil.copy2(f, dst / f.name)
    size_carry = sum(f.stat().st_size for f in carry.rglob("*") if f.is_file())
    size_tree = travel_bytes(repo)
    total = size_carry + size_tree
    print(f"run {run.name}: {rows[run.name]['steps']} of {run.steps} steps done")
    print(f"working tree {size_tree / 2**20:.1f} MiB + datasets {size_carry / 2**20:.1f} MiB = "
          f"{total / 2**20:.1f} MiB of the device tool's {LIMIT / 2**20:.0f} MiB")
    if total > LIMIT:
        sys.exit("too large to travel: this run cannot go to the device as the tree stands (docs/training.md)")
    state = f"runs/queue/{run.name}"
    print("\nrun(carry=[\".carry\"], timeout_s=590, command=")
    print(f"  'set -o pipefail; mkdir -p ../shared && ln -sfn \"$PWD/.carry/datasets\" ../shared/datasets && mkdir -p \"$OUT/queue\" && "
          f"{{ [ ! -d {state} ] || cp -r {state} \"$OUT/queue/\"; }} && PYTHONPATH=. PYTHONUNBUFFERED=1 "
          f"python3 -m n3cli train --queue {a.queue} --out \"$OUT/queue\" --run {run.name} --budget {a.budget} --device cuda "
          f"2>&1 | tee \"$OUT/queue.log\"')")


if __name__ == "__main__":
    main()
