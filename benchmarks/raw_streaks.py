"""Does a RAW model draw lines that the photo does not have? Row means across a flat band.

N³ aggregation inside a thin flat band finds its neighbours along the band only, so noise is
averaged sideways and what is left lines up: streaks along the band. They are faint (a level or
two in 8 bits) and neither PSNR nor the noise left sees them. This develops the file and each
model's result as `--compare` does, takes a flat horizontal band (default: a dark border of the
Canon G2 chart, in the centre 512 px crop), and prints per channel the spread (std) of the row
means over the band, in 8-bit levels, and their correlation with the input's row means. A
spread well above the input's with a low correlation means lines were made, not revealed.

    python benchmarks/raw_streaks.py [--file F] [--rows 182:210] [--cols 100:280] [-m MODEL ...]
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "raw-samples"


def row_profile(rgb: np.ndarray, rows: slice, cols: slice) -> np.ndarray:
    """(rows, 3) row means of the centre-512-crop window, in 8-bit levels."""
    h, w = rgb.shape[:2]
    y, x = (h - min(512, h)) // 2, (w - min(512, w)) // 2
    return rgb[y + rows.start : y + rows.stop, x + cols.start : x + cols.stop].mean(1) * 255.0


def main() -> None:
    import torch

    from n3cli import api
    from n3cli.io.raw import read_raw
    from n3cli.pipelines.raw import denoise_mosaic, developed, noise_params

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--file", default=str(SAMPLES / "canon_powershot_g2.crw"))
    ap.add_argument("--rows", default="182:210", help="band rows in the centre 512 px crop")
    ap.add_argument("--cols", default="100:280", help="band columns in the centre 512 px crop")
    ap.add_argument("-m", "--model", action="append", default=None,
                    help="RAW model name or file; repeat [default: n3net-raw and dncnn-raw]")
    a = ap.parse_args()
    torch.set_num_threads(2)
    rows, cols = (slice(*(int(v) for v in s.split(":"))) for s in (a.rows, a.cols))
    raw = read_raw(a.file)
    params = noise_params(raw)
    ref = row_profile(developed(a.file, raw, None), rows, cols)
    print(f"{Path(a.file).name}, rows {a.rows}, cols {a.cols} of the centre crop; noise {params.a:.3g}, {params.b:.3g}")
    print(f"{'':<28} row-mean spread R / G / B    correlation with the input")
    print(f"{'input':<28} {' / '.join(f'{v:.2f}' for v in ref.std(0))}")
    for name in a.model or ["n3net-raw", "dncnn-raw"]:
        out = developed(a.file, raw, denoise_mosaic(api.load_raw_denoiser(name, "cpu"), raw, params))
        prof = row_profile(out, rows, cols)
        corr = [np.corrcoef(ref[:, c], prof[:, c])[0, 1] for c in range(3)]
        print(f"{Path(name).name[:28]:<28} {' / '.join(f'{v:.2f}' for v in prof.std(0))}"
              f"           {' / '.join(f'{v:.2f}' for v in corr)}", flush=True)


if __name__ == "__main__":
    main()
