"""How close to identity is a RAW model when there is (almost) no noise? Its error floor.

A residual denoiser told "no noise" should hand its input back. Each model is run on clean
synthetic raw (Set14 unprocessed as `n3 eval raw` does) told a = 1e-9, b = 1e-11; the PSNR of its
output against that clean input is its identity floor. Then the same images at a = 1e-5 (where a
base-ISO file such as the Blackmagic Pocket 4K DNG reads), the model told the truth, against the
noisy input's PSNR: a model whose floor is near the noise itself scores below its input there.
Sources blurred first (--blur, Gaussian sigma in sRGB pixels) have no 8-bit quantisation or fine
texture left, so what remains of the floor is the model's own. Then the floor error's RMS on the
flattest pixels (local gradient under 1e-3), where no texture can explain it, and by the clean
level (linear, in [0, 1]): development lifts the shadows, so an error near black shows most.

    python benchmarks/raw_identity_floor.py [-m MODEL ...] [--count 14] [--blur 0,1.2] [--tta]
    # default models: the shipped n3net-raw and dncnn-raw
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "Set14"
TOLD_NONE = (1e-9, 1e-11)
LOW = (1e-5, 1e-8)
LEVEL_BINS = (0.0, 0.01, 0.03, 0.1, 0.3, 1.0)


def psnr(x: np.ndarray, y: np.ndarray) -> float:
    return float(10 * np.log10(1.0 / np.mean((x.astype(np.float64) - y) ** 2)))


def main() -> None:
    import torch
    from scipy.ndimage import gaussian_filter

    from n3cli import api
    from n3cli.api.evaluate import read_images
    from n3cli.imaging.bayer import pack
    from n3cli.imaging.raw_noise import add_poisson_gaussian, mosaic_rggb, unprocess
    from n3cli.io.raw import RawImage
    from n3cli.pipelines.raw import NoiseParams, denoise_mosaic

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-m", "--model", action="append", default=None, help="RAW model (repeat) [default: the shipped pair]")
    ap.add_argument("--data", default=str(DATA), help="folder of sRGB images [default: Set14]")
    ap.add_argument("--count", type=int, default=14)
    ap.add_argument("--blur", default="0,1.2", help="Gaussian blur sigmas of the sources, comma-separated")
    ap.add_argument("--tta", action="store_true", help="each model also with test-time augmentation (8x the time)")
    a = ap.parse_args()
    torch.set_num_threads(2)
    images = read_images(Path(a.data), "rgb")[: a.count]
    models = {}
    for m in a.model or ["n3net-raw", "dncnn-raw"]:
        runner = api.load_raw_denoiser(m, "cpu")
        models[m] = (runner, False)
        if a.tta:
            models[f"{m} --tta"] = (runner, True)

    def run(model, tta: bool, mosaic: np.ndarray, ab: tuple[float, float]) -> np.ndarray:
        raw = RawImage(mosaic, "RGGB", np.zeros((2, 2)), 1.0)
        return pack(denoise_mosaic(model, raw, NoiseParams(*ab, "given"), tta=tta), "RGGB")[0]

    print(f"synthetic raw {Path(a.data).name}[:{a.count}], raw-space PSNR (dB) on the 4 planes; "
          f"told none = a {TOLD_NONE[0]:g}, b {TOLD_NONE[1]:g}; low = a {LOW[0]:g}, b {LOW[1]:g}")
    bins = "  ".join(f"<{hi:g}" for hi in LEVEL_BINS[1:])
    print(f"{'source blur':>11}  {'model':<28} {'clean, told none':>16} {'low: noisy':>10} {'low: model':>10} "
          f"{'floor RMS, flat':>15}  floor RMS by clean level {bins}")
    for blur in (float(s) for s in a.blur.split(",")):
        pairs = []
        for i, (_, px) in enumerate(images):
            src = np.stack([gaussian_filter(px[..., c].astype(np.float64), blur) for c in range(3)], -1) if blur else px
            lin, _ = unprocess(src, np.random.default_rng([0, i]))
            h, w = lin.shape[0] // 2 * 2, lin.shape[1] // 2 * 2
            clean = mosaic_rggb(lin[:h, :w])
            pairs.append((clean, add_poisson_gaussian(clean, *LOW, np.random.default_rng([0, i, 1]))))
        noisy_psnr = np.mean([psnr(pack(n, "RGGB")[0], pack(c, "RGGB")[0]) for c, n in pairs])
        for name, (model, tta) in models.items():
            floor, low, flat = [], [], []
            by_level = np.zeros((2, len(LEVEL_BINS) - 1))  # squared error sum, count
            for clean, noisy in pairs:
                ref = pack(clean, "RGGB")[0]
                out = run(model, tta, clean, TOLD_NONE)
                floor.append(psnr(out, ref))
                grad = np.hypot(*np.gradient(ref.astype(np.float64), axis=(1, 2)))
                err = (out - ref)[grad < 1e-3]
                if err.size:
                    flat.append(float(np.mean(err.astype(np.float64) ** 2)))
                k = np.clip(np.searchsorted(LEVEL_BINS, ref, side="right") - 1, 0, len(LEVEL_BINS) - 2)
                by_level[0] += np.bincount(k.ravel(), ((out - ref).astype(np.float64) ** 2).ravel(), len(LEVEL_BINS) - 1)
                by_level[1] += np.bincount(k.ravel(), None, len(LEVEL_BINS) - 1)
                low.append(psnr(run(model, tta, noisy, LOW), ref))
            flat_rms = f"{np.sqrt(np.mean(flat)):.1e}" if flat else "-"
            print(f"{blur:>11g}  {name[-28:]:<28} {np.mean(floor):>16.2f} {noisy_psnr:>10.2f} "
                  f"{np.mean(low):>10.2f} {flat_rms:>15}  "
                  + " ".join(f"{v:.1e}" for v in np.sqrt(by_level[0] / np.maximum(by_level[1], 1))), flush=True)


if __name__ == "__main__":
    main()
