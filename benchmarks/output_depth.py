"""What `--depth 16` keeps: a denoised 8-bit photo has values between its 8-bit levels, and an 8-bit
output rounds them away. On a smooth gradient (a clear sky) that rounding is banding: runs of one
value that a later contrast edit turns into visible steps.

    python benchmarks/output_depth.py [--sigma 5] [--data ../shared/datasets/BSD68 --count 8]

Scene 1: a sky-like ramp (256 x 384, 0.55 -> 0.62 top to bottom, i.e. 18 8-bit levels, with a
gentle sideways shading), 8-bit noisy input at ``--sigma``. Prints, for the 8-bit and the 16-bit
output of n3net-gray: RMS error against the true ramp in 8-bit levels, and the median length (px)
of runs of one value down a column (the bands). Then PSNR on ``--count`` BSD68 images at the
same noise, 8-bit against 16-bit output (the rounding's share of the error on photos).
"""
from __future__ import annotations

import argparse
import glob
from pathlib import Path

import numpy as np

from n3cli import api
from n3cli.eval.metrics import psnr
from n3cli.io.images import read_image


def quantise(x: np.ndarray, bits: int) -> np.ndarray:
    m = (1 << bits) - 1
    return np.rint(np.clip(x, 0, 1) * m) / m


def median_run(img: np.ndarray) -> float:
    """Median length of runs of one value down the columns of ``img`` (H x W)."""
    runs = []
    for col in img.T:
        edges = np.flatnonzero(np.diff(col) != 0)
        bounds = np.concatenate([[-1], edges, [len(col) - 1]])
        runs.extend(np.diff(bounds))
    return float(np.median(runs))


def main() -> None:
    here = Path(__file__).resolve().parent
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sigma", type=float, default=5.0)
    ap.add_argument("--data", default=str(here.parent.parent / "shared" / "datasets" / "BSD68"))
    ap.add_argument("--count", type=int, default=8)
    args = ap.parse_args()
    model = api.load_denoiser(None, "gray")
    rng = np.random.default_rng(0)

    yy, xx = np.mgrid[0:256, 0:384].astype(np.float32)
    sky = (0.55 + 0.07 * yy / 255 + 0.01 * np.sin(xx / 60))[:, :, None].astype(np.float32)
    noisy = quantise(sky + rng.normal(0, args.sigma / 255, sky.shape), 8).astype(np.float32)
    out = api.denoise(model, noisy, args.sigma)
    print(f"sky ramp, 18 levels over 256 rows, 8-bit input at sigma {args.sigma:g} (noisy: "
          f"{np.sqrt(np.mean((noisy - sky) ** 2)) * 255:.2f} levels RMS)")
    print(f"{'output':<8} {'RMS error, 8-bit levels':>24} {'median band, px':>16}")
    for bits in (8, 16):
        q = quantise(out, bits)
        print(f"{bits:>2}-bit   {np.sqrt(np.mean((q - sky) ** 2)) * 255:>24.3f} {median_run(q[:, :, 0]):>16.1f}")

    files = sorted(glob.glob(str(Path(args.data) / "*.png")))[: args.count]
    if not files:
        return
    p8, p16 = [], []
    for f in files:
        clean = read_image(f).pixels
        n = quantise(clean + rng.normal(0, args.sigma / 255, clean.shape), 8).astype(np.float32)
        o = api.denoise(model, n, args.sigma)
        p8.append(psnr(quantise(o, 8), clean))
        p16.append(psnr(quantise(o, 16), clean))
    print(f"BSD68, first {len(files)} images, sigma {args.sigma:g}: PSNR 8-bit output {np.mean(p8):.3f} dB, "
          f"16-bit {np.mean(p16):.3f} dB")


if __name__ == "__main__":
    main()
