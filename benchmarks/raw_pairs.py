"""Real-noise sRGB test pairs from single real raw files (issue 23), for `n3 eval real` and
`benchmarks/real_noise.py --pairs`.

The pairs are n3cli.eval.raw_pairs's (`n3 eval real --data DIR --from-raw` makes the same
ones in memory): each plane's 3x3 blocks, the centre photosite noisy, the mean of the other 8
clean, both developed alike; with --push K each file also gives a pair developed K times
brighter. This writes them as 8-bit PNGs for other tools.

    python benchmarks/raw_pairs.py OUT_DIR [FILES...] [--push 4]
    python benchmarks/real_noise.py --pairs OUT_DIR --bm3d 6
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "raw-samples"
BAYER = ["blackmagic_pocket4k.dng", "canon_powershot_g2.crw", "kodak_dc120.kdc"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("files", nargs="*")
    ap.add_argument("--push", type=float, action="append", default=None,
                    help="brightness factors, one pair each (repeatable; default 1 and 4)")
    a = ap.parse_args()
    import imageio.v3 as iio

    from n3cli.eval.raw_pairs import raw_pairs
    from n3cli.io.raw import read_raw

    out = Path(a.out)
    (out / "noisy").mkdir(parents=True, exist_ok=True)
    (out / "clean").mkdir(parents=True, exist_ok=True)
    for path in [Path(f) for f in a.files] or [SAMPLES / n for n in BAYER]:
        for name, noisy, clean in raw_pairs(path.name, read_raw(path), tuple(a.push or [1.0, 4.0])):
            noisy8, clean8 = (np.rint(x * 255).astype(np.uint8) for x in (noisy, clean))
            iio.imwrite(out / "noisy" / f"{name}.png", noisy8)
            iio.imwrite(out / "clean" / f"{name}.png", clean8)
            d = noisy8.astype(np.float64) - clean8
            psnr = 10 * np.log10(255.0**2 / np.mean(d * d))
            print(f"{name}.png: {noisy8.shape[1]}x{noisy8.shape[0]}, mean level {noisy8.mean():.0f}/255, "
                  f"noisy PSNR {psnr:.2f} dB")


if __name__ == "__main__":
    main()
