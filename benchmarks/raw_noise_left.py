"""How much of a real raw file's noise `n3 denoise` removes, and what each noise source reads.

For each Bayer file: (a, b) from every source the file offers (DNG NoiseProfile, the sensor's
optical black + fit, the single-image fit), then the file denoised with the source n3 picks, and
the noise left: the robust spread (MAD) of the mosaic's Laplacian residual (Immerkær's filter,
which cancels smooth signal) after, over before, per colour plane, averaged.

Then its synthetic twin: the denoised mosaic (the file's clean estimate) plus Poisson-Gaussian
noise at the same (a, b), denoised the same way. The twin's noise left and PSNR against its clean
estimate tell the two explanations apart: a twin cleaned far better than the real file means real
noise is stronger (or differently shaped) than the (a, b) read; a twin left as noisy means the
model itself under-denoises at that level. Last, the floor of the measure: the share of the
input's residual that is texture, which even a denoiser that removed exactly the noise would
leave (0 where the file is all noise at this measure's scale).

    python benchmarks/raw_noise_left.py [FILES...] [--model FILE] [--gains 1.5,2,3] [--tta]
    # default: the Bayer files of ../shared/raw-samples

--model scores another RAW model (a fine-tune, a queue run); the twins are still built on the
shipped n3net-raw's clean estimate, so that every model is scored on the same twin.
--gains also runs the model told a noise sigma that many times the one read (a and b times
gain squared), on the file and on its twin (whose noise stays at the level read): whether a
stronger result would come from telling the model more noise, and what it costs the twin.
--tta also runs the model with test-time augmentation (`n3 denoise --tta`: eight turned and
mirrored views of the mosaic, averaged) on the file and its twin.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "raw-samples"
BAYER = ["blackmagic_pocket4k.dng", "canon_powershot_g2.crw", "kodak_dc120.kdc"]


def residual_mad(planes: np.ndarray) -> float:
    """Mean over the 4 planes of the MAD of the Laplacian residual / 6 (a noise sigma where flat)."""
    from numpy.lib.stride_tricks import sliding_window_view

    k = np.array([[1.0, -2.0, 1.0], [-2.0, 4.0, -2.0], [1.0, -2.0, 1.0]])
    out = []
    for p in planes.astype(np.float64):
        r = (sliding_window_view(p, (3, 3)) * k).sum((-1, -2))
        out.append(np.median(np.abs(r - np.median(r))) * 1.4826 / 6.0)
    return float(np.mean(out))


def main(argv: list[str]) -> None:
    import argparse

    import torch

    from n3cli import api
    from n3cli.imaging.bayer import pack
    from n3cli.io.raw import read_raw
    from n3cli.pipelines.raw import denoise_mosaic, noise_candidates, noise_params

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("files", nargs="*")
    ap.add_argument("--model", default=None, help="RAW model file or zoo name [default: the shipped n3net-raw]")
    ap.add_argument("--gains", default="", help="comma-separated noise-sigma gains to try besides 1")
    ap.add_argument("--tta", action="store_true", help="also with test-time augmentation (8x the time)")
    a = ap.parse_args(argv)
    torch.set_num_threads(2)
    shipped = api.load_raw_denoiser(None, "cpu")
    model = api.load_raw_denoiser(a.model, "cpu") if a.model else shipped
    print(f"model: {a.model or 'n3net-raw (shipped)'}")
    paths = [Path(f) for f in a.files] or [SAMPLES / n for n in BAYER]
    for path in paths:
        raw = read_raw(path)
        cands = noise_candidates(raw)
        chosen = noise_params(raw)
        t = time.perf_counter()
        clean = denoise_mosaic(model, raw, chosen)
        sec = time.perf_counter() - t
        before = residual_mad(pack(raw.mosaic, raw.pattern)[0])
        after = residual_mad(pack(clean, raw.pattern)[0])
        reads = "; ".join(f"{k}: a={a:.3g} b={b:.3g}" for k, (a, b) in cands.items())
        print(f"{path.name} ({raw.pattern}, {raw.mosaic.shape[1]}x{raw.mosaic.shape[0]}): {reads}")
        print(f"  denoised with {chosen.source}: noise left {after / before:.2f} of the input's "
              f"(residual sigma {before:.2e} -> {after:.2e}), {sec:.0f} s", flush=True)
        from dataclasses import replace

        from n3cli.eval.metrics import psnr
        from n3cli.imaging.raw_noise import add_poisson_gaussian

        reference = clean if model is shipped else denoise_mosaic(shipped, raw, chosen)
        truth = np.clip(reference, 0, 1).astype(np.float32)
        twin = replace(raw, mosaic=add_poisson_gaussian(truth, chosen.a, chosen.b, np.random.default_rng(0)))
        twin_clean = denoise_mosaic(model, twin, chosen)
        t_before = residual_mad(pack(twin.mosaic, raw.pattern)[0])
        t_after = residual_mad(pack(twin_clean, raw.pattern)[0])
        print(f"  synthetic twin (its clean estimate + noise at that a, b): noise left {t_after / t_before:.2f} "
              f"(residual sigma {t_before:.2e} -> {t_after:.2e}); PSNR {psnr(twin.mosaic, truth):.2f} -> "
              f"{psnr(twin_clean, truth):.2f} dB", flush=True)
        # The measure counts texture too. Noise alone at (a, b) has residual sigma n; if texture and
        # noise add in quadrature, removing exactly the noise leaves sqrt(before^2 - n^2) / before.
        n = residual_mad(pack(twin.mosaic - truth, raw.pattern)[0])
        floor = (f"about {np.sqrt(before**2 - n**2) / before:.2f} (texture's share of the input's residual)"
                 if n < before else "nothing: by this measure the file is all noise (noise alone at (a, b) "
                 "measures as much as the whole input, or more: the real noise is weaker or coarser than (a, b) says)")
        print(f"  noise alone at that a, b: residual sigma {n:.2e}; removing exactly the noise would leave {floor}",
              flush=True)
        if a.tta:
            t = time.perf_counter()
            left = residual_mad(pack(denoise_mosaic(model, raw, chosen, tta=True), raw.pattern)[0]) / before
            sec = time.perf_counter() - t
            t_out = denoise_mosaic(model, twin, chosen, tta=True)
            print(f"  with --tta: noise left {left:.2f} ({sec:.0f} s); twin noise left "
                  f"{residual_mad(pack(t_out, raw.pattern)[0]) / t_before:.2f}, PSNR {psnr(t_out, truth):.2f} dB",
                  flush=True)
        for gain in [float(g) for g in a.gains.split(",") if g]:
            told = replace(chosen, a=chosen.a * gain**2, b=chosen.b * gain**2)
            left = residual_mad(pack(denoise_mosaic(model, raw, told), raw.pattern)[0]) / before
            t_out = denoise_mosaic(model, twin, told)
            print(f"  told {gain:g}x the noise sigma: noise left {left:.2f}; twin noise left "
                  f"{residual_mad(pack(t_out, raw.pattern)[0]) / t_before:.2f}, PSNR {psnr(t_out, truth):.2f} dB",
                  flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
