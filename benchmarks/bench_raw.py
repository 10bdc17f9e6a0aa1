"""Wall time and peak memory of `n3 denoise` on a camera-sized raw file, RAW N³Net against the
DnCNN ablation, in one run.

Writes a noisy synthetic Bayer DNG of ``--mp`` megapixels (default 24: 6000 x 4000), then runs
``n3 denoise IN.dng -o OUT.dng`` (and, with ``--tiff``, ``-o OUT.tiff``: the LibRaw development
included) once per model in a fresh process, and prints wall seconds (process start and file
writing included) and that process's peak resident memory.

    python benchmarks/bench_raw.py [--mp 24] [--models n3net-raw dncnn-raw] [--tiff] [--device cpu]
                                   [--also "--strength 0.5 --chroma-strength 1"]

``--also OPTIONS`` runs each model and output a second time with those options added, next to the plain run.
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from cli_child import measure


def make_dng(path: Path, mp: float) -> tuple[int, int]:
    from n3cli.imaging.raw_noise import add_poisson_gaussian
    from n3cli.io.raw import RawImage, write_dng

    w = int(round((mp * 1e6 * 1.5) ** 0.5 / 2)) * 2
    h = int(round(w / 1.5 / 2)) * 2
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    clean = 0.05 + 0.2 * (1 + np.sin(xx / 37.0) * np.cos(yy / 53.0)) * (xx / w)
    noisy = add_poisson_gaussian(clean, 2e-3, 1e-5, np.random.default_rng(0))
    write_dng(path, RawImage(noisy, "RGGB", np.full((2, 2), 512.0), 16383.0, wb=[2.0, 1.0, 1.5],
                             make="Bench", model="24MP"))
    return h, w


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mp", type=float, default=24.0)
    ap.add_argument("--models", nargs="+", default=["n3net-raw", "dncnn-raw"])
    ap.add_argument("--tiff", action="store_true", help="also time the developed 16-bit TIFF output")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--also", default=None, help="options for a second run of each, e.g. '--chroma-strength 1'")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        src = Path(d) / "bench.dng"
        h, w = make_dng(src, a.mp)
        print(f"synthetic raw {w} x {h} ({w * h / 1e6:.1f} MP mosaic, {w // 2} x {h // 2} packed planes)")
        for name in a.models:
            for ext in ([".dng", ".tiff"] if a.tiff else [".dng"]):
                for extra in ([], *([a.also.split()] if a.also else [])):
                    dst = Path(d) / f"out-{name}{ext}"
                    wall, rss = measure(["denoise", str(src), "-o", str(dst), "-m", name, "-q", "--device", a.device,
                                         "--noise", "2e-3,1e-5", "--overwrite", *extra])
                    print(f"{name:<12} -> {ext:<5}  {wall:7.1f} s  {wall / (w * h / 1e6):6.2f} s/MP  "
                          f"peak RSS {rss:7.0f} MB  {' '.join(extra)}", flush=True)


if __name__ == "__main__":
    main()
