"""Training speed of every image architecture the tool ships, against DnCNN-17 in the same run.

For each model: seconds per training step (the training loop's own step: batches drawn on the
device, channels-last, the config's precision, fused Adam on GPUs), patches per second, FLOPs per
step (forward + backward, counted by torch's FlopCounterMode) and the achieved TFLOP/s against the
device's peak (GPUs: the datasheet's dense figure for the precision; CPUs: a large float32 matrix
product measured here). The models run in turn (A, B, C, A, B, C, ...) so that a slow spell of a
shared machine hits all of them; best of --repeat.

    python benchmarks/bench_train.py [--device cpu|cuda] [--batch 8] [--repeat 3] [--precision fp32|tf32|bf16]
                                     [--compile] [--models gray,color,raw,sr,dncnn17]
    python benchmarks/bench_train.py --numerics [--steps 300]   # fast path vs plain fp32: validation PSNR
    python benchmarks/bench_train.py --lr-rule [--steps 400]    # larger batches: which learning rate

Synthetic smooth images stand in for the datasets (speed does not depend on the pixels).
"""
from __future__ import annotations

import argparse
import copy
import time

import numpy as np
import torch

# dense (no sparsity) peak TFLOP/s from NVIDIA's datasheets, by precision
GPU_PEAK = {"H100": {"bf16": 989, "tf32": 495, "fp32": 67}, "H200": {"bf16": 989, "tf32": 495, "fp32": 67},
            "A100": {"bf16": 312, "tf32": 156, "fp32": 19.5}}

MODELS = {  # name: (config fragment, what the paper trains on)
    "dncnn17": ({"model": {"arch": "dncnn", "args": {"in_channels": 1, "out_channels": 1, "depth": 17}},
                 "data": {"patch": 80}}, "DnCNN-17, 80x80 gray (yardstick)"),
    "gray": ({"model": {"arch": "n3net", "args": {"in_channels": 1, "out_channels": 1}}, "data": {"patch": 80}},
             "N3Net gray sigma 25, 80x80"),
    "color": ({"model": {"arch": "n3net", "args": {"in_channels": 4, "out_channels": 3}, "color": "rgb"},
               "data": {"patch": 80}, "noise": {"kind": "map"}}, "N3Net colour + noise map, 80x80"),
    "raw": ({"model": {"arch": "n3net", "args": {"in_channels": 6, "out_channels": 4}, "task": "raw", "color": "bayer"},
             "data": {"patch": 160}}, "N3Net raw, 160x160 mosaic (80x80 planes)"),
    "sr": ({"model": {"arch": "n3net", "args": {"in_channels": 1, "out_channels": 1}, "task": "sr"},
            "data": {"patch": 96, "scales": [2, 3, 4]}}, "N3Net SR, 96x96 luma"),
}


