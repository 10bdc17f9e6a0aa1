"""Enlarging noisy photos: `n3 upscale` with and without `--denoise`, against bicubic, in one run.

Each colour image of the folders is cut to a multiple of the scale, shrunk by it (MATLAB bicubic,
as the SR protocol does), given white Gaussian noise of each sigma and saved as an 8-bit PNG; that
file is enlarged by `api.upscale_file` as `n3 upscale` does it, once plainly and once with the
shipped denoisers first (`--denoise`: the model `n3 denoise` picks, the noise level read from the
photo). Prints the mean PSNR on Y (BT.601, `scale` border pixels left out) against the original.

    python benchmarks/upscale_noisy.py [--data DIR ...] [--scales 2 4] [--sigmas 0 5 10 15] [--strength 1]
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np


def main() -> None:
    from n3cli import api
    from n3cli.eval.metrics import psnr
    from n3cli.imaging.color import rgb_to_ycbcr
    from n3cli.imaging.resize import imresize
    from n3cli.io.images import read_image

    shared = Path(__file__).resolve().parents[2] / "shared" / "datasets"
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", nargs="+", default=[str(shared / "Set5"), str(shared / "Set14")])
    ap.add_argument("--scales", nargs="+", type=int, default=[2, 4])
    ap.add_argument("--sigmas", nargs="+", type=float, default=[0, 5, 10, 15])
    ap.add_argument("--strength", type=float, default=1.0, help="--denoise's --strength")
    a = ap.parse_args()
    files = sorted(f for d in a.data for f in Path(d).iterdir() if api.is_image_path(f))
    denoiser = api.ModelCache(None, "cpu")
    rng = np.random.default_rng(0)

    def y(rgb: np.ndarray) -> np.ndarray:
        return rgb_to_ycbcr(rgb.astype(np.float64))[:, :, 0]

    print(f"{len(files)} images ({', '.join(a.data)}); colour ones only; PSNR on Y, dB; --strength {a.strength:g}")
    print("| scale | sigma | bicubic | n3 upscale | n3 upscale --denoise | images ahead with --denoise |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for scale in a.scales:
            runner = api.load_upscaler(None, scale, "cpu")
            for sigma in a.sigmas:
                scores: dict[str, list[float]] = {"bicubic": [], "plain": [], "denoise": []}
                for f in files:
                    hr = read_image(f).pixels
                    if hr.shape[2] != 3:
                        continue
                    hr = hr[: hr.shape[0] // scale * scale, : hr.shape[1] // scale * scale].astype(np.float64)
                    lr = np.clip(imresize(hr, 1.0 / scale), 0, 1)
                    noisy = np.clip(np.rint((lr + rng.normal(0, sigma / 255.0, lr.shape)) * 255), 0, 255)
                    src = Path(tmp) / f"{f.stem}.png"
                    from PIL import Image

                    Image.fromarray(noisy.astype(np.uint8)).save(src)
                    cut = (slice(scale, -scale), slice(scale, -scale))
                    ref = y(hr)[cut]
                    scores["bicubic"].append(psnr(y(np.clip(imresize(noisy / 255.0, scale), 0, 1))[cut], ref))
                    for key, den in (("plain", None), ("denoise", denoiser)):
                        dst = Path(tmp) / f"{f.stem}_{key}.png"
                        api.upscale_file(src, dst, scale, runner, denoiser=den,
                                         strength=a.strength if den is not None else 1.0)
                        scores[key].append(psnr(y(read_image(dst).pixels)[cut], ref))
                m = {k: float(np.mean(v)) for k, v in scores.items()}
                ahead = sum(d > p for d, p in zip(scores["denoise"], scores["plain"]))
                print(f"| x{scale} | {sigma:g} | {m['bicubic']:.2f} | {m['plain']:.2f} | {m['denoise']:.2f} "
                      f"| {ahead} of {len(scores['plain'])} |", flush=True)


if __name__ == "__main__":
    main()
