"""Real camera noise (issue 23): the real-noise colour model against the Gaussian colour model and
CBM3D, each given the noise level the estimator reads, on the same noisy/clean pairs.

    python benchmarks/real_noise.py [--shared ../shared] [--first 12] [--count 24] [--bm3d 8]
    python benchmarks/real_noise.py --pairs DIR       # real pairs (noisy/ + clean/, or X_real/X_mean)

Without --pairs the pairs are synthesized from CBSD68 images [--first, --first + --count) by the
camera noise pipeline (`n3 eval real --synthesize`, seed 0); the first 12 are skipped by default
because training validates on them. PSNR/SSIM on 8-bit RGB (`n3 eval real`). CBM3D (the `bm3d`
package, `pip install bm3d`; not a dependency of n3) runs on the first --bm3d pairs only: it takes
tens of seconds per image on 2 cores. Also prints each model on Gaussian CBSD68 sigma 25 with the
estimated sigma (the issue's no-loss check) unless --no-gaussian.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", default=str(Path(__file__).resolve().parents[2] / "shared"))
    ap.add_argument("--pairs", default=None, help="a folder of real noisy/clean pairs instead of synthesized ones")
    ap.add_argument("--first", type=int, default=12)
    ap.add_argument("--count", type=int, default=24)
    ap.add_argument("--bm3d", type=int, default=8, help="pairs CBM3D runs on (0: none)")
    ap.add_argument("--models", default="n3net-color,n3net-color-real")
    ap.add_argument("--no-gaussian", action="store_true")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    from n3cli.runtime.torch_runner import flush_denormals

    flush_denormals()  # as loading a model does, but before the synthesis below starts torch's threads
    from n3cli.api import load_denoiser, read_pairs
    from n3cli.api.evaluate import read_images
    from n3cli.eval.metrics import psnr, ssim
    from n3cli.eval.protocols import camera_pairs, evaluate_denoiser, evaluate_real
    from n3cli.imaging.estimate import estimate_sigma
    from n3cli.imaging.noise_kind import noise_kind

    cbsd = Path(a.shared) / "datasets" / "CBSD68"
    if a.pairs:
        pairs, what = read_pairs(a.pairs), a.pairs
    else:
        images = read_images(cbsd, "rgb")[a.first : a.first + a.count]
        pairs, what = camera_pairs(images, 0), f"CBSD68[{a.first}:{a.first + len(images)}] camera noise, seed 0"
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {len(pairs)} pairs: {what}")
    noisy_psnr = np.mean([psnr(n, c) for _, n, c in pairs])
    # what a true-sigma model such as n3net-color or CBM3D is given (n3cli.pipelines.denoise.noise_estimator)
    sig = [estimate_sigma(n, method="all-patches" if noise_kind(n).kind == "real" else "weak-texture")
           for _, n, _ in pairs]
    print(f"noisy input: {noisy_psnr:.2f} dB; estimated sigma {np.mean(sig):.2f} (min {min(sig):.2f}, max {max(sig):.2f}; "
          "the reading a Gaussian model gets)")
    print(f"{'method':<22}{'PSNR':>8}{'SSIM':>8}{'s/img':>8}   (sigma: the estimator's reading per image)")
    results, bm3d_per = {}, []
    for name in a.models.split(","):
        runner = load_denoiser(name, device="cpu")
        t = time.perf_counter()
        r = evaluate_real(runner, pairs)["results"][0]
        results[name] = r
        print(f"{name:<22}{r['mean_psnr']:8.2f}{r['mean_ssim']:8.4f}{(time.perf_counter() - t) / len(pairs):8.1f}",
              flush=True)
    if a.bm3d:
        try:
            import bm3d
        except ImportError:
            print("CBM3D: skipped (pip install bm3d)")
        else:
            sub = pairs[: a.bm3d]
            t = time.perf_counter()
            ps, ss = [], []
            for (_, noisy, clean), s in zip(sub, sig):
                out = bm3d.bm3d_rgb(noisy.astype(np.float64), s / 255.0)
                out8 = np.rint(np.clip(out, 0, 1) * 255) / 255
                ps.append(psnr(out8, clean))
                ss.append(ssim(out8, clean))
            dt = (time.perf_counter() - t) / len(sub)
            from importlib.metadata import version

            print(f"{'CBM3D (bm3d ' + version('bm3d') + ')':<22}{np.mean(ps):8.2f}{np.mean(ss):8.4f}{dt:8.1f}   "
                  f"(first {len(sub)} pairs)")
            bm3d_per = ps
            for name, r in results.items():
                first = [p["psnr"] for p in r["per_image"][: len(sub)]]
                print(f"  {name} on the same {len(sub)}: {np.mean(first):.2f} dB")
    if a.pairs:  # few real pairs: each one matters
        print(f"{'pair':<32}{'noisy':>7}{'sigma':>7}" + "".join(f"{n:>18}" for n in results) + ("   CBM3D" if bm3d_per else ""))
        for i, (name, noisy, clean) in enumerate(pairs):
            row = f"{str(name)[:31]:<32}{psnr(noisy, clean):7.2f}{sig[i]:7.2f}"
            row += "".join(f"{r['per_image'][i]['psnr']:18.2f}" for r in results.values())
            print(row + (f"{bm3d_per[i]:8.2f}" if i < len(bm3d_per) else ""))
    if not a.no_gaussian:
        clean = read_images(cbsd, "rgb")
        for name in a.models.split(","):
            runner = load_denoiser(name, device="cpu")
            r = evaluate_denoiser(runner, clean, [25.0], estimate_noise=True)["results"][0]
            print(f"Gaussian CBSD68 sigma 25, estimated sigma: {name} {r['mean_psnr']:.2f} dB / {r['mean_ssim']:.4f}",
                  flush=True)


if __name__ == "__main__":
    main()
