"""Is the RAW model calibrated? Raw-space PSNR on synthetic raw CBSD68 with the model told a noise
sigma ``gain`` times the true one (its sqrt(a), sqrt(b) input maps scaled by the gain).

A calibrated model peaks at gain 1; a model that under-denoises gains from telling it more noise.
The real files' side of the question is `raw_noise_left.py --gains`.

    python benchmarks/raw_noise_gain.py [--count 24] [--gains 1,1.25,1.5] [--model FILE]
                                        [--data DIR] [--level A,B ... | --grid] [--downsample N]

--grid runs the levels of a grid over the training range (log10 a in -5..-1, log10 b/a in
-3..0.6) and prints, per level, the gain of the highest PSNR (a parabola through the best tried
gain and its neighbours, in log gain) and that best tried PSNR against gain 1's.
--downsample N averages each image over N x N blocks first: 8-bit, JPEG-compressed "clean"
images carry noise of their own, as large in linear light as the lowest levels' (docs/training.md,
data.downsample), and a model that removes it is scored down for it.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "CBSD68"
LEVELS = [(1e-5, 1e-7), (3e-5, 6e-5), (1e-4, 1e-6), (1e-3, 1e-5), (1e-2, 1e-4)]
GRID_LOG_A, GRID_LOG_B_OVER_A = [-5.0, -4.0, -3.0, -2.0, -1.0], [-3.0, -1.5, 0.0, 0.6]


def best_gain(gains: list[float], psnrs: list[float]) -> float:
    """The gain of the highest PSNR, refined by a parabola in log gain through it and its neighbours."""
    k = int(np.argmax(psnrs))
    if k == 0 or k == len(gains) - 1:
        return gains[k]
    x = np.log(gains[k - 1 : k + 2])
    c2, c1, _ = np.polyfit(x, psnrs[k - 1 : k + 2], 2)
    return gains[k] if c2 >= 0 else float(np.exp(np.clip(-c1 / (2 * c2), x[0], x[2])))


class _Told:
    """``runner`` with its noise maps (input channels 4 and 5) scaled by ``gain``."""

    def __init__(self, runner, gain: float) -> None:
        self.runner, self.gain = runner, gain

    def __getattr__(self, name):
        return getattr(self.runner, name)

    def run(self, x: np.ndarray) -> np.ndarray:
        x = x.copy()
        x[:, 4:6] *= np.float32(self.gain)
        return self.runner.run(x)


def main() -> None:
    import torch

    from n3cli import api
    from n3cli.api.evaluate import read_images
    from n3cli.eval.protocols import evaluate_raw

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(DATA), help="folder of sRGB images [default: CBSD68]")
    ap.add_argument("--count", type=int, default=24, help="its first N images")
    ap.add_argument("--level", action="append", default=None, metavar="A,B",
                    help="noise level (repeat) [default: " + ", ".join(f"{a:g},{b:g}" for a, b in LEVELS) + "]")
    ap.add_argument("--grid", action="store_true", help="the levels of a grid over the training range")
    ap.add_argument("--downsample", type=int, default=1, help="average each image over N x N blocks first")
    ap.add_argument("--gains", default="1,1.25,1.5")
    ap.add_argument("--model", default=None, help="RAW model [default: the shipped n3net-raw]")
    a = ap.parse_args()
    torch.set_num_threads(2)
    runner = api.load_raw_denoiser(a.model, "cpu")
    levels = [tuple(float(v) for v in lv.split(",")) for lv in a.level] if a.level else LEVELS
    if a.grid:
        levels = [(10.0**la, 10.0 ** (la + r)) for la in GRID_LOG_A for r in GRID_LOG_B_OVER_A]
    from n3cli.train.data import box_downsample

    images = [(n, box_downsample(px, a.downsample)) for n, px in read_images(Path(a.data), "rgb")[: a.count]]
    print(f"synthetic raw {Path(a.data).name}[:{a.count}]"
          f"{f', averaged over {a.downsample}x{a.downsample}' if a.downsample > 1 else ''}, raw-space PSNR (dB); "
          f"model {a.model or 'n3net-raw (shipped)'}")
    print("gain  " + "  ".join(f"{lv[0]:g},{lv[1]:g}".rjust(16) for lv in levels))
    noisy, gains, table = None, [float(g) for g in a.gains.split(",")], []
    for gain in gains:
        rep = evaluate_raw(_Told(runner, gain), images, levels, 0, None, None, Path(a.data).name, None)
        noisy = [r["noisy_psnr"] for r in rep["results"]]
        table.append([r["mean_psnr"] for r in rep["results"]])
        print(f"{gain:<5g} " + "  ".join(f"{v:16.2f}" for v in table[-1]), flush=True)
    print("noisy " + "  ".join(f"{v:16.2f}" for v in noisy))
    if a.grid and 1.0 in gains:
        print(f"\n{'log10 a':>8} {'log10 b/a':>10} {'noisy':>7} {'gain 1':>7} {'best':>7} {'best gain':>10}")
        for k, (lv_a, lv_b) in enumerate(levels):
            col = [row[k] for row in table]
            print(f"{np.log10(lv_a):8.1f} {np.log10(lv_b / lv_a):10.1f} {noisy[k]:7.2f} {col[gains.index(1.0)]:7.2f} "
                  f"{max(col):7.2f} {best_gain(gains, col):10.2f}")


if __name__ == "__main__":
    main()
