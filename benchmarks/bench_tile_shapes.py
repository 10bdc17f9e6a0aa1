"""Thin images and panoramas: the tile plan of `n3cli.tiling.plan_grid` against square tiles, in one run.

Denoises gray strips and panoramas with the shipped gray N³Net on the CPU at the default tile size
(or ``--tile``), once with ``plan_grid``'s plan and once with square tiles (every axis planned alone,
as before ``plan_grid``), alternating, best of ``--repeat``; prints tiles, pixels run and seconds.

    python benchmarks/bench_tile_shapes.py [--repeat 3] [--tile 512]
"""
from __future__ import annotations

import argparse
import time

import numpy as np


def main() -> None:
    import n3cli.tiling as tiling
    from n3cli import api

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--tile", type=int, default=512)
    ap.add_argument("--shapes", nargs="+", default=["4x9600", "64x9600", "600x6000", "1200x1200"])
    a = ap.parse_args()
    model = api.load_denoiser("n3net-gray", device="cpu")
    grid = tiling.plan_grid

    def square(h, w, tile, overlap, align=1, min_size=1):
        return (tiling.plan_axis(h, tile, overlap, align, min_size), tiling.plan_axis(w, tile, overlap, align, min_size))

    print(f"n3net-gray, CPU, tile {a.tile}, best of {a.repeat}")
    print("| image | plan | tiles | seconds |")
    print("|---|---|---|---|")
    for shape in a.shapes:
        h, w = (int(v) for v in shape.split("x"))
        x = np.clip(0.5 + 0.1 * np.random.default_rng(0).standard_normal((h, w)), 0, 1).astype(np.float32)
        best: dict[str, float] = {}
        tiles: dict[str, int] = {}
        for _ in range(a.repeat):
            for name, plan in (("plan_grid", grid), ("square", square)):
                tiling.plan_grid = plan
                seen = []
                t = time.perf_counter()
                api.denoise(model, x, 25.0, tile=a.tile, on_tile=lambda d, n: seen.append(n))
                best[name] = min(best.get(name, np.inf), time.perf_counter() - t)
                tiles[name] = seen[-1]
        tiling.plan_grid = grid
        for name in ("square", "plan_grid"):
            print(f"| {shape} | {name} | {tiles[name]} | {best[name]:.2f} |", flush=True)


if __name__ == "__main__":
    main()
