"""Speed and memory of the N³Net denoiser against a plain DnCNN-17, on the CPU.

Prints, in one run on the same image and thread count:
  * seconds for the paper's gray N³Net and for DnCNN-17 on a 1024x1024 gray image, and their ratio;
  * peak RSS of denoising a 2 MP and a 16 MP gray image with the same tile size (each in a fresh
    process), and their ratio: memory must not grow with the image beyond the tile;
  * with --breakdown, the same N³Net with its N³ blocks reduced to their two CNNs (embedding,
    temperature; no distances, relaxation or aggregation): the convolutions alone, a floor set by
    the CPU's convolution speed, and what the rest of the blocks adds on top;
  * with --throughput, megapixels per second of DnCNN-17 and each shipped denoiser through
    `api.denoise` (tiling included, file IO excluded) at --mp sizes (default 4, 12, 24) on --device,
    in --precision (bf16: also the PSNR of the bf16 result against the fp32 one), optionally with
    --throughput-tile, --tiles-per-forward and --compile (the CNN stages through torch.compile);
  * with --photo, `n3 denoise photo.jpg -o out.jpg` end to end on a 12 MP (4000x3000) colour JPEG
    in a fresh process, default tiling (noise estimate, file reading and writing included): wall
    seconds and peak RSS. The photo is the bundled astronaut crop enlarged, with noise, q92.

The machines these run on are shared: times vary by up to 30% from run to run, so compare
best-of-N figures from one run (--repeat 5 or more), not figures from separate runs.

    python benchmarks/bench_denoise.py [--threads 2] [--size 1024] [--tile 512] [--repeat 3]
                                       [--layouts channels_last,nchw] [--breakdown] [--photo]
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import torch


def _time(nets, x, repeat):
    """Best-of-``repeat`` seconds of each net on ``x``, the nets run in turn (A, B, A, B, ...) so
    that a slow spell of a shared machine hits both rather than skewing their ratio."""
    best = [float("inf")] * len(nets)
    with torch.inference_mode():
        for net in nets:
            net(x[..., :128, :128])  # warm-up (allocator, oneDNN kernels)
        for _ in range(repeat):
            for i, net in enumerate(nets):
                t = time.perf_counter()
                net(x)
                best[i] = min(best[i], time.perf_counter() - t)
    return best


class _ConvolutionsOnly(torch.nn.Module):
    """``net`` with each N³ block running its embedding and temperature CNNs only, its output the
    input repeated to the block's width: every convolution the N³Net runs, nothing else."""

    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from n3cli.models.layers import run_stack
        from n3cli.models.n3 import N3Block2d

        real = N3Block2d.forward

        def cnns_only(block, y):
            run_stack(block.embedcnn, y), run_stack(block.tempcnn, y)
            return torch.cat([y] * (block.k + 1), 1)  # keeps the memory format, as the block does

        N3Block2d.forward = cnns_only
        try:
            return self.net(x)
        finally:
            N3Block2d.forward = real


def rss_child(pixels: int, tile: int, overlap: int) -> None:
    import numpy as np

    from n3cli import api

    side = int(pixels**0.5)
    model = api.load_denoiser(None, "gray", "cpu")
    rng = np.random.default_rng(0)
    img = (0.5 + 0.1 * rng.standard_normal((side, side, 1))).astype(np.float32)
    base = _hwm_kb()
    t = time.perf_counter()
    api.denoise(model, img, tile=tile, overlap=overlap)
    peak = _hwm_kb()
    print(json.dumps({"pixels": side * side, "seconds": time.perf_counter() - t,
                      "peak_rss_mb": peak / 1024, "before_mb": base / 1024}))


def make_photo(path, width: int = 4000, height: int = 3000, sigma: float = 12.0) -> None:
    """A noisy colour JPEG of ``width`` x ``height`` from the bundled (public-domain) example."""
    from pathlib import Path

    import cv2
    import numpy as np

    src = Path(__file__).resolve().parents[1] / "examples" / "astronaut_clean.png"
    rgb = cv2.resize(cv2.imread(str(src)), (width, height), interpolation=cv2.INTER_CUBIC).astype(np.float32)
    rgb += np.random.default_rng(0).normal(0, sigma, rgb.shape).astype(np.float32)
    cv2.imwrite(str(path), np.clip(rgb, 0, 255).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 92])


