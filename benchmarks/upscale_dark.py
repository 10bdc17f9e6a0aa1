"""Enlarging images that span a fraction of black-to-white (12-bit data in a 16-bit file, dark
scans): the SR model on them as they are, and brightened to white first (`n3 upscale`'s default,
:func:`n3cli.pipelines.arrays.range_gain`), against bicubic.

Each Set5 + Set14 image (cropped to a multiple of the scale) is scaled to ``fraction`` of full
range, shrunk by MATLAB bicubic and enlarged; PSNR on Y (BT.601), ``scale`` pixels shaved at the
border, peak = fraction.

    python benchmarks/upscale_dark.py [--scales 2] [--fractions 1 0.25 0.0625] [--model vdsr-sr]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
DATA = Path(__file__).resolve().parents[2] / "shared" / "datasets"


def y_psnr(a: np.ndarray, b: np.ndarray, peak: float, shave: int) -> float:
    from n3cli.imaging.color import rgb_to_ycbcr

    ya = rgb_to_ycbcr(a)[..., 0] if a.shape[2] == 3 else a[..., 0].astype(np.float64)
    yb = rgb_to_ycbcr(b)[..., 0] if b.shape[2] == 3 else b[..., 0].astype(np.float64)
    d = (ya - yb)[shave:-shave, shave:-shave]
    return float(10 * np.log10(peak**2 / np.mean(d**2)))


def main() -> None:
    from n3cli import api
    from n3cli.imaging.resize import resize_to
    from n3cli.io.images import read_image

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scales", type=int, nargs="+", default=[2])
    ap.add_argument("--fractions", type=float, nargs="+", default=[1.0, 0.25, 0.0625])
    ap.add_argument("--model", default=None)
    a = ap.parse_args()
    files = sorted((DATA / "Set5").iterdir()) + sorted((DATA / "Set14").iterdir())
    for k in a.scales:
        model = api.load_upscaler(a.model, k, "cpu")
        print(f"x{k}, {model.info.name}, Set5 + Set14 ({len(files)} images); PSNR on Y, dB")
        for f in a.fractions:
            rows = {"bicubic": [], "as it is": [], "brightened": []}
            for p in files:
                hr = read_image(p).pixels
                H, W = hr.shape[0] // k * k, hr.shape[1] // k * k
                hr = hr[:H, :W] * np.float32(f)
                lr = resize_to(hr, H // k, W // k)
                rows["bicubic"].append(y_psnr(resize_to(lr, H, W), hr, f, k))
                rows["as it is"].append(y_psnr(api.upscale(model, lr, k, stretch=False), hr, f, k))
                rows["brightened"].append(y_psnr(api.upscale(model, lr, k), hr, f, k))
            print(f"  fraction {f:6.4f}: " + ", ".join(f"{n} {np.mean(v):6.2f}" for n, v in rows.items()), flush=True)


if __name__ == "__main__":
    main()
