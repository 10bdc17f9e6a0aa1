"""How white each real raw file's noise is: neighbour and cross-plane correlations of the noise in
the flattest windows of the packed RGGB planes (`n3 eval flat`'s windows, each detrended by a
plane fit). Poisson-Gaussian sensor noise, which the RAW models are trained on, gives about 0 for
every figure; a camera that filters or compresses its raw data before writing it does not.

    python benchmarks/raw_noise_structure.py [FILE ...]     # default: the Bayer files of ../shared/raw-samples

Per file, medians over windows (and over the 4 planes for the within-plane figures): correlation
with the photosite of the same colour one cell right (h1) and one cell down (v1), two cells down
(v2), and between the two green planes and between red and blue in one cell (x).
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

SHARED = Path(__file__).resolve().parents[2] / "shared" / "raw-samples"
FILES = ["blackmagic_pocket4k.dng", "canon_powershot_g2.crw", "kodak_dc120.kdc"]


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


def structure(path: Path) -> dict[str, float]:
    from n3cli.eval.flat import RAW_LEVELS, WINDOW, flat_windows
    from n3cli.imaging.bayer import pack
    from n3cli.io.raw import read_raw

    raw = read_raw(path)
    planes = pack(raw.mosaic, raw.pattern)[0].transpose(1, 2, 0).astype(np.float64)
    windows = flat_windows(planes, levels=RAW_LEVELS)
    yy, xx = np.mgrid[0:WINDOW, 0:WINDOW]
    design = np.stack([np.ones(WINDOW * WINDOW), yy.ravel(), xx.ravel()], 1)
    h1, v1, v2, x = [], [], [], []
    for y0, x0 in windows:
        r = np.empty((WINDOW, WINDOW, 4))
        for c in range(4):
            p = planes[y0 : y0 + WINDOW, x0 : x0 + WINDOW, c].ravel()
            r[..., c] = (p - design @ np.linalg.lstsq(design, p, rcond=None)[0]).reshape(WINDOW, WINDOW)
        for c in range(4):
            q = r[..., c]
            h1.append(_corr(q[:, 1:], q[:, :-1]))
            v1.append(_corr(q[1:], q[:-1]))
            v2.append(_corr(q[2:], q[:-2]))
        x += [_corr(r[..., 1], r[..., 2]), _corr(r[..., 0], r[..., 3])]
    return {"windows": len(windows), "h1": float(np.median(h1)), "v1": float(np.median(v1)),
            "v2": float(np.median(v2)), "x": float(np.median(x))}


def main() -> None:
    paths = [Path(p) for p in sys.argv[1:]] or [SHARED / f for f in FILES]
    print(f"{'file':<28}{'windows':>8}{'h1':>8}{'v1':>8}{'v2':>8}{'x':>8}")
    for p in paths:
        s = structure(p)
        print(f"{p.name:<28}{s['windows']:>8}{s['h1']:>8.3f}{s['v1']:>8.3f}{s['v2']:>8.3f}{s['x']:>8.3f}", flush=True)


if __name__ == "__main__":
    main()
