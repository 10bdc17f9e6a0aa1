"""Prepare a device session's training-queue run (docs/training.md).

The device tool carries the working tree (tracked and untracked-not-ignored files) plus the paths
named in `carry`, 64 MiB in all. The shipped `weights/` alone are about 50 MiB, and CBSD432 is
32 MiB, so the tree as it stands leaves no room for the colour, SR and RAW runs' data. Training
needs none of the shipped weights (only a config's `init` file, which is carried). So this script:

1. makes a *travel commit*: HEAD without `weights/`, written with a temporary index (the real
   index, HEAD and the working tree are untouched);
2. copies the run's datasets into `.carry/datasets` and its `init` file, if any, into
   `.carry/tree/` (both git-ignored);
3. checks that the travel commit's files, untracked files and `.carry` fit the 64 MiB;
4. prints the three steps: switch to the travel commit here, the one `run` call, switch back.

    python tools/queue_carry.py [configs/queue.yaml] [--run NAME] [--budget 8m]

After the run, switch back, copy what came back (files_at/queue/NAME/*, not best.safetensors) into
runs/queue/NAME/ and commit it.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

LIMIT = 64 * 2**20  # the device tool's working-tree limit
DROP = ("weights",)  # tracked folders a training run does not read

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def git(repo: Path, *args: str, env: dict | None = None) -> str:
    out = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, env=env)
    if out.returncode:
        sys.exit(f"git {' '.join(args)}: {out.stderr.strip()}")
    return out.stdout


def travel_commit(repo: Path, drop: tuple[str, ...] = DROP) -> str:
    """A commit whose parent is HEAD and whose tree is HEAD's without ``drop``; HEAD, the index and
    the working tree are left as they are."""
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "GIT_INDEX_FILE": str(Path(tmp) / "index")}
        git(repo, "read-tree", "HEAD", env=env)
        git(repo, "rm", "-r", "-q", "--cached", "--ignore-unmatch", "--", *drop, env=env)
        tree = git(repo, "write-tree", env=env).strip()
    msg = f"device travel: HEAD without {', '.join(drop)}/ (tools/queue_carry.py; not for a branch)"
    return git(repo, "-c", "user.name=n3 queue", "-c", "user.email=queue@n3.invalid",
               "commit-tree", tree, "-p", "HEAD", "-m", msg).strip()


def commit_bytes(repo: Path, commit: str) -> int:
    """The size of a commit's files."""
    rows = git(repo, "ls-tree", "-r", "-l", commit).splitlines()
    return sum(int(r.split()[3]) for r in rows if r.split()[1] == "blob")


def untracked_bytes(repo: Path) -> int:
    """Untracked files git does not ignore: they travel too."""
    out = git(repo, "ls-files", "-z", "--others", "--exclude-standard")
    return sum((repo / p).stat().st_size for p in out.split("\0") if p and (repo / p).is_file())


def folder_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def main() -> None:
    from n3cli.io.folders import list_images
    from n3cli.train.queue import load_queue, status

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("queue", nargs="?", default="configs/queue.yaml")
    ap.add_argument("--run", default=None, help="the run to prepare [default: the first unfinished one]")
    ap.add_argument("--budget", default="8m", help="training time on the device (leave room in the 10-minute call)")
    a = ap.parse_args()
    repo = Path(__file__).resolve().parents[1]
    if git(repo, "status", "--porcelain", "--untracked-files=no").strip():
        sys.exit("tracked files have uncommitted changes: commit them first (the device sees the travel commit, "
                 "which is made from HEAD)")
    branch = git(repo, "rev-parse", "--abbrev-ref", "HEAD").strip()
    if branch == "HEAD":
        sys.exit("HEAD is detached (still on an earlier travel commit?): `git switch main` first")
    q = load_queue(a.queue)
    rows = {r["name"]: r for r in status(q)}
    run = next((r for r in q.runs if (a.run and r.name == a.run) or (not a.run and not rows[r.name]["finished"])), None)
    if run is None:
        sys.exit("nothing to prepare: every run has finished (or no run has that name)")

    carry = repo / ".carry"
    if carry.exists():
        shutil.rmtree(carry)
    folders = list(run.config["data"]["train"]) + ([run.config["data"]["val"]] if run.config["data"]["val"] else [])
    for i, folder in enumerate(folders):
        src = Path(folder)
        dst = carry / "datasets" / src.name
        dst.mkdir(parents=True, exist_ok=True)
        files = list_images(src)
        if i == len(folders) - 1 and run.config["data"]["val"] and run.config["data"]["val_max_images"]:
            files = files[: run.config["data"]["val_max_images"]]  # validation reads no more than these
        for f in files:
            shutil.copy2(f, dst / f.name)
    init = run.config.get("init")
    if init:  # weights/ and git-ignored runs/ are not in the travel commit: it travels in .carry, put back there
        path = Path(init).resolve()
        if not path.is_relative_to(repo):
            sys.exit(f"{init}: the run's init file lies outside the repository; copy it under runs/ first")
        rel = path.relative_to(repo)
        (carry / "tree" / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, carry / "tree" / rel)

    commit = travel_commit(repo)
    sizes = {"travel commit": commit_bytes(repo, commit), "untracked": untracked_bytes(repo),
             ".carry": folder_bytes(carry)}
    total = sum(sizes.values())
    print(f"run {run.name}: {rows[run.name]['steps']} of {run.steps} steps done")
    print(" + ".join(f"{k} {v / 2**20:.1f} MiB" for k, v in sizes.items())
          + f" = {total / 2**20:.1f} MiB of the device tool's {LIMIT / 2**20:.0f} MiB")
    if total > LIMIT:
        sys.exit("too large to travel (docs/training.md)")
    state = f"runs/queue/{run.name}"
    restore = "{ [ ! -d .carry/tree ] || cp -r .carry/tree/. .; } && "
    print(f"\n1. here: git switch --detach {commit}   # weights/ leaves the working tree until step 3")
    print("2. run(carry=[\".carry\"], timeout_s=590, command=")
    print(f"  'set -o pipefail; {restore}mkdir -p ../shared && ln -sfn \"$PWD/.carry/datasets\" ../shared/datasets && "
          f"mkdir -p \"$OUT/queue\" && {{ [ ! -d {state} ] || cp -r {state} \"$OUT/queue/\"; }} && PYTHONPATH=. "
          f"PYTHONUNBUFFERED=1 python3 -m n3cli train --queue {a.queue} --out \"$OUT/queue\" --run {run.name} "
          f"--budget {a.budget} --device cuda 2>&1 | tee \"$OUT/queue.log\"')")
    print(f"3. here: git switch {branch}; then copy files_at/queue/{run.name}/* (not best.safetensors) into "
          f"{state}/ and commit")


if __name__ == "__main__":
    main()
