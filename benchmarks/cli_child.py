"""Benchmark helper: run one `n3` command in a fresh process and report its wall time and peak memory.

    from cli_child import measure
    seconds, peak_rss_mb = measure(["denoise", "in.dng", "-o", "out.dng", "-q"])
"""
from __future__ import annotations

import subprocess
import sys
import time


def measure(args: list[str]) -> tuple[float, float]:
    """(wall seconds, peak RSS in MB) of ``n3 ARGS`` in a fresh process (start-up included)."""
    t = time.perf_counter()
    out = subprocess.run([sys.executable, __file__, *args], check=True, capture_output=True, text=True)
    wall = time.perf_counter() - t
    return wall, float(out.stdout.strip().splitlines()[-1])


def _child(args: list[str]) -> None:
    from n3cli.cli.main import cli

    try:
        cli.main(args, standalone_mode=False)
    except SystemExit as e:
        if e.code:
            raise
    # VmHWM is this process's own peak RSS
    with open("/proc/self/status") as f:
        print(next(float(line.split()[1]) / 1024.0 for line in f if line.startswith("VmHWM:")))


if __name__ == "__main__":
    _child(sys.argv[1:])
