"""Gray models across noise levels: what `n3 denoise` gives a gray photo at each sigma.

    python benchmarks/gray_models.py [--shared ../shared] [--data BSD68] [--step 4]
        [--sigmas 5,10,15,25,35,50,75] [--models n3net-gray,n3net-gray-s25]

Images [::step] of the set, Gaussian noise from `n3 eval denoise`'s streams (float, unclipped),
float PSNR, mean over the images. Per model two columns: "est", the estimator's reading of each
image (what `n3 denoise` does without --sigma), and "true", the true sigma (--sigma S). A model
trained at one sigma gets the noise brought to it either way (n3cli/pipelines/denoise.py).
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
    ap.add_argument("--data", default="BSD68")
    ap.add_argument("--models", default="n3net-gray,n3net-gray-s25")
    ap.add_argument("--step", type=int, default=4)
    ap.add_argument("--sigmas", default="5,10,15,25,35,50,75")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    from n3cli.api import denoise, load_denoiser
    from n3cli.api.evaluate import read_images
    from n3cli.eval.metrics import psnr
    from n3cli.imaging.noise import add_gaussian, eval_rng
    from n3cli.pipelines.denoise import estimate_level

    names = a.models.split(",")
    models = [load_denoiser(n, device="cpu") for n in names]
    images = read_images(Path(a.shared) / "datasets" / a.data, "gray")[:: a.step]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {a.data}[::{a.step}] ({len(images)} images)")
    print(f"{'sigma':>6}{'noisy':>8}{'est. sigma':>11}" + "".join(f"{n + ' est':>22}{'true':>7}" for n in names))
    t0 = time.perf_counter()
    for s in [float(v) for v in a.sigmas.split(",")]:
        rows = []
        for i, (_, clean) in enumerate(images):
            noisy = add_gaussian(clean, s, eval_rng(0, i))
            est = float(estimate_level(models[0].info, noisy))
            row = [psnr(noisy, clean), est]
            for m in models:  # each model is given the level n3 denoise gives it
                row += [psnr(denoise(m, noisy, estimate_level(m.info, noisy)), clean), psnr(denoise(m, noisy, s), clean)]
            rows.append(row)
        m = np.mean(rows, axis=0)
        print(f"{s:>6g}{m[0]:>8.2f}{m[1]:>11.2f}" + "".join(f"{m[2 + 2 * j]:>22.2f}{m[3 + 2 * j]:>7.2f}"
                                                          for j in range(len(names))), flush=True)
    print(f"{time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
