"""Noise left on real photos without a clean reference: the flat areas of each photo (colour chart
patches, walls, sky) measured before and after each denoiser.

    python benchmarks/real_photo_flat.py PHOTO... [--models n3net-color,n3net-color-real] [--bm3d]
                                         [--crop Y,X,H,W] [--save DIR]

The measure is n3cli.eval.flat's (`n3 eval flat`, the queue's promotion guard): the median over
the photo's flattest 24x24 windows of output std / input std ("noise left": 1 = untouched,
0 = flat). This script adds CBM3D beside the models and --save crops to look at. It says nothing
about detail: read it beside the synthetic-pair PSNR of benchmarks/real_noise.py.
"""
from __future__ import annotations

import argparse
import re
import time
from pathlib import Path

import numpy as np
import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("photos", nargs="+")
    ap.add_argument("--models", default="n3net-color,n3net-color-real")
    ap.add_argument("--bm3d", action="store_true", help="also CBM3D (pip install bm3d) with the estimated sigma")
    ap.add_argument("--crop", default=None, help="Y,X,H,W: where the --save crops are cut")
    ap.add_argument("--save", default=None, help="write each output's crop here as PNG")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    from n3cli.runtime.torch_runner import flush_denormals

    flush_denormals()  # as loading a model does, but before the synthesis below starts torch's threads
    from n3cli.api import denoise, load_denoiser
    from n3cli.eval.flat import flat_windows, noise_left, window_noise
    from n3cli.imaging.estimate import estimate_sigma
    from n3cli.imaging.noise_kind import noise_kind
    from n3cli.io.images import Image, read_image, write_image
    from n3cli.pipelines.denoise import estimate_level

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    runners = {name: load_denoiser(name, device="cpu") for name in a.models.split(",")}
    for photo in a.photos:
        px = read_image(photo).pixels[:, :, :3]
        win = flat_windows(px)
        base = window_noise(px, win)
        kind = noise_kind(px).kind  # each model gets its own reading (n3cli.pipelines.denoise.noise_estimator)
        sigma = estimate_sigma(px, method="all-patches" if kind == "real" else "weak-texture")  # a Gaussian model's
        print(f"\n{photo}: {px.shape[1]}x{px.shape[0]}, estimated sigma {sigma:.2f}, {len(win)} flat windows, "
              f"input noise in them {np.median(base) * 255:.2f} (0-255)")
        outs = {}
        for name, runner in runners.items():
            t = time.perf_counter()
            outs[name] = denoise(runner, px, estimate_level(runner.info, px, kind))
            outs[name + " time"] = time.perf_counter() - t
        if a.bm3d:
            import bm3d

            t = time.perf_counter()
            outs["CBM3D"] = bm3d.bm3d_rgb(px.astype(np.float64), sigma / 255.0).astype(np.float32)
            outs["CBM3D time"] = time.perf_counter() - t
        for name, out in outs.items():
            if name.endswith(" time"):
                continue
            left = noise_left(px, out, win)
            print(f"  {name:<20} noise left {left:.2f}   {outs[name + ' time']:.1f} s")
            if a.save:
                y, x, h, w = (int(v) for v in a.crop.split(",")) if a.crop else (0, 0, 400, 400)
                dst = Path(a.save) / f"{Path(photo).stem}.{re.sub(r'[^A-Za-z0-9_.-]+', '_', name)}.png"  # a model file's path too
                write_image(dst, Image(np.clip(out[y : y + h, x : x + w], 0, 1), np.dtype(np.uint8)))
        if a.save:
            y, x, h, w = (int(v) for v in a.crop.split(",")) if a.crop else (0, 0, 400, 400)
            write_image(Path(a.save) / f"{Path(photo).stem}.input.png", Image(px[y : y + h, x : x + w], np.dtype(np.uint8)))


if __name__ == "__main__":
    main()
