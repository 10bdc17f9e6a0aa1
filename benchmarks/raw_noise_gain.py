"""Is the RAW model calibrated? Raw-space PSNR on synthetic raw CBSD68 with the model told a noise
sigma ``gain`` times the true one (its sqrt(a), sqrt(b) input maps scaled by the gain).

A calibrated model peaks at gain 1; a model that under-denoises gains from telling it more noise.
The real files' side of the question is `raw_noise_left.py --gains`.

    python benchmarks/raw_noise_gain.py [--count 24] [--gains 1,1.25,1.5] [--model FILE]
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "CBSD68"
LEVELS = [(1e-5, 1e-7), (3e-5, 6e-5), (1e-4, 1e-6), (1e-3, 1e-5), (1e-2, 1e-4)]


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
    ap.add_argument("--count", type=int, default=24, help="first N images of CBSD68")
    ap.add_argument("--gains", default="1,1.25,1.5")
    ap.add_argument("--model", default=None, help="RAW model [default: the shipped n3net-raw]")
    a = ap.parse_args()
    torch.set_num_threads(2)
    runner = api.load_raw_denoiser(a.model, "cpu")
    images = read_images(DATA, "rgb")[: a.count]
    print(f"synthetic raw CBSD68[:{a.count}], raw-space PSNR (dB); model {a.model or 'n3net-raw (shipped)'}")
    print("gain  " + "  ".join(f"a={lv[0]:g}" .rjust(9) for lv in LEVELS))
    noisy = None
    for gain in [float(g) for g in a.gains.split(",")]:
        rep = evaluate_raw(_Told(runner, gain), images, LEVELS, 0, None, None, "CBSD68", None)
        noisy = [r["noisy_psnr"] for r in rep["results"]]
        print(f"{gain:<5g} " + "  ".join(f"{r['mean_psnr']:9.2f}" for r in rep["results"]), flush=True)
    print("noisy " + "  ".join(f"{v:9.2f}" for v in noisy))


if __name__ == "__main__":
    main()
