"""How far one file's noise reading is from the truth, and how far a noise profile's is.

Synthetic raw files with known noise: natural images (CBSD432) unprocessed to linear RGGB
mosaics (fixed seed), Poisson-Gaussian noise at each level. Each file is read alone (the
single-image fit `n3 denoise` falls back to), and the files are pooled in groups of `--group`
as `n3 noise-profile add` pools them (median, lower quartile as shipped, minimum). Errors are in
octaves of the noise variance at a dark (0.05) and a bright (0.5) level. Then each file is
denoised by the RAW model told its own reading, its group's profile value and the truth:
raw-space PSNR, mean over the files.

    python benchmarks/noise_profile_pooling.py [--count 32] [--group 8] [--upscale 1,2] [--no-denoise]

--upscale 2 enlarges each image 2x (bicubic) first: BSD images are downscaled photos, denser in
texture per pixel than a camera's full-resolution mosaic; 2x is nearer what a sensor sees.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "CBSD432"
LEVELS = [(1e-3, 1e-5), (1e-4, 1e-6), (3e-5, 6e-5)]
DARK, BRIGHT = 0.05, 0.5


def main() -> None:
    from PIL import Image

    from n3cli import api
    from n3cli.eval.metrics import psnr
    from n3cli.imaging.bayer import pack
    from n3cli.imaging.raw_noise import (
        add_poisson_gaussian,
        estimate_noise_params,
        mosaic_rggb,
        unprocess,
    )
    from n3cli.io.raw import RawImage
    from n3cli.pipelines.raw import NoiseParams, denoise_mosaic
    from n3cli.store.noise_profiles import NoiseProfiles

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--count", type=int, default=32)
    ap.add_argument("--group", type=int, default=8)
    ap.add_argument("--upscale", default="1,2")
    ap.add_argument("--no-denoise", action="store_true")
    args = ap.parse_args()
    files = sorted(p for p in args.data.iterdir() if p.suffix.lower() in (".png", ".jpg", ".bmp", ".tif"))[: args.count]
    files = files[: len(files) // args.group * args.group]
    model = None if args.no_denoise else api.load_raw_denoiser(None, "cpu")
    print(f"# {len(files)} images of {args.data.name}, groups of {args.group}; |log2(read / true variance)| "
          f"at x={DARK} / x={BRIGHT}; PSNR: RAW model told each reading")

    def octaves(a, b, ta, tb):
        return np.abs(np.log2(np.maximum(np.stack([a * DARK + b, a * BRIGHT + b], -1), 1e-30)
                              / np.array([ta * DARK + tb, ta * BRIGHT + tb])))

    for up in (int(u) for u in args.upscale.split(",")):
        for a, b in LEVELS:
            clean, noisy, own = [], [], []
            for i, f in enumerate(files):
                rng = np.random.default_rng(i)
                im = Image.open(f).convert("RGB")
                if up > 1:
                    im = im.resize((im.width * up, im.height * up), Image.BICUBIC)
                lin, _ = unprocess(np.asarray(im, np.float32) / 255.0, rng)
                m = mosaic_rggb(lin)
                n = add_poisson_gaussian(m, a, b, rng).astype(np.float32)
                clean.append(m)
                noisy.append(n)
                own.append(estimate_noise_params(pack(n, "RGGB")[0]))
            own = np.array(own)
            pooled = {}
            for how, q in (("median", 0.5), ("lower quartile", None), ("minimum", 0.0)):
                vals = []
                for g in range(0, len(files), args.group):
                    if q is None:  # as shipped
                        t = NoiseProfiles()
                        for k in range(g, g + args.group):
                            t.add("cam", 100, own[k, 0], own[k, 1], str(k), "estimated")
                        e = t.table("cam")[0]
                        vals += [(e.a, e.b)] * args.group
                    else:
                        grp = own[g : g + args.group]
                        d = np.quantile(grp[:, 0] * DARK + grp[:, 1], q)
                        br = np.quantile(grp[:, 0] * BRIGHT + grp[:, 1], q)
                        s = max((br - d) / (BRIGHT - DARK), 0.0)
                        vals += [(s, max(d - s * DARK, 0.0))] * args.group
                pooled[how] = np.array(vals)
            single = octaves(own[:, 0], own[:, 1], a, b)
            line = (f"x{up} a={a:g} b={b:g}: one file: median {np.median(single[:, 0]):.2f}/{np.median(single[:, 1]):.2f}, "
                    f"worst {single[:, 0].max():.2f}/{single[:, 1].max():.2f}")
            for how, v in pooled.items():
                e = octaves(v[::args.group, 0], v[::args.group, 1], a, b)
                line += f" | {how} of {args.group}: {e[:, 0].mean():.2f}/{e[:, 1].mean():.2f}"
            print(line, flush=True)
            if model is None:
                continue
            scores = {}
            for how, ab in (("own reading", own), ("profile", pooled["lower quartile"]), ("true", None)):
                vals = []
                for k, (c, n) in enumerate(zip(clean, noisy)):
                    na, nb = (a, b) if ab is None else ab[k]
                    raw = RawImage(n, "RGGB", np.zeros((2, 2)), 1.0)
                    out = denoise_mosaic(model, raw, NoiseParams(float(na), float(nb), how))
                    vals.append(psnr(np.clip(out, 0, 1), c))
                scores[how] = float(np.mean(vals))
            noisy_psnr = float(np.mean([psnr(np.clip(n, 0, 1), c) for c, n in zip(clean, noisy)]))
            print(f"    PSNR noisy {noisy_psnr:.2f}, told: " + ", ".join(f"{k} {v:.2f}" for k, v in scores.items()),
                  flush=True)


if __name__ == "__main__":
    main()
