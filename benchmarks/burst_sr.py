"""Burst super-resolution (`n3 upscale --burst`): one frame enlarged against N hand-held frames, on
synthetic bursts of Set5 + Set14 images.

    python benchmarks/burst_sr.py [--shared ../shared] [--scale 2] [--frames 1 2 4 8] [--noise 0]
    python benchmarks/burst_sr.py --psf box      # frames shrunk otherwise than the model assumes
    python benchmarks/burst_sr.py --lam 0.003 0.01 0.03 --frames 4   # the prior's weight
    python benchmarks/burst_sr.py --subject      # a grey square walks across the burst
    python benchmarks/burst_sr.py --noise 10 --denoise   # noisy frames; the merge denoised first
    python benchmarks/burst_sr.py --speed 1 --frames 4   # 1 MP frames, x2: time per stage and peak memory

Each burst: the high-resolution image moved by a random hand shake per frame (shift up to 4
low-resolution pixels, turn up to 0.5 degrees, bicubic; the first frame unmoved), shrunk by
``--scale`` (MATLAB bicubic, what the SR models undo; ``--psf box``: a Gaussian blur of 0.3 x
scale px and area averaging instead, as a camera's pixels integrate light), then Gaussian noise
of ``--noise`` (0-255) and 8-bit rounding. PSNR (RGB, [0, 1]) against the high-resolution image,
``scale`` px of border left out. Columns: bicubic and the SR model on the first frame, then the
burst: its merge enlarged by the model (no refinement) and `n3 upscale --burst` (refined). The SR
model is the one `n3 upscale` picks (``--model`` for another); ``--denoise``: as `n3 upscale
--burst --denoise`, the merge denoised by the shipped colour model first (and the first frame,
in the single-frame column, as `n3 upscale --denoise` does).
"""
from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np
import torch


