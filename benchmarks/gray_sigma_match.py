"""A model trained at one sigma on noise at other levels: as it is, and with the noise brought to
its sigma (n3cli/pipelines/denoise.py: the image's contrast scaled about its mean, at most 2x up,
and the result scaled back), which `n3 denoise` and `api.denoise` do.

    python benchmarks/gray_sigma_match.py [--shared ../shared] [--step 4] [--sigmas 5,10,15,25,35,50]

BSD68 images [::step], Gaussian noise from `n3 eval denoise`'s streams (float, unclipped), PSNR on
float. "as trained" tells the model its own sigma (no scaling); "matched" gives it the estimator's
reading, as `n3 denoise` does without --sigma.
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
    ap.add_argument("--model", default="n3net-gray-s25")
    ap.add_argument("--step", type=int, default=4)
    ap.add_argument("--sigmas", default="5,10,15,25,35,50")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    from n3cli.api import denoise, load_denoiser
    from n3cli.api.evaluate import read_images
    from n3cli.eval.metrics import psnr
    from n3cli.imaging.noise import add_gaussian, eval_rng

    model = load_denoiser(a.model, device="cpu")
    trained = model.info.noise.get("sigma")
    images = read_images(Path(a.shared) / "datasets" / "BSD68", "gray")[:: a.step]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {a.model} (sigma {trained}); "
          f"BSD68[::{a.step}] ({len(images)} images)")
    print(f"{'sigma':>6}{'noisy':>8}{'as trained':>12}{'matched':>9}")
    t0 = time.perf_counter()
    for s in [float(v) for v in a.sigmas.split(",")]:
        rows = []
        for i, (_, clean) in enumerate(images):
            noisy = add_gaussian(clean, s, eval_rng(0, i))
            rows.append((psnr(noisy, clean), psnr(denoise(model, noisy, trained), clean),
                         psnr(denoise(model, noisy), clean)))
        m = np.mean(rows, axis=0)
        print(f"{s:>6g}{m[0]:>8.2f}{m[1]:>12.2f}{m[2]:>9.2f}", flush=True)
    print(f"{time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
