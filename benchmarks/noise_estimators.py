"""The noise estimator's two methods on benchmark images with known Gaussian noise.

    python benchmarks/noise_estimators.py [--shared ../shared] [--step 1] [--sigmas 0,2,5,10,15,25,50]

"all-patches" is Chen et al. 2015 on every 7x7 patch (what n3 used before 2026-12-05, and what
n3net-color-real's noise map is); "weak-texture" first keeps the patches whose gradient energy
noise alone explains (n3cli/imaging/estimate.py), and is what models trained on the true sigma get
on white noise. Noise from `n3 eval denoise`'s streams (float,
unclipped, as the eval protocol), BSD68 (gray) and CBSD68 (colour). A last block blows out the top
40% of each image to white and clips to 8 bits, as an overexposed sky in a saved photo.
Prints the mean, median, 10th and 90th percentile of the readings, and the seconds taken.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np


def _row(label: str, readings: np.ndarray, seconds: float) -> str:
    r = np.asarray(readings)
    return (f"{label:>14}{r.mean():8.2f}{np.median(r):8.2f}{np.percentile(r, 10):8.2f}{np.percentile(r, 90):8.2f}"
            f"{seconds:8.1f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", default=str(Path(__file__).resolve().parents[2] / "shared"))
    ap.add_argument("--step", type=int, default=1)
    ap.add_argument("--sigmas", default="0,2,5,10,15,25,50")
    a = ap.parse_args()
    from n3cli.api.evaluate import read_images
    from n3cli.imaging.estimate import METHODS, estimate_sigma
    from n3cli.imaging.noise import add_gaussian, eval_rng

    sigmas = [float(s) for s in a.sigmas.split(",")]
    for data, color in (("BSD68", "gray"), ("CBSD68", "rgb")):
        images = read_images(Path(a.shared) / "datasets" / data, color)[:: a.step]
        print(f"\n{data}[::{a.step}] ({len(images)} images): sigma read, 0-255")
        print(f"{'sigma':>6}{'method':>14}{'mean':>8}{'median':>8}{'p10':>8}{'p90':>8}{'s':>8}")
        for sigma in sigmas:
            noisy = [add_gaussian(clean, sigma, eval_rng(0, i)) for i, (_, clean) in enumerate(images)]
            for method in METHODS:
                t = time.perf_counter()
                r = [estimate_sigma(x, method=method) for x in noisy]
                print(f"{sigma:6g}" + _row(method, np.array(r), time.perf_counter() - t), flush=True)
        print(f"{data}, top 40% blown to white, clipped and quantised to 8 bits:")
        for sigma in sigmas:
            noisy = []
            for i, (_, clean) in enumerate(images):
                c = clean.copy()
                c[: int(0.4 * c.shape[0])] = 1.0
                noisy.append(np.round(np.clip(add_gaussian(c, sigma, eval_rng(0, i)), 0, 1) * 255) / 255)
            for method in METHODS:
                t = time.perf_counter()
                r = [estimate_sigma(x, method=method) for x in noisy]
                print(f"{sigma:6g}" + _row(method, np.array(r), time.perf_counter() - t), flush=True)


if __name__ == "__main__":
    main()
