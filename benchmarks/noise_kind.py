"""Which model a colour photo gets (`n3 denoise --noise auto`, the default): how often the noise-kind
reading (n3cli/imaging/noise_kind.py) sends each kind of noise to each model, and what that costs
or gains against always using one model.

    python benchmarks/noise_kind.py [--shared ../shared] [--start 0] [--step 2] [--sigmas 5,10,15,25,50]
                                    [--sets gaussian,gaussian-jpeg,camera,raw-pairs,jpegs]

Sets, each image denoised by n3net-color and n3net-color-real with the estimator's sigma:
- Gaussian noise on CBSD68 images [start::step] at each sigma (`n3 eval denoise` protocol: float,
  unclipped; PSNR on float); and at sigma 15 / 25 / 25 clipped and saved as JPEG q95 / q90 / q75;
- the same images through the camera-noise synthesis (`n3 eval real --synthesize`, seed 0);
- the pairs made from the Bayer raw files of raw-samples (`n3 eval real --from-raw`);
  (these two: PSNR on 8-bit)
- camera JPEGs developed from every raw file of raw-samples by LibRaw (camera white balance; as
  shot and 3x brighter), 512 px crops at the centre and two corners, JPEG q75 and q95: no clean
  reference, so the noise left in the flattest windows (`n3 eval flat`'s measure), the median
  over the photos.
The thresholds were chosen on CBSD68's odd images (--start 1); --start 0 is the held-out half.
"""
from __future__ import annotations

import argparse
import io
import time
from pathlib import Path

import numpy as np
import torch


def jpeg(px: np.ndarray, quality: int) -> np.ndarray:
    """``px`` (float RGB in [0, 1]) saved as an 8-bit JPEG (4:2:0) and read back."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.rint(px * 255.0).astype(np.uint8)).save(buf, "JPEG", quality=quality, subsampling=2)
    buf.seek(0)
    return np.asarray(Image.open(buf).convert("RGB"), np.float32) / 255.0


def camera_jpegs(folder: Path):
    """(name, photo) for each raw file, brightness, crop and quality (see the docstring)."""
    import rawpy

    for f in sorted(folder.iterdir()):
        try:
            r = rawpy.imread(str(f))
        except Exception:  # not a raw file LibRaw reads (README.md, ...)
            continue
        with r:
            for bright in (1.0, 3.0):
                rgb = r.postprocess(use_camera_wb=True, output_bps=8, bright=bright)
                H, W = rgb.shape[:2]
                for where, (y, x) in (("centre", ((H - 512) // 2, (W - 512) // 2)), ("top-left", (0, 0)),
                                      ("bottom-right", (H - 512, W - 512))):
                    y, x = max(y, 0), max(x, 0)
                    crop = np.ascontiguousarray(rgb[y : y + 512, x : x + 512])
                    for q in (75, 95):
                        yield f"{f.name} x{bright:g} {where} q{q}", jpeg(crop.astype(np.float32) / 255.0, q)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", default=str(Path(__file__).resolve().parents[2] / "shared"))
    ap.add_argument("--start", type=int, default=0)
    ap.add_argument("--step", type=int, default=2)
    ap.add_argument("--sigmas", default="5,10,15,25,50")
    ap.add_argument("--sets", default="gaussian,gaussian-jpeg,camera,raw-pairs,jpegs", help="which sets to run")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    from n3cli.runtime.torch_runner import flush_denormals

    flush_denormals()
    from n3cli.api import load_denoiser, read_raw_pairs
    from n3cli.api.evaluate import read_images
    from n3cli.eval.flat import flat_windows, noise_left
    from n3cli.eval.metrics import psnr
    from n3cli.eval.protocols import camera_pairs
    from n3cli.imaging.noise import add_gaussian, eval_rng
    from n3cli.imaging.noise_kind import noise_kind
    from n3cli.pipelines.denoise import denoise, estimate_level

    shared = Path(a.shared)
    models = {k: load_denoiser(k, device="cpu") for k in ("n3net-color", "n3net-color-real")}
    images = read_images(shared / "datasets" / "CBSD68", "rgb")
    picked = list(range(len(images)))[a.start :: a.step]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; CBSD68 images [{a.start}::{a.step}] "
          f"({len(picked)}); thresholds: n3cli/imaging/noise_kind.py")
    print(f"{'set':<40}{'to real':>9}{'n3net-color':>13}{'-real':>8}{'auto':>8}   (dB; photos: noise left)")
    t0 = time.perf_counter()

    def score(name: str, items, clean_of=None, eight_bit=False, flat=False) -> None:
        n_real, per = 0, {k: [] for k in (*models, "auto")}
        for key, noisy in items:
            wins = flat_windows(noisy) if flat else None
            if flat and not wins:
                continue
            kind = noise_kind(noisy).kind
            n_real += kind == "real"
            got = {}
            for k, m in models.items():
                out = denoise(m, noisy, estimate_level(m.info, noisy, kind))
                if flat:
                    got[k] = noise_left(noisy, out, wins)
                else:
                    if eight_bit:
                        out = np.rint(np.clip(out, 0.0, 1.0) * 255.0) / 255.0
                    got[k] = psnr(out, clean_of(key))
            got["auto"] = got["n3net-color-real" if kind == "real" else "n3net-color"]
            for k, v in got.items():
                per[k].append(v)
        # photos: the median, as `n3 eval flat` takes over windows (a crop whose flat windows are
        # clipped to nearly no noise gives ratios in the tens)
        m = {k: float(np.median(v) if flat else np.mean(v)) for k, v in per.items()}
        digits = 3 if flat else 2
        share = f"{n_real}/{len(per['auto'])}"
        print(f"{name:<40}{share:>9}{m['n3net-color']:>13.{digits}f}"
              f"{m['n3net-color-real']:>8.{digits}f}{m['auto']:>8.{digits}f}", flush=True)

    sets = a.sets.split(",")
    if "gaussian" in sets:
        for s in [float(v) for v in a.sigmas.split(",")]:
            clean = {i: images[i][1] for i in picked}
            score(f"Gaussian sigma {s:g}", ((i, add_gaussian(clean[i], s, eval_rng(0, i))) for i in picked), clean.get)
    if "gaussian-jpeg" in sets:  # Gaussian noise saved as a JPEG is no longer white
        for sigma, q in ((15, 95), (25, 90), (25, 75)):
            clean = {i: images[i][1] for i in picked}
            score(f"Gaussian sigma {sigma}, JPEG q{q}",
                  ((i, jpeg(np.clip(add_gaussian(clean[i], sigma, eval_rng(0, i)), 0, 1), q)) for i in picked),
                  clean.get, eight_bit=True)
    if "camera" in sets:
        every = camera_pairs(images, 0)  # each image's own draws, as `n3 eval real --synthesize`
        pairs = [every[i] for i in picked]
        ref = {n: c for n, _, c in pairs}
        score("camera-noise synthesis", ((n, x) for n, x, _ in pairs), ref.get, eight_bit=True)
    if "raw-pairs" in sets:
        raw = read_raw_pairs(shared / "raw-samples")
        ref = {n: c for n, _, c in raw}
        score(f"raw-sample pairs ({len(raw)})", ((n, x) for n, x, _ in raw), ref.get, eight_bit=True)
    if "jpegs" in sets:
        score("camera JPEGs from raw-samples (median)", camera_jpegs(shared / "raw-samples"), flat=True)
    print(f"{time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
