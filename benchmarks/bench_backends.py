"""Seconds per megapixel of the torch and onnxruntime backends on the CPU, in one run.

For the shipped default gray and colour models (the colour one with its noise-map input), on
the same random image, the same tile size and the same thread count, through the same library
call (``api.denoise``). Prints each backend's time and the onnxruntime/torch ratio, and, with
``--rss``, the peak resident memory of each backend in a fresh process.

    python benchmarks/bench_backends.py [--size 1024] [--tile 512] [--threads 2] [--repeat 2] [--rss]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import numpy as np


def load(kind: str, backend: str, threads: int):
    from n3cli import api
    from n3cli.store import zoo

    entry = zoo.default_for(kind)
    if backend == "onnx":
        from n3cli.runtime.onnx_runner import OnnxRunner

        return OnnxRunner(entry.file_for("onnx"), "cpu", threads)
    import torch

    torch.set_num_threads(threads)
    return api.load_denoiser(entry.name, kind, "cpu", "torch")


def image(kind: str, size: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    c = 3 if kind == "rgb" else 1
    yy, xx = np.mgrid[0:size, 0:size] / size
    clean = (0.5 + 0.3 * np.sin(8 * xx + 5 * yy))[..., None].repeat(c, 2)
    return (clean + rng.normal(0, 25 / 255, clean.shape)).astype(np.float32)


def time_one(kind: str, backend: str, a) -> float:
    from n3cli import api

    runner = load(kind, backend, a.threads)
    img = image(kind, a.size)
    api.denoise(runner, img[:128, :128], sigma=25.0)  # warm-up
    best = float("inf")
    for _ in range(a.repeat):
        t = time.perf_counter()
        api.denoise(runner, img, sigma=25.0, tile=a.tile)
        best = min(best, time.perf_counter() - t)
    return best


def rss_child(kind: str, backend: str, a) -> None:
    t = time_one(kind, backend, a)
    with open("/proc/self/status") as f:
        peak = next(float(line.split()[1]) for line in f if line.startswith("VmHWM:"))
    print(json.dumps({"seconds": t, "peak_rss_mb": peak / 1024}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--tile", type=int, default=512)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--rss", action="store_true", help="also measure peak memory, one fresh process per run")
    ap.add_argument("--default-malloc", action="store_true",
                    help="leave glibc's allocator as it is (the `n3` command tunes it: n3cli/malloc.py)")
    ap.add_argument("--child", nargs=2, default=None, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if not a.default_malloc:
        from n3cli.runtime.malloc import keep_freed_memory

        keep_freed_memory()  # as the `n3` command does
    if a.child:
        return rss_child(*a.child, a)
    mp = a.size * a.size / 1e6
    print(f"{a.size}x{a.size} image ({mp:.2f} MP), tile {a.tile}, {a.threads} threads, best of {a.repeat}")
    rows = []
    for kind in ("gray", "rgb"):
        res = {}
        for backend in ("torch", "onnx"):
            if a.rss:
                cmd = [sys.executable, __file__, "--child", kind, backend, "--size", str(a.size), "--tile",
                       str(a.tile), "--threads", str(a.threads), "--repeat", str(a.repeat)]
                cmd += ["--default-malloc"] if a.default_malloc else []
                res[backend] = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)
            else:
                res[backend] = {"seconds": time_one(kind, backend, a)}
        ratio = res["onnx"]["seconds"] / res["torch"]["seconds"]
        rows.append({"model": kind, **{f"{b}_s_per_mp": r["seconds"] / mp for b, r in res.items()},
                     "onnx_over_torch": ratio,
                     **{f"{b}_peak_rss_mb": r["peak_rss_mb"] for b, r in res.items() if "peak_rss_mb" in r}})
        mem = "".join(f"   peak RSS {b} {r['peak_rss_mb']:.0f} MB" for b, r in res.items() if "peak_rss_mb" in r)
        print(f"{kind:<5} torch {res['torch']['seconds'] / mp:6.2f} s/MP   onnxruntime {res['onnx']['seconds'] / mp:6.2f} s/MP"
              f"   onnx/torch {ratio:.2f}{mem}")
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
