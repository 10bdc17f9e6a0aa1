"""Peak memory and time of `n3 denoise` on TIFF stacks of growing length: a stack is read and
written one frame at a time, so memory should not grow with the number of frames.

    python benchmarks/stack_memory.py [--size 512] [--frames 1 4 16]

Each run is a fresh process (start-up included); the 1-frame row is a single-page TIFF, the
yardstick. Prints one row per stack: frames, seconds, seconds per frame, peak RSS.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import tifffile

sys.path.insert(0, str(Path(__file__).parent))
from cli_child import measure  # noqa: E402


def make_stack(path: Path, frames: int, size: int, seed: int = 0) -> None:
    """A 16-bit gray time series of moving blobs with noise of sigma 10 (0-255 units)."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    rng = np.random.default_rng(seed)

    def frame(t: int) -> np.ndarray:
        img = 0.25 + 0.4 * np.exp(-((xx - 0.3 - 0.01 * t) ** 2 + (yy - 0.5) ** 2) / 0.02) + 0.15 * np.sin(40 * xx) ** 2
        return np.rint(np.clip(img + rng.normal(0, 10 / 255, img.shape), 0, 1) * 65535).astype(np.uint16)

    shape = (frames, size, size) if frames > 1 else (size, size)
    tifffile.imwrite(path, (frame(t) for t in range(frames)), shape=shape, dtype=np.uint16, photometric="minisblack")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=512, help="frame side in pixels")
    ap.add_argument("--frames", type=int, nargs="+", default=[1, 4, 16])
    args = ap.parse_args()
    print(f"n3 denoise, n3net-gray, {args.size}x{args.size} 16-bit frames, fresh process each")
    print(f"{'frames':>6} {'seconds':>8} {'s/frame':>8} {'peak RSS MB':>12}")
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.frames:
            src = Path(tmp) / f"stack{n}.tif"
            make_stack(src, n, args.size)
            wall, rss = measure(["denoise", str(src), "-o", str(Path(tmp) / f"out{n}.tif"), "-q", "--overwrite"])
            print(f"{n:>6} {wall:>8.1f} {wall / n:>8.2f} {rss:>12.0f}")


if __name__ == "__main__":
    main()
