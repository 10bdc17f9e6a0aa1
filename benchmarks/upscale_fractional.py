"""Enlargements between whole factors (`n3 upscale --scale 1.5`): the model at the next whole
factor, shrunk by MATLAB bicubic, against bicubic alone, in one run.

Each colour image of the folders is shrunk to ``round(side / scale)`` (MATLAB bicubic, rounded to 8
bits), enlarged back by ``scale`` both ways, and scored on Y (BT.601, 4 border pixels left out)
against the original resized to the same size (the original itself where the sizes agree).

    python benchmarks/upscale_fractional.py [--data DIR ...] [--scales 1.5 2.5 3.5]
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def main() -> None:
    from n3cli import api
    from n3cli.eval.metrics import psnr
    from n3cli.imaging.color import rgb_to_ycbcr
    from n3cli.imaging.resize import resize_to
    from n3cli.io.images import read_image
    from n3cli.pipelines.sr import output_size

    shared = Path(__file__).resolve().parents[2] / "shared" / "datasets"
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", nargs="+", default=[str(shared / "Set5"), str(shared / "Set14")])
    ap.add_argument("--scales", nargs="+", type=float, default=[1.5, 2.5, 3.5])
    a = ap.parse_args()
    files = sorted(f for d in a.data for f in Path(d).iterdir() if api.is_image_path(f))

    def y(rgb: np.ndarray) -> np.ndarray:
        return rgb_to_ycbcr(np.clip(rgb, 0, 1).astype(np.float64))[4:-4, 4:-4, 0]

    print(f"{len(files)} images ({', '.join(a.data)}); colour ones only; PSNR on Y, dB")
    print("| scale | bicubic | n3 upscale (model at the next whole factor, shrunk) | images ahead |")
    print("|---|---|---|---|")
    runners: dict[int, object] = {}
    for scale in a.scales:
        k = api.sr_factor(scale)
        runners.setdefault(k, api.load_upscaler(None, k, "cpu"))
        bic, sr = [], []
        for f in files:
            hr = read_image(f).pixels
            if hr.shape[2] != 3:
                continue
            lr = resize_to(hr, round(hr.shape[0] / scale), round(hr.shape[1] / scale))
            lr = (np.rint(np.clip(lr, 0, 1) * 255) / 255).astype(np.float32)
            size = output_size(*lr.shape[:2], scale)
            ref = hr if size == hr.shape[:2] else resize_to(hr, *size)
            bic.append(psnr(y(resize_to(lr, *size)), y(ref)))
            sr.append(psnr(y(api.upscale(runners[k], lr, scale)), y(ref)))
        ahead = sum(s > b for s, b in zip(sr, bic))
        print(f"| x{scale:g} | {np.mean(bic):.2f} | {np.mean(sr):.2f} | {ahead} of {len(sr)} |", flush=True)


if __name__ == "__main__":
    main()
