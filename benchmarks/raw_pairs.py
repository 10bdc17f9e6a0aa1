"""Real-noise sRGB test pairs from single real raw files (issue 23), for `n3 eval real` and
`benchmarks/real_noise.py --pairs`.

No clean reference exists for a single exposure, so each pair trades resolution for one: each
colour plane of the mosaic is cut into 3x3 blocks of same-colour photosites; the noisy mosaic
takes each block's centre photosite (real sensor noise, untouched), the clean mosaic the mean of
the 8 around it (the same centroid, independent noise of 1/sqrt(8) the level). Both small
mosaics are then developed the same way, by n3's camera pipeline (n3cli.imaging.camera): MHC
demosaicing, which correlates the noise across channels and neighbours as a camera does, the
file's as-shot white balance and colour matrix, gamma and tone curve; 8-bit PNGs. With --push K
each file also gives a pair developed K times brighter (an underexposed shot brightened, where
real noise is strongest), clipped alike.

What it is not: a camera's own development (no in-camera sharpening or JPEG), and the clean
image is a little softer than the noisy one (an 8-photosite mean against one photosite), which
favours smoothing slightly and alike for every method.

    python benchmarks/raw_pairs.py OUT_DIR [FILES...] [--push 4]
    python benchmarks/real_noise.py --pairs OUT_DIR --bm3d 6
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "raw-samples"
BAYER = ["blackmagic_pocket4k.dng", "canon_powershot_g2.crw", "kodak_dc120.kdc"]


def split_blocks(planes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(centre, mean of the other 8) of each 3x3 block of each plane ``(4, h, w)``: two
    ``(4, h // 3, w // 3)`` arrays with the same centroid and independent noise."""
    c, h, w = planes.shape
    blocks = planes[:, : h // 3 * 3, : w // 3 * 3].reshape(c, h // 3, 3, w // 3, 3).astype(np.float64)
    centre = blocks[:, :, 1, :, 1]
    ring = (blocks.sum((2, 4)) - centre) / 8.0
    return centre.astype(np.float32), ring.astype(np.float32)


def to_mosaic(planes: np.ndarray) -> np.ndarray:
    """RGGB mosaic ``(2h, 2w)`` of 4 planes ``(4, h, w)``."""
    _, h, w = planes.shape
    m = np.empty((2 * h, 2 * w), np.float32)
    m[0::2, 0::2], m[0::2, 1::2], m[1::2, 0::2], m[1::2, 1::2] = planes
    return m


def develop_pair(noisy: np.ndarray, clean: np.ndarray, wb: list[float], xyz2cam: np.ndarray | None,
                 push: float) -> tuple[np.ndarray, np.ndarray]:
    """Both RGGB mosaics developed alike to 8-bit sRGB ``(H, W, 3)``."""
    import torch

    from n3cli.imaging.camera import demosaic_mhc, develop
    from n3cli.imaging.raw_noise import _RGB2XYZ

    rgb2cam = np.eye(3) if xyz2cam is None else xyz2cam @ _RGB2XYZ
    rgb2cam = rgb2cam / rgb2cam.sum(1, keepdims=True)
    gains = 1.0 / (np.asarray(wb[:3], np.float64) / wb[1])
    ccm = torch.tensor(rgb2cam, dtype=torch.float32)[None]
    g = torch.tensor(gains, dtype=torch.float32)[None]
    out = []
    for m in (noisy, clean):
        x = torch.from_numpy(np.ascontiguousarray(m * push))[None, None]
        srgb = develop(demosaic_mhc(x).clamp(0.0, 1.0), ccm, g)
        out.append((srgb[0].permute(1, 2, 0).numpy() * 255.0).round().clip(0, 255).astype(np.uint8))
    return out[0], out[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("files", nargs="*")
    ap.add_argument("--push", type=float, action="append", default=None,
                    help="brightness factors, one pair each (repeatable; default 1 and 4)")
    a = ap.parse_args()
    import imageio.v3 as iio

    from n3cli.imaging.bayer import pack
    from n3cli.io.raw import read_raw

    out = Path(a.out)
    (out / "noisy").mkdir(parents=True, exist_ok=True)
    (out / "clean").mkdir(parents=True, exist_ok=True)
    for path in [Path(f) for f in a.files] or [SAMPLES / n for n in BAYER]:
        raw = read_raw(path)
        planes, _ = pack(raw.mosaic, raw.pattern)
        centre, ring = split_blocks(planes)
        for push in a.push or [1.0, 4.0]:
            noisy, clean = develop_pair(to_mosaic(centre), to_mosaic(ring), raw.wb, raw.color_matrix, push)
            name = f"{path.stem}_x{push:g}.png"
            iio.imwrite(out / "noisy" / name, noisy)
            iio.imwrite(out / "clean" / name, clean)
            d = noisy.astype(np.float64) - clean
            psnr = 10 * np.log10(255.0**2 / np.mean(d * d))
            print(f"{name}: {noisy.shape[1]}x{noisy.shape[0]}, mean level {noisy.mean():.0f}/255, "
                  f"noisy PSNR {psnr:.2f} dB")


if __name__ == "__main__":
    main()
