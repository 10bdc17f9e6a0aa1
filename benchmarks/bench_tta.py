"""What --tta (test-time augmentation: 8 rotations and mirror images, averaged) buys and costs for
each shipped image model, on the paper's protocols, in one run.

    python benchmarks/bench_tta.py [--shared ../shared] [--images 12] [--threads 2] [--only gray,color,sr,raw]

For each model: mean PSNR without and with --tta, the gain, and the time ratio. Colour models use
the first --images images of CBSD68 (the whole set takes an hour with --tta on 2 cores); the gray
model Set12 (all 12); SR models Set5 (all 5) at x2, x3, x4; RAW models synthetic raw CBSD68 (the
first --images, `n3 eval raw`'s protocol) at the levels real files read, from a Blackmagic Pocket 4K
(a = 1e-5) to a = 1e-2.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", default=str(Path(__file__).resolve().parents[2] / "shared"))
    ap.add_argument("--images", type=int, default=12, help="images of CBSD68 for the colour model")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--only", default="gray,color,sr,raw", help="which model families to run")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    from n3cli.api import load_denoiser, load_raw_denoiser, load_upscaler
    from n3cli.api.evaluate import read_images
    from n3cli.eval.protocols import evaluate_denoiser, evaluate_raw, evaluate_upscaler

    data = Path(a.shared) / "datasets"
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"{'model':<16}{'set':<22}{'plain':>9}{'--tta':>9}{'gain':>8}{'time x':>8}")

    def row(model: str, what: str, run) -> None:
        t = time.perf_counter()
        plain = run(False)
        t1 = time.perf_counter()
        aug = run(True)
        t2 = time.perf_counter()
        print(f"{model:<16}{what:<22}{plain:9.2f}{aug:9.2f}{aug - plain:+8.2f}{(t2 - t1) / (t1 - t):8.1f}", flush=True)

    only = set(a.only.split(","))
    cbsd = read_images(data / "CBSD68", "rgb")[: a.images]
    if "gray" in only:
        gray = load_denoiser("n3net-gray-s25", device="cpu")
        set12 = read_images(data / "Set12", "gray")
        row("n3net-gray-s25", "Set12 sigma 25", lambda tta: evaluate_denoiser(gray, set12, [25.0], tta=tta)
            ["results"][0]["mean_psnr"])
    if "color" in only:
        color = load_denoiser("n3net-color", device="cpu")
        row("n3net-color", f"CBSD68[:{len(cbsd)}] sigma 25",
            lambda tta: evaluate_denoiser(color, cbsd, [25.0], tta=tta)["results"][0]["mean_psnr"])
    if "sr" in only:
        set5 = read_images(data / "Set5")
        for name in ("vdsr-sr", "n3net-sr"):
            for s in (2, 3, 4):
                runner = load_upscaler(name, s, device="cpu")
                row(name, f"Set5 x{s}",
                    lambda tta: evaluate_upscaler(runner, set5, [s], tta=tta)["results"][0]["mean_psnr"])
    if "raw" in only:
        for name in ("n3net-raw", "dncnn-raw"):
            runner = load_raw_denoiser(name, "cpu")
            for lv in ((1e-5, 1e-7), (3e-5, 6e-5), (1e-4, 1e-6), (1e-3, 1e-5), (1e-2, 1e-4)):
                row(name, f"raw CBSD68[:{len(cbsd)}] a {lv[0]:g}",
                    lambda tta: evaluate_raw(runner, cbsd, [lv], tta=tta)["results"][0]["mean_psnr"])


if __name__ == "__main__":
    main()