def frames_of(hr: np.ndarray, n: int, scale: int, noise: float, psf: str, rng, subject: bool
              ) -> tuple[list[np.ndarray], np.ndarray]:
    """The frames, and the first frame's scene at the large scale (the square where it was then)."""
    import cv2

    from n3cli.imaging.resize import imresize

    H, W = hr.shape[:2]
    out, target = [], hr
    for i in range(n):
        img = hr
        if i:
            M = cv2.getRotationMatrix2D((W / 2, H / 2), rng.uniform(-0.5, 0.5), 1.0)
            M[:, 2] += rng.uniform(-4 * scale, 4 * scale, 2)
            img = cv2.warpAffine(hr.astype(np.float32), M, (W, H), flags=cv2.INTER_CUBIC,
                                 borderMode=cv2.BORDER_REFLECT).astype(np.float64)
        if subject:
            img = img.copy()
            img[H // 3: H // 3 + 24 * scale, 10 * scale + 20 * scale * i: 34 * scale + 20 * scale * i] = 0.6
            if i == 0:
                target = img
        if psf == "bicubic":
            lr = imresize(img, 1.0 / scale)
        else:
            lr = cv2.resize(cv2.GaussianBlur(img, (0, 0), 0.3 * scale), (W // scale, H // scale),
                            interpolation=cv2.INTER_AREA)
        lr = lr + rng.normal(0, noise / 255.0, lr.shape)
        out.append((np.clip(np.rint(lr * 255), 0, 255) / 255).astype(np.float32))
    return out, target


def psnr(a: np.ndarray, b: np.ndarray, shave: int) -> float:
    d = a[shave:-shave, shave:-shave].astype(np.float64) - b[shave:-shave, shave:-shave]
    return 10 * math.log10(1.0 / np.mean(d * d))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", default="../shared")
    ap.add_argument("--scale", type=int, default=2)
    ap.add_argument("--frames", type=int, nargs="+", default=[1, 2, 4, 8])
    ap.add_argument("--noise", type=float, default=0.0)
    ap.add_argument("--psf", choices=["bicubic", "box"], default="bicubic")
    ap.add_argument("--lam", type=float, nargs="+", default=None, help="instead of the rule's weight")
    ap.add_argument("--count", type=int, default=8, help="images (Set5 then Set14)")
    ap.add_argument("--subject", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--model", default=None)
    ap.add_argument("--denoise", action="store_true")
    ap.add_argument("--speed", type=float, default=None, metavar="MP", help="time a burst of MP-megapixel frames")
    args = ap.parse_args()
    import imageio.v3 as iio

    from n3cli.api import ModelCache, load_upscaler
    from n3cli.imaging.resize import imresize, modcrop
    from n3cli.pipelines import burst_sr
    from n3cli.pipelines.burst import denoise_merge
    from n3cli.pipelines.denoise import denoise
    from n3cli.pipelines.sr import upscale

    torch.set_num_threads(2)
    model = load_upscaler(args.model, args.scale)
    denoiser = ModelCache(None, "cpu") if args.denoise else None
    files = sorted((Path(args.shared) / "datasets" / "Set5").glob("*.png")) + \
        sorted((Path(args.shared) / "datasets" / "Set14").glob("*.png"))
    s = args.scale
    if args.speed:
        return speed(args, model, files[0])
    lams = args.lam or [None]
    print(f"x{s}, {model.info.name}, noise {args.noise:g}{' (denoised)' if args.denoise else ''}, psf {args.psf}, "
          f"{args.count} images, subject {args.subject}")
    rows: dict[str, list[float]] = {}
    t0 = time.time()
    for idx, f in enumerate(files[: args.count]):
        hr = iio.imread(f).astype(np.float64) / 255
        hr = np.repeat(hr[:, :, None], 3, 2) if hr.ndim == 2 else hr[:, :, :3]
        hr = modcrop(hr, s)
        rng = np.random.default_rng(args.seed * 1000 + idx)
        burst, hr = frames_of(hr, max(args.frames), s, args.noise, args.psf, rng, args.subject)
        sigma = args.noise if args.noise else None
        prepare = first = None
        if denoiser is not None:
            loaded = denoiser.for_image(burst[0])[0]
            first = denoise(loaded, burst[0], sigma)

            def prepare(reference, merged, factor):
                return denoise_merge(loaded, reference, merged, factor, sigma)[0]
        score = {"bicubic": psnr(np.clip(imresize(burst[0].astype(np.float64), s), 0, 1), hr, s),
                 "SR, frame 1": psnr(upscale(model, burst[0] if first is None else first, s), hr, s)}
        for n in args.frames:
            if n == 1:
                continue
            for lam in lams:
                if lam is not None:
                    burst_sr.LAMBDA, burst_sr.LAMBDA_NOISE = lam, 0.0
                out, used = burst_sr.upscale_burst(model, burst[:n], s, sigma=sigma, prepare=prepare)
                score[f"burst {n}" + ("" if lam is None else f" lam {lam:g}")] = psnr(out, hr, s)
            plain = burst_sr.refine
            burst_sr.refine = lambda x, *a, **k: x
            try:
                out, _ = burst_sr.upscale_burst(model, burst[:n], s, sigma=sigma, prepare=prepare)
            finally:
                burst_sr.refine = plain
            score[f"merge {n}, SR"] = psnr(out, hr, s)
        print(f.stem, "  ".join(f"{k} {v:.2f}" for k, v in score.items()), flush=True)
        for k, v in score.items():
            rows.setdefault(k, []).append(v)
    print("mean:", "  ".join(f"{k} {np.mean(v):.2f}" for k, v in rows.items()))
    print(f"({time.time() - t0:.0f} s)")


def speed(args, model, source: Path) -> None:
    """Time `upscale_burst` on frames of ``args.speed`` megapixels (the source mirrored to size):
    registration, merge and the model's enlargement together, then the refinement; peak RSS."""
    import resource

    import imageio.v3 as iio

    from n3cli.pipelines import burst_sr

    n, s = max(args.frames), args.scale
    side = int(math.sqrt(args.speed * 1e6 / 0.75))  # 4:3
    img = iio.imread(source).astype(np.float64) / 255
    img = np.repeat(img[:, :, None], 3, 2) if img.ndim == 2 else img[:, :, :3]
    reps = (math.ceil(0.75 * side * s / img.shape[0]) + 1, math.ceil(side * s / img.shape[1]) + 1)
    hr = np.pad(img, ((0, img.shape[0] * (reps[0] - 1)), (0, img.shape[1] * (reps[1] - 1)), (0, 0)), mode="reflect")
    hr = hr[: int(0.75 * side) * s, : side * s]
    burst, _ = frames_of(hr, n, s, args.noise, args.psf, np.random.default_rng(args.seed), False)
    del hr
    h, w = burst[0].shape[:2]
    timed = {"refine": 0.0}
    plain = burst_sr.refine

    def refine(*a, **k):
        t = time.time()
        try:
            return plain(*a, **k)
        finally:
            timed["refine"] += time.time() - t

    burst_sr.refine = refine
    burst = [np.rint(b * 255).astype(np.uint8) for b in burst]  # as 8-bit photos arrive
    t = time.time()
    out, used = burst_sr.upscale_burst(model, burst, s)
    total = time.time() - t
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    print(f"{n} frames of {w}x{h} ({w * h / 1e6:.2f} MP) -> x{s} {out.shape[1]}x{out.shape[0]}, {model.info.name}: "
          f"{total:.1f} s in all, of which refinement {timed['refine']:.1f} s "
          f"({timed['refine'] / (w * h / 1e6) / n:.1f} s per MP and frame); "
          f"peak RSS {rss:.2f} GB (frames made in this process)")


if __name__ == "__main__":
    main()
