"""Wall time and peak memory of `n3 upscale` on the CPU, SR N³Net against the VDSR baseline, in
one run.

Writes a synthetic colour PNG whose ``--scale`` x enlargement has ``--mp`` output megapixels, runs
``n3 upscale`` once per model in a fresh process, and prints wall seconds (process start and
file writing included), seconds per output megapixel and that process's peak resident memory.

    python benchmarks/bench_upscale.py [--mp 4] [--scale 4] [--models n3net-sr vdsr-sr] [--device cpu]
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from cli_child import measure


def make_png(path: Path, h: int, w: int) -> None:
    from PIL import Image

    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    rng = np.random.default_rng(0)
    base = np.stack([np.sin(xx / 7.0) * np.cos(yy / 11.0), np.cos(xx / 5.0 + yy / 9.0), (xx + yy) / (h + w)], -1)
    px = np.clip(0.5 + 0.3 * base + rng.normal(0, 0.02, base.shape), 0, 1)
    Image.fromarray(np.rint(px * 255).astype(np.uint8)).save(path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mp", type=float, default=4.0, help="output megapixels")
    ap.add_argument("--scale", type=int, default=4, choices=[2, 3, 4])
    ap.add_argument("--models", nargs="+", default=["n3net-sr", "vdsr-sr"])
    ap.add_argument("--device", default="cpu")
    a = ap.parse_args()
    w = int(round((a.mp * 1e6 * 1.5) ** 0.5 / a.scale))
    h = int(round(w / 1.5))
    with tempfile.TemporaryDirectory() as d:
        src = Path(d) / "bench.png"
        make_png(src, h, w)
        mp = h * w * a.scale**2 / 1e6
        print(f"x{a.scale}: {w} x {h} in, {w * a.scale} x {h * a.scale} out ({mp:.1f} MP)")
        for name in a.models:
            wall, rss = measure(["upscale", str(src), "-o", str(Path(d) / f"out-{name}.png"), "-s", str(a.scale),
                             "-m", name, "-q", "--device", a.device])
            print(f"{name:<10} {wall:7.1f} s  {wall / mp:6.2f} s/MP  peak RSS {rss:7.0f} MB", flush=True)


if __name__ == "__main__":
    main()
