"""Images that span a fraction of black-to-white (12-bit data in a 16-bit file, dark scans): the
Gaussian-noise models on them as they are, and brightened to white first (`n3 denoise`'s default,
:func:`n3cli.pipelines.denoise.stretch_gain`).

Each clean crop is scaled to ``fraction`` of full range, given white Gaussian noise of sigma
relative to that range (sigma x fraction in 0-255 units), and denoised with the estimated level;
PSNR against the scaled clean crop, peak = fraction. ``--bits 8``: the noisy crop as an 8-bit
file holds it (clipped, rounded to 1/255), a dark photo's case.

    python benchmarks/stretch.py [--count 12] [--crop 256] [--fractions 1 0.7 0.35 0.0625] [--sigmas 15 25]
                                 [--sets BSD68:gray CBSD68:rgb] [--bits 8]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
DATA = Path(__file__).resolve().parents[2] / "shared" / "datasets"


def psnr(a: np.ndarray, b: np.ndarray, peak: float) -> float:
    return float(10 * np.log10(peak**2 / np.mean((a.astype(np.float64) - b) ** 2)))


def main() -> None:
    from n3cli import api
    from n3cli.io.images import read_image

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=12)
    ap.add_argument("--crop", type=int, default=256)
    ap.add_argument("--fractions", type=float, nargs="+", default=[1.0, 0.7, 0.35, 0.0625])
    ap.add_argument("--sigmas", type=float, nargs="+", default=[15.0, 25.0])
    ap.add_argument("--sets", nargs="+", default=["BSD68:gray", "CBSD68:rgb"])
    ap.add_argument("--bits", type=int, choices=[8], default=None, help="quantise the noisy input to 8 bits")
    a = ap.parse_args()
    for spec in a.sets:
        name, color = spec.split(":")
        model = api.load_denoiser(None, color, "cpu")
        files = sorted((DATA / name).iterdir())[: a.count]
        clean = [read_image(f).pixels[: a.crop, : a.crop] for f in files]
        held = ", the noisy input in 8 bits" if a.bits else ""
        print(f"{name} ({model.info.name}), {len(clean)} crops of {a.crop} px{held}, estimated sigma; PSNR dB")
        for s in a.sigmas:
            for f in a.fractions:
                rng = np.random.default_rng(int(s * 1000 + f * 100))
                plain, stretched, gains = [], [], []
                for x in clean:
                    x = x * np.float32(f)
                    y = x + rng.standard_normal(x.shape).astype(np.float32) * np.float32(s * f / 255)
                    if a.bits:
                        y = (np.rint(np.clip(y, 0, 1) * 255) / 255).astype(np.float32)
                    gains.append(api.stretch_gain(model.info, y, None)[0])
                    p = api.denoise(model, y, stretch=False)
                    plain.append(psnr(p, x, f))
                    stretched.append(plain[-1] if gains[-1] == 1.0 else psnr(api.denoise(model, y), x, f))
                ahead = sum(b > p + 1e-9 for p, b in zip(plain, stretched))
                print(f"  sigma {s:4.0f} fraction {f:6.4f}: as it is {np.mean(plain):6.2f}, brightened "
                      f"{np.mean(stretched):6.2f} (gain {np.mean(gains):5.2f}; {ahead} of {len(clean)} ahead)",
                      flush=True)


if __name__ == "__main__":
    main()