def photo_row() -> None:
    import tempfile
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from cli_child import measure

    with tempfile.TemporaryDirectory() as d:
        src, dst = Path(d) / "photo12mp.jpg", Path(d) / "out.jpg"
        make_photo(src)
        seconds, peak = measure(["denoise", str(src), "-o", str(dst), "-q"])
    print(f"12 MP colour JPEG, `n3 denoise` end to end (default tiles): {seconds:.1f} s, peak RSS {peak:.0f} MB")


def compile_stages(net: torch.nn.Module) -> torch.nn.Module:
    """``net`` with its CNN stages compiled by ``torch.compile`` (whole, for a DnCNN), in place.

    The N³ blocks stay eager: their inference forms loop over cell rows or blocks, which the
    compiler unrolls (the whole gray N³Net on 2 CPU cores compiled for over 15 minutes and 7 GB
    before it was stopped); the stages hold nearly all the convolutions."""
    if hasattr(net, "blocks"):
        for i, stage in enumerate(net.blocks):
            net.blocks[i] = torch.compile(stage)
        return net
    return torch.compile(net)


def throughput(device: str, precision: str, sizes: list[float], tile: int | None = None,
               tiles_per_forward: int | None = None, compiled: bool = False) -> None:
    """MP/s of DnCNN-17 (untrained: speed only) and the shipped denoisers, end to end in the process."""
    import numpy as np

    from n3cli import api
    from n3cli.eval.metrics import psnr
    from n3cli.models.registry import build_model
    from n3cli.runtime.torch_runner import TorchRunner
    from n3cli.store.modelinfo import ModelInfo

    dn = build_model("dncnn", {"in_channels": 1, "out_channels": 1, "depth": 17})
    info = ModelInfo(name="dncnn-17", arch="dncnn", args={"depth": 17}, noise={"kind": "fixed", "sigma": 25.0})
    runners = {"DnCNN-17 (yardstick)": lambda p: TorchRunner(dn.to(device), info, p)}
    for name, color in (("n3net-gray-s25", "gray"), ("n3net-color", "rgb")):
        runners[name] = lambda p, n=name, c=color: api.load_denoiser(n, c, device, "torch", p)
    print(f"torch {torch.__version__}, device {device}, precision {precision}, tile {tile or 'auto'}, "
          f"tiles per forward {tiles_per_forward or 'auto'}{', CNN stages compiled' if compiled else ''}")
    for label, make in runners.items():
        runner, ref_runner = make(precision), make("fp32") if precision != "fp32" else None
        runner.tile_batch = tiles_per_forward
        if compiled:
            runner.net = compile_stages(runner.net)
            t = time.perf_counter()
            api.denoise(runner, np.full((256, 256, 3 if "color" in label else 1), 0.5, np.float32), 25.0)
            print(f"{label:<22} compiling (first call, 256x256): {time.perf_counter() - t:.1f} s", flush=True)
        channels = 3 if "color" in label else 1
        for mp in sizes:
            h = int((mp * 1e6 * 3 / 4) ** 0.5)
            w = int(mp * 1e6 / h)
            rng = np.random.default_rng(0)
            img = np.clip(0.5 + 0.1 * rng.standard_normal((h, w, channels)), 0, 1).astype(np.float32)
            api.denoise(runner, img[:256, :256], 25.0)  # warm-up
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            t = time.perf_counter()
            out = api.denoise(runner, img, 25.0, tile=tile)
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            sec = time.perf_counter() - t
            line = f"{label:<22} {h * w / 1e6:5.1f} MP: {sec:7.2f} s, {h * w / 1e6 / sec:7.2f} MP/s"
            if ref_runner is not None:
                line += f", bf16 vs fp32 {psnr(out, api.denoise(ref_runner, img, 25.0, tile=tile)):.1f} dB" \
                        f" ({runner.fallbacks} tiles redone in fp32)"
            print(line, flush=True)


