"""Does a RAW model flatten a flat area? The simplest case a denoiser meets, measured two ways.

1. Synthetic: a flat mosaic (every photosite at `level`) plus Poisson-Gaussian noise at (a, b),
   the model told exactly that (a, b); noise left = output std / input std away from the borders.
   Nothing in it is texture, so an able denoiser leaves little (the optimum is near 0).
2. Real: each Bayer file of ../shared/raw-samples (its centre 1200x1600 photosites), denoised with
   the (a, b) n3 reads; in the packed planes' flattest 24x24 windows (n3cli.eval.flat, levels below
   clipping) the noise left, and the windows' own noise against what (a, b) predicts there (a
   ratio over 1: the file is noisier than n3 reads, so the model is told too little) and its
   high-pass share (neighbour differences / std; 1 for white noise, lower when it is correlated).

    python benchmarks/raw_flat_patch.py [-m MODEL ...] [--threads 2]
    # default models: the shipped n3net-raw and dncnn-raw
"""
from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "raw-samples"
BAYER = ["blackmagic_pocket4k.dng", "canon_powershot_g2.crw", "kodak_dc120.kdc"]
LEVELS_A = (1e-5, 1e-4, 1e-3, 1e-2)  # b = a / 100, as the standard raw evaluation's levels
FLATS = (0.1, 0.4)


def main() -> None:
    import torch

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-m", "--model", action="append", default=None, help="RAW model name or file; repeat")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    from n3cli import api
    from n3cli.eval.flat import WINDOW, flat_windows, window_noise
    from n3cli.imaging.bayer import pack
    from n3cli.imaging.raw_noise import add_poisson_gaussian
    from n3cli.io.raw import read_raw
    from n3cli.pipelines.raw import denoise_mosaic, noise_params

    names = a.model or ["n3net-raw", "dncnn-raw"]
    models = {n: api.load_raw_denoiser(n, "cpu") for n in names}
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    raws = {f: read_raw(SAMPLES / f) for f in BAYER}
    carrier = replace(raws["canon_powershot_g2.crw"], mosaic=np.zeros((256, 256), np.float32))

    print("\n1. flat synthetic mosaic 256x256, noise var = a*x + b (b = a/100), told the truth: noise left")
    head = "".join(f"  a {av:g} @{lv:<4}" for av in LEVELS_A for lv in FLATS)
    print(f"{'model':<24}{head}")
    for name, m in models.items():
        line = f"{name[-24:]:<24}"
        for av in LEVELS_A:
            for lv in FLATS:
                nz = add_poisson_gaussian(np.full((256, 256), lv, np.float32), av, av / 100, np.random.default_rng(1))
                p = replace(noise_params(carrier, (av, av / 100)), source="given")
                out = denoise_mosaic(m, replace(carrier, mosaic=nz), p)
                c = (slice(48, -48),) * 2
                line += f"  {np.std(out[c]) / np.std(nz[c]):>13.2f}"
        print(line, flush=True)

    print("\n2. real files, centre 1200x1600, the (a, b) n3 reads; flattest 24x24 windows of the packed planes")
    for f, raw in raws.items():
        H, W = raw.mosaic.shape
        h, w = min(H, 1200), min(W, 1600)
        y0, x0 = (H - h) // 4 * 2, (W - w) // 4 * 2  # even: the CFA phase stays
        raw = replace(raw, mosaic=np.ascontiguousarray(raw.mosaic[y0 : y0 + h, x0 : x0 + w]))
        p = noise_params(raws[f])
        planes = pack(raw.mosaic, raw.pattern)[0].transpose(1, 2, 0)
        win = flat_windows(planes, levels=(0.0, 0.9))
        base = window_noise(planes, win)
        level = np.array([planes[y : y + WINDOW, x : x + WINDOW].mean() for y, x in win])
        predicted = np.sqrt(p.a * level + p.b)
        hp = np.median([np.diff(planes[y : y + WINDOW, x : x + WINDOW], axis=1).std() / np.sqrt(2) for y, x in win])
        print(f"{f}: a {p.a:.3g}, b {p.b:.3g} ({p.source}); {len(win)} windows at level {np.median(level):.3f}: "
              f"noise {np.median(base):.2e}, {np.median(base / predicted):.2f}x what (a, b) predicts, "
              f"high-pass share {hp / np.median(base):.2f}")
        for name, m in models.items():
            t = time.perf_counter()
            out = pack(denoise_mosaic(m, raw, p), raw.pattern)[0].transpose(1, 2, 0)
            left = np.median(window_noise(out, win) / base)
            print(f"  {name[-24:]:<24} noise left {left:.2f}   {time.perf_counter() - t:.0f} s", flush=True)


if __name__ == "__main__":
    main()
