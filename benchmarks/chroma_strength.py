"""--strength and --chroma-strength on real camera files: luminance and colour noise left apart.

    python benchmarks/chroma_strength.py [--data ../shared/raw-samples] [--save DIR]

Each Bayer file of --data is denoised three ways, as `n3 denoise` does: its camera JPEG (LibRaw's
development, centre 1000x800, quality 92; `n3 eval flat`'s photos) through the colour model
`--noise auto` picks, and the raw file itself through the RAW model to a developed 16-bit TIFF
(split on the developed image) and to a DNG (split in linear camera RGB), developed by LibRaw. For
each pair of strengths the flattest 5% of 24x24 windows of the result (those of the input) give the
noise left, output std / input std (median over windows), in luma Y (BT.601) and in chroma
(Cb, Cr): 1 = untouched, 0 = flat. --save writes each result's centre 256 px as PNG to look at.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

SETTINGS = [(1.0, None), (0.0, 1.0), (0.5, 1.0), (1.0, 0.0)]
YCC = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]], np.float32)


def split_noise(noisy: np.ndarray, out: np.ndarray, windows) -> tuple[float, float]:
    """Noise left in luma and in chroma (Cb and Cr pooled), medians over ``windows``."""
    from n3cli.eval.flat import window_noise

    a, b = noisy @ YCC.T, np.clip(out, 0, 1) @ YCC.T
    y = np.median(window_noise(b[..., :1], windows) / np.maximum(window_noise(a[..., :1], windows), 1e-6))
    c = np.median(window_noise(b[..., 1:], windows) / np.maximum(window_noise(a[..., 1:], windows), 1e-6))
    return float(y), float(c)


def label(s: float, c: float | None) -> str:
    return f"--strength {s:g}" + (f" --chroma-strength {c:g}" if c is not None else "")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "raw-samples"))
    ap.add_argument("--save", default=None)
    a = ap.parse_args()
    import torch

    torch.set_num_threads(2)
    from n3cli import api
    from n3cli.eval.flat import flat_windows
    from n3cli.io.camera_jpeg import camera_jpeg
    from n3cli.io.images import Image, read_image, write_image
    from n3cli.io.raw import read_raw
    from n3cli.pipelines.raw import developed

    files = [f for f in sorted(Path(a.data).iterdir()) if api.is_raw_path(f)]
    cache = api.ModelCache(None, "cpu")
    save = Path(a.save) if a.save else None
    if save:
        save.mkdir(parents=True, exist_ok=True)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")

    def result(path, dst, s, c):
        """Denoise as `n3 denoise` does; the output as seen (a DNG developed by LibRaw)."""
        used = api.denoise_file(path, dst, cache, strength=s, chroma_strength=c)
        return used, developed(dst, read_raw(dst), None) if dst.suffix == ".dng" else read_image(dst).pixels[..., :3]

    print("file | input | model | setting | luma noise left | chroma noise left | s")
    with tempfile.TemporaryDirectory() as tmp:
        for f in files:
            try:
                jpeg = camera_jpeg(f, 92, (800, 1000))
            except Exception as e:  # noqa: BLE001  (non-Bayer samples are skipped, as n3 eval flat does)
                print(f"{f.name}: skipped ({str(e).splitlines()[0]})")
                continue
            src = Path(tmp) / f"{f.stem}.png"
            write_image(src, Image(jpeg, np.dtype(np.uint8)))
            for kind, path, ext in (("camera JPEG", src, ".tif"), ("raw to TIFF", f, ".tif"), ("raw to DNG", f, ".dng")):
                # the input as the results are seen: the JPEG itself, or the raw file written at strength 0
                noisy = jpeg if path == src else result(path, Path(tmp) / f"{f.stem}_in{ext}", 0.0, None)[1]
                for s, c in SETTINGS:
                    t = time.time()
                    used, out = result(path, Path(tmp) / f"{f.stem}_{kind[-3:]}_{s:g}_{c}{ext}", s, c)
                    secs = time.time() - t
                    win = flat_windows(noisy)
                    ly, lc = split_noise(noisy, out, win)
                    print(f"{f.name} | {kind} | {used['model']} | {label(s, c)} | {ly:.3f} | {lc:.3f} | {secs:.1f}",
                          flush=True)
                    if save:
                        h, w = out.shape[:2]
                        crop = out[h // 2 - 128 : h // 2 + 128, w // 2 - 128 : w // 2 + 128]
                        name = f"{f.stem}_{kind[-3:]}_s{s:g}" + (f"_c{c:g}" if c is not None else "") + ".png"
                        write_image(save / name, Image(np.clip(crop, 0, 1), np.dtype(np.uint8)))


if __name__ == "__main__":
    main()