def smooth_images(n: int, size: int, channels: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    out = []
    for _ in range(n):
        f = rng.uniform(2, 12, (channels, 3))
        img = np.stack([0.5 + 0.3 * np.sin(a * xx + b * yy) * np.cos(c * xx * yy) for a, b, c in f], -1)
        out.append((np.rint(np.clip(img, 0, 1) * 255) / 255).astype(np.float32))
    return out


def build(name: str, batch: int, precision: str, compile_: bool, device: torch.device):
    """(task, TrainStep, FLOPs per step) for one model, its batches on ``device``."""
    from n3cli.models.registry import build_model
    from n3cli.train.config import validate
    from n3cli.train.step import TrainStep, make_optimizer, set_precision
    from n3cli.train.tasks import task_for

    frag, _ = MODELS[name]
    raw = {"name": name, "model": {"task": "denoise", "color": "gray"}, "data": {"train": "-", "batch": batch},
           "precision": precision, "compile": compile_}
    for k, v in frag.items():
        raw[k] = {**raw.get(k, {}), **v}
    cfg = validate(copy.deepcopy(raw))
    task = task_for(cfg)
    channels = 3 if task.image_color == "rgb" else 1
    task.prepare(smooth_images(16, 200, channels), device)
    set_precision(precision, device)
    torch.manual_seed(0)
    net = build_model(cfg["model"]["arch"], cfg["model"]["args"]).to(device).train()
    step = TrainStep(net, make_optimizer(net, cfg["optim"], device), device, precision, compile_)
    return task, step, _flops(step, task)


def _flops(step, task) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    inp, target = task.batch(0)
    with FlopCounterMode(display=False) as fc:
        step(inp, target)
    return float(fc.get_total_flops())


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def cpu_peak_tflops() -> float:
    a = torch.randn(2048, 2048)
    a @ a
    best = min(_timed(lambda: a @ a) for _ in range(3))
    return 2 * 2048**3 / best / 1e12


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def speed(a) -> None:
    device = torch.device(a.device)
    names = a.models.split(",")
    built = {n: build(n, a.batch, a.precision, a.compile, device) for n in names}
    best = {n: float("inf") for n in names}
    for n in names:  # warm-up: allocator, kernels, compilation
        task, step, _ = built[n]
        for s in range(2):
            step(*task.batch(s))
    _sync(device)
    for r in range(a.repeat):
        for n in names:
            task, step, _ = built[n]
            batches = [task.batch(100 + r * a.steps + s) for s in range(a.steps)]
            _sync(device)
            t = time.perf_counter()
            for inp, target in batches:
                step(inp, target)
            _sync(device)
            best[n] = min(best[n], (time.perf_counter() - t) / a.steps)
    if device.type == "cuda":
        gpu = torch.cuda.get_device_name(device)
        peak = next((v[a.precision] for k, v in GPU_PEAK.items() if k in gpu), float("nan"))
        where = f"{gpu}, peak {peak:g} TFLOP/s ({a.precision}, datasheet, dense)"
    else:
        peak = cpu_peak_tflops()
        where = f"CPU, {torch.get_num_threads()} threads, peak {peak * 1000:.0f} GFLOP/s (float32 2048^3 matmul, measured)"
    print(f"torch {torch.__version__}; {where}; batch {a.batch}, precision {a.precision}, "
          f"compile {a.compile}; best of {a.repeat} x {a.steps} steps")
    print(f"{'model':<44}{'s/step':>9}{'patches/s':>11}{'GFLOP/step':>12}{'TFLOP/s':>9}{'of peak':>9}{'x DnCNN':>9}")
    for n in names:
        flops = built[n][2]
        sec = best[n]
        rel = sec / best["dncnn17"] if "dncnn17" in best else float("nan")
        print(f"{MODELS[n][1]:<44}{sec:9.3f}{a.batch / sec:11.1f}{flops / 1e9:12.1f}{flops / sec / 1e12:9.3f}"
              f"{flops / sec / 1e12 / peak:9.1%}{rel:9.2f}")


def numerics(a) -> None:
    """A short run of a small gray N3Net in plain fp32 and in the fast path (bf16 autocast for the
    convolutions, channels-last, --compile if given): their validation PSNRs side by side."""
    from n3cli.eval.protocols import evaluate_denoiser
    from n3cli.models.registry import build_model
    from n3cli.runtime.torch_runner import TorchRunner
    from n3cli.store.modelinfo import ModelInfo
    from n3cli.train.config import validate
    from n3cli.train.step import TrainStep, make_optimizer
    from n3cli.train.tasks import task_for

    device = torch.device(a.device)
    args = {"in_channels": 1, "out_channels": 1, "features": 32, "depth": 4}
    val = [(f"v{i}", im) for i, im in enumerate(smooth_images(4, 160, 1, seed=1))]
    res = {}
    for label, precision, comp, seed in (("fp32", "fp32", False, 0), ("fp32 seed 1", "fp32", False, 1),
                                         ("fast", "bf16", a.compile, 0)):
        cfg = validate({"name": "n", "model": {"arch": "n3net", "args": args}, "data": {"train": "-", "batch": a.batch},
                        "precision": precision, "optim": {"lr": 2e-3}, "seed": seed})
        task = task_for(cfg)
        task.prepare(smooth_images(32, 200, 1), device)
        torch.manual_seed(seed)
        net = build_model("n3net", args).to(device).train()
        step = TrainStep(net, make_optimizer(net, cfg["optim"], device), device, precision, comp)
        t = time.perf_counter()
        for s in range(a.steps):
            step(*task.batch(s))
        _sync(device)
        info = ModelInfo(name="n", arch="n3net", args=args, task="denoise", color="gray",
                         noise={"kind": "fixed", "sigma": 25.0})
        psnr = evaluate_denoiser(TorchRunner(net, info), val, [25.0])["results"][0]["mean_psnr"]
        res[label] = psnr
        print(f"{label:>11} ({precision}, compile {comp}): {a.steps} steps in {time.perf_counter() - t:.1f} s, "
              f"validation PSNR {psnr:.3f} dB")
    print(f"difference fast - fp32: {res['fast'] - res['fp32']:+.3f} dB (target within 0.05); "
          f"two fp32 runs with other seeds differ by {res['fp32 seed 1'] - res['fp32']:+.3f} dB")


def lr_rule(a) -> None:
    """The same number of patches as batch 8 x --steps, at batch 32 with the learning rate kept
    (none), scaled by sqrt(4) and by 4 (linear): validation PSNR of a small gray N3Net."""
    from n3cli.eval.protocols import evaluate_denoiser
    from n3cli.models.registry import build_model
    from n3cli.runtime.torch_runner import TorchRunner
    from n3cli.store.modelinfo import ModelInfo
    from n3cli.train.config import validate
    from n3cli.train.step import TrainStep, make_optimizer
    from n3cli.train.tasks import task_for

    device = torch.device(a.device)
    args = {"in_channels": 1, "out_channels": 1, "features": 32, "depth": 4}
    val = [(f"v{i}", im) for i, im in enumerate(smooth_images(4, 160, 1, seed=1))]
    info = ModelInfo(name="n", arch="n3net", args=args, task="denoise", color="gray", noise={"kind": "fixed", "sigma": 25.0})
    base = 1e-3
    for batch, steps, lr, rule in ((8, a.steps, base, "batch 8 (reference)"), (32, a.steps // 4, base, "none"),
                                   (32, a.steps // 4, 2 * base, "sqrt"), (32, a.steps // 4, 4 * base, "linear")):
        cfg = validate({"name": "n", "model": {"arch": "n3net", "args": args}, "data": {"train": "-", "batch": batch},
                        "optim": {"lr": lr}})
        task = task_for(cfg)
        task.prepare(smooth_images(32, 200, 1), device)
        torch.manual_seed(0)
        net = build_model("n3net", args).to(device).train()
        step = TrainStep(net, make_optimizer(net, cfg["optim"], device), device, a.precision)
        t = time.perf_counter()
        for s in range(steps):
            step(*task.batch(s))
        _sync(device)
        psnr = evaluate_denoiser(TorchRunner(net, info), val, [25.0])["results"][0]["mean_psnr"]
        print(f"{rule:<20} batch {batch:3d} x {steps:4d} steps, lr {lr:.0e}: validation PSNR {psnr:.3f} dB "
              f"({time.perf_counter() - t:.0f} s)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--threads", type=int, default=2, help="CPU threads")
    ap.add_argument("--batch", type=int, default=None, help="patches per step [default: 8 on CPU, 32 on GPU]")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--steps", type=int, default=None, help="steps per timing [default: 2 on CPU, 20 on GPU]")
    ap.add_argument("--precision", default=None, choices=["fp32", "tf32", "bf16"],
                    help="[default: fp32 on CPU, bf16 on GPU]")
    ap.add_argument("--compile", action="store_true", help="torch.compile the forward pass")
    ap.add_argument("--models", default="dncnn17,gray,color,raw,sr")
    ap.add_argument("--numerics", action="store_true", help="fp32 against the fast path over --steps steps")
    ap.add_argument("--lr-rule", action="store_true",
                    help="batch 32 against batch 8 for the same patches: learning rate kept, x sqrt(4), x 4")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    gpu = a.device.startswith("cuda")
    a.batch = a.batch or (32 if gpu else 8)
    a.precision = a.precision or ("bf16" if gpu else "fp32")
    if a.numerics or a.lr_rule:
        a.steps = a.steps or 300
        return numerics(a) if a.numerics else lr_rule(a)
    a.steps = a.steps or (20 if gpu else 2)
    speed(a)


if __name__ == "__main__":
    main()