def _hwm_kb() -> float:
    # VmHWM is this process's own peak RSS (ru_maxrss can carry the parent's over fork+exec)
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return float(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--tile", type=int, default=512)
    ap.add_argument("--overlap", type=int, default=16, help="tile context for the memory runs (speed only)")
    ap.add_argument("--layouts", default="channels_last,nchw",
                    help="memory layouts to time, comma-separated: channels_last (what the CLI runs) and/or nchw")
    ap.add_argument("--default-malloc", action="store_true",
                    help="leave glibc's allocator as it is (the `n3` command tunes it: n3cli/malloc.py)")
    ap.add_argument("--skip-rss", action="store_true")
    ap.add_argument("--breakdown", action="store_true",
                    help="also time the N3Net with its blocks reduced to their CNNs (the convolutions alone)")
    ap.add_argument("--photo", action="store_true", help="also the 12 MP colour JPEG, end to end through `n3 denoise`")
    ap.add_argument("--throughput", action="store_true", help="only MP/s of DnCNN-17 and the shipped denoisers")
    ap.add_argument("--device", default="cpu", help="for --throughput: cpu or cuda")
    ap.add_argument("--precision", default="fp32", choices=["fp32", "bf16"], help="for --throughput")
    ap.add_argument("--mp", default="4,12,24", help="for --throughput: image sizes in megapixels")
    ap.add_argument("--throughput-tile", type=int, default=None, help="for --throughput: tile size (default: auto)")
    ap.add_argument("--tiles-per-forward", type=int, default=None,
                    help="for --throughput: tiles per forward pass (default: auto, one on CPUs)")
    ap.add_argument("--compile", action="store_true", help="for --throughput: torch.compile the CNN stages")
    ap.add_argument("--photo-only", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--rss-child", type=int, default=None, help=argparse.SUPPRESS)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    if not a.default_malloc:
        from n3cli.runtime.malloc import keep_freed_memory

        keep_freed_memory()  # as the `n3` command does
    if a.rss_child:
        return rss_child(a.rss_child, a.tile, a.overlap)

    if a.photo_only:
        return photo_row()
    if a.throughput:
        return throughput(a.device, a.precision, [float(v) for v in a.mp.split(",")], a.throughput_tile,
                          a.tiles_per_forward, a.compile)

    from n3cli.models.registry import build_model
    from n3cli.runtime.torch_runner import prepare_for_inference, to_input

    torch.manual_seed(0)
    x = torch.rand(1, 1, a.size, a.size)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {a.size}x{a.size} gray, best of {a.repeat}")
    for layout in a.layouts.split(","):
        n3 = build_model("n3net", {"in_channels": 1, "out_channels": 1}).eval()
        dn = build_model("dncnn", {"in_channels": 1, "out_channels": 1, "depth": 17}).eval()
        xi = x
        if layout == "channels_last":  # what `n3 denoise` runs on CPUs
            n3, dn, xi = prepare_for_inference(n3), prepare_for_inference(dn), to_input(x)
        nets = [dn, n3] + ([_ConvolutionsOnly(n3)] if a.breakdown else [])
        t_dn, t_n3, *t_conv = _time(nets, xi, a.repeat)
        print(f"[{layout}]")
        print(f"  DnCNN-17       {t_dn:8.2f} s")
        print(f"  N3Net (paper)  {t_n3:8.2f} s")
        print(f"  ratio N3Net / DnCNN-17: {t_n3 / t_dn:.2f}  (target <= 1.6)")
        if t_conv:
            print(f"  N3Net convolutions alone {t_conv[0]:8.2f} s = {t_conv[0] / t_dn:.2f} x DnCNN-17; the rest of "
                  f"the N3 blocks adds {(t_n3 - t_conv[0]) / t_dn:.2f} x")
    if a.photo:
        photo_row()
    if a.skip_rss:
        return
    res = {}
    for mp in (2, 16):
        out = subprocess.run([sys.executable, __file__, "--rss-child", str(mp * 1_000_000), "--tile", str(a.tile),
                              "--overlap", str(a.overlap), "--threads", str(a.threads)]
                             + (["--default-malloc"] if a.default_malloc else []),
                             capture_output=True, text=True, check=True)
        res[mp] = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"{mp:2d} MP, tile {a.tile}: peak RSS {res[mp]['peak_rss_mb']:7.0f} MB "
              f"(after loading {res[mp]['before_mb']:.0f} MB), {res[mp]['seconds']:.1f} s")
    print(f"peak RSS 16 MP / 2 MP: {res[16]['peak_rss_mb'] / res[2]['peak_rss_mb']:.2f}  (target <= 1.3)")


if __name__ == "__main__":
    main()
