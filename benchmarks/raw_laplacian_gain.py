"""Can the raw noise fit correct itself for correlated noise? How much of the noise variance the
fit's Laplacian sees, measured in the flattest windows of the packed RGGB planes (issue 25).

The fit (n3cli.imaging.raw_noise.estimate_noise_params) reads the variance of Immerkær's
Laplacian residual / 36: the noise variance when the noise is white, less when neighbouring
photosites share it (the Blackmagic and Kodak files of ../shared/raw-samples,
benchmarks/raw_noise_structure.py). Per window (n3cli.eval.flat's windows, levels 0.002-0.9) the
gain G is that reading over the variance left after a plane fit; 1 for white noise. If G could
be read reliably, the fit divided by it would give the true variance.

It is checked where the answer is known to be 1, on white Poisson-Gaussian noise:
- each file's synthetic twin: its clean estimate (the shipped n3net-raw's output) plus white noise
  at the (a, b) n3 reads;
- synthetic raw from CBSD68 (every 6th image, unprocessed, mosaicked, b = a/100).

    python benchmarks/raw_laplacian_gain.py        # about 2 minutes on 2 cores
"""
from __future__ import annotations

import glob
from pathlib import Path

import numpy as np

SHARED = Path(__file__).resolve().parents[2] / "shared"
BAYER = ["blackmagic_pocket4k.dng", "canon_powershot_g2.crw", "kodak_dc120.kdc"]
_L = np.outer([1.0, -2.0, 1.0], [1.0, -2.0, 1.0])


def laplacian_gain(planes: np.ndarray, window: int = 24) -> tuple[float, int]:
    """Median over flat windows and planes of (Laplacian reading / plane-fit variance), and the
    number of windows; ``planes`` (4, h, w)."""
    from numpy.lib.stride_tricks import sliding_window_view

    from n3cli.eval.flat import flat_windows

    px = planes.transpose(1, 2, 0).astype(np.float64)
    wins = flat_windows(px, levels=(0.002, 0.9), window=window)
    yy, xx = np.mgrid[0:window, 0:window]
    design = np.stack([np.ones(window * window), yy.ravel(), xx.ravel()], 1)
    resid = np.eye(window * window) - design @ np.linalg.pinv(design)
    gains = []
    for y, x in wins:
        r = (resid @ px[y : y + window, x : x + window].reshape(window * window, -1)).reshape(window, window, -1)
        var = (r * r).mean((0, 1))
        lap = (sliding_window_view(r, (3, 3), axis=(0, 1)) * _L).sum((-1, -2))
        read = (lap * lap).mean((0, 1)) / 36.0
        gains += list(read[var > 1e-20] / var[var > 1e-20])
    return (float(np.median(gains)) if gains else float("nan")), len(wins)


def main() -> None:
    import imageio.v3 as iio
    import torch

    from n3cli import api
    from n3cli.imaging.bayer import pack
    from n3cli.imaging.raw_noise import add_poisson_gaussian, mosaic_rggb, unprocess
    from n3cli.io.raw import read_raw
    from n3cli.pipelines.raw import denoise_mosaic, noise_params

    torch.set_num_threads(2)
    model = api.load_raw_denoiser(None, "cpu")
    print(f"{'file':<26}{'windows':>8}{'G real':>8}{'G twin':>8}")
    for name in BAYER:
        raw = read_raw(SHARED / "raw-samples" / name)
        p = noise_params(raw)
        clean = pack(np.clip(denoise_mosaic(model, raw, p), 0, 1).astype(np.float32), raw.pattern)[0]
        twin = add_poisson_gaussian(clean, p.a, p.b, np.random.default_rng(0))
        g_real, n = laplacian_gain(pack(raw.mosaic, raw.pattern)[0])
        print(f"{name:<26}{n:>8}{g_real:>8.3f}{laplacian_gain(twin)[0]:>8.3f}", flush=True)
    rng = np.random.default_rng(0)
    files = sorted(glob.glob(str(SHARED / "datasets" / "CBSD68" / "*.png")))[::6]
    print(f"synthetic raw CBSD68[::6] ({len(files)} images), white noise: G per image, min / median / max")
    for a in (1e-5, 1e-4, 1e-3, 1e-2):
        gs = []
        for f in files:
            im = iio.imread(f).astype(np.float32)[..., :3] / 255.0
            lin, _ = unprocess(im[: im.shape[0] // 2 * 2, : im.shape[1] // 2 * 2], rng)
            planes = pack(mosaic_rggb(lin), "RGGB")[0]
            gs.append(laplacian_gain(add_poisson_gaussian(planes, a, a / 100, rng))[0])
        print(f"  a = {a:g}: {min(gs):.2f} / {np.median(gs):.2f} / {max(gs):.2f}", flush=True)


if __name__ == "__main__":
    main()
