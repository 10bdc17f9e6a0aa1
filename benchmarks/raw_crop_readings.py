"""One real frame's noise, read crop by crop: how far single readings spread on a real sensor.

Every crop of one raw file has the same true noise (one sensor, one ISO, one exposure), so the
spread of their single-image readings is the reading's own error: texture counts as noise and
only raises a reading. Prints each crop's reading (variance at x = 0.2), the pooled value a noise
profile of all crops would use (`n3cli.store.noise_profiles`, lower quartile), and the whole
file's own reading.

    python benchmarks/raw_crop_readings.py [FILE] [--size 400] [--step-y 300] [--step-x 380]
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

FILE = Path(__file__).resolve().parents[2] / "shared" / "raw-samples" / "canon_powershot_g2.crw"
X = 0.2


def main() -> None:
    from n3cli.imaging.bayer import pack
    from n3cli.imaging.raw_noise import estimate_noise_params
    from n3cli.io.raw import read_raw
    from n3cli.pipelines.raw import noise_params
    from n3cli.store.noise_profiles import NoiseProfiles

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("file", nargs="?", type=Path, default=FILE)
    ap.add_argument("--size", type=int, default=400)
    ap.add_argument("--step-y", type=int, default=300)
    ap.add_argument("--step-x", type=int, default=380)
    args = ap.parse_args()
    raw = read_raw(args.file)
    H, W = raw.mosaic.shape
    s = args.size // 2 * 2
    table, reads = NoiseProfiles(), []
    for y in range(0, H - s + 1, args.step_y // 2 * 2):
        for x in range(0, W - s + 1, args.step_x // 2 * 2):
            a, b = estimate_noise_params(pack(raw.mosaic[y : y + s, x : x + s], raw.pattern)[0])
            table.add("file", 1, a, b, f"{y},{x}", "estimated")
            reads.append(a * X + b)
            print(f"crop y={y} x={x}: a={a:.3g} b={b:.3g} var@{X}={a * X + b:.3g}")
    pooled = table.table("file")[0]
    whole = noise_params(raw)
    v = np.array(reads)
    print(f"# {args.file.name}: {len(v)} crops of {s} px; var@{X}: min {v.min():.3g}, lower quartile "
          f"{np.quantile(v, 0.25):.3g}, median {np.median(v):.3g}, max {v.max():.3g} ({v.max() / v.min():.1f}x the min)")
    print(f"# pooled as a noise profile: a={pooled.a:.3g} b={pooled.b:.3g} var@{X}={pooled.a * X + pooled.b:.3g}")
    print(f"# whole file ({whole.source}): a={whole.a:.3g} b={whole.b:.3g} var@{X}={whole.a * X + whole.b:.3g} "
          f"({(whole.a * X + whole.b) / (pooled.a * X + pooled.b):.2f}x the pooled value)")


if __name__ == "__main__":
    main()
