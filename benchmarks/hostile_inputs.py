"""The hostile-input sweep: what `n3` does with files and options made to break it.

Each probe makes its own files in a fresh temporary folder, runs one `n3` command in a fresh
process under a memory cap (RLIMIT_AS), and the table says: the probe, its exit code, the first
line of stderr, leftovers (files the run added that it should not have: partial outputs, hidden
temporary files), whether an input changed, and the process's peak RSS.

Every row must show exit != 0 (the input is bad), no leftovers, no input changed and a peak RSS
under 1 GB; the script exits 1 when one does not.

    python benchmarks/hostile_inputs.py [--cap-gb 4] [--only NAME]
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import signal
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT.parent / "shared" / "raw-samples"
EXAMPLE = ROOT / "examples" / "astronaut_noisy.png"
TINY_CFG = "model: {arch: n3net, args: {features: 8, depth: 3}}\ndata: {train: imgs}\n"


def _png_header(width: int, height: int) -> bytes:
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 16, 6, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b""))


def _jpeg_declaring(width: int, height: int) -> bytes:
    import io

    import numpy as np
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(buf, format="JPEG")
    data = bytearray(buf.getvalue())
    sof = data.find(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def _model_file(path: Path, args, **meta) -> None:
    import torch
    from safetensors.torch import save_file

    info = {"name": "x", "arch": "n3net", "args": args, "task": "denoise", "color": "gray", **meta}
    save_file({"w": torch.zeros(1)}, str(path), metadata={"n3cli": json.dumps(info)})


def _nan_model(path: Path) -> None:
    import torch

    from n3cli.models.registry import build_model
    from n3cli.store.checkpoint import ModelInfo, save_model

    args = {"in_channels": 1, "out_channels": 1, "depth": 3, "features": 8}
    net = build_model("dncnn", args)
    with torch.no_grad():
        next(net.parameters())[0, 0, 0, 0] = float("nan")
    save_model(path, net, ModelInfo("nan", "dncnn", args))


def _legacy(path: Path, zero_stride: bool = False) -> None:
    import torch

    if zero_stride:  # a few bytes of storage that claim 4096 x 4096 x 3 x 3 weights
        w = torch.zeros(1).expand(4096, 4096, 3, 3)
        torch.save({"net": {"blocks.0.conv1.weight": w}}, path)
    else:
        torch.save({"net": {"blocks.0.conv1.weight": torch.zeros(64, 1, 3, 3)}}, path)


def _nan_tiff(path: Path, channels: int) -> None:
    import numpy as np
    import tifffile

    img = np.full((96, 96, channels), 0.5, np.float32)
    img[10:20, 10:20] = np.nan
    tifffile.imwrite(path, img if channels == 3 else img[:, :, 0], photometric="rgb" if channels == 3 else "minisblack")


def _bad_onnx(path: Path, graph: str) -> None:
    import onnx

    m = onnx.load(str(ROOT / "weights" / "n3net-gray-s25.onnx"))
    for p in m.metadata_props:
        if p.key == "n3cli.graph":
            p.value = graph
    onnx.save(m, str(path))


def _external_data_onnx(path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper

    t = helper.make_tensor("w", TensorProto.FLOAT, [1], [0.0])
    t.data_location = TensorProto.EXTERNAL
    del t.float_data[:]
    t.external_data.add(key="location", value="../../../../etc/passwd")
    graph = helper.make_graph([helper.make_node("Add", ["x", "w"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])], [t])
    onnx.save(helper.make_model(graph), str(path))


def _pairs(path: Path, K: str) -> None:
    pose = "1 0 0 0 0 1 0 0 0 0 1 0 0 0 0 1"
    path.write_text(f"a.png a.png 0 0 {K} 500 0 100 0 500 100 0 0 1 {pose}\n")


def probes() -> list[tuple[str, object, list[str]]]:
    """(name, setup(folder), n3 arguments) for each probe; arguments are relative to the folder."""
    ex = lambda name: (lambda d: (d / name).write_bytes(EXAMPLE.read_bytes()))  # noqa: E731
    raw_cut = lambda name, keep: (lambda d: (d / f"cut{Path(name).suffix}").write_bytes(  # noqa: E731
        (SAMPLES / name).read_bytes()[:keep]))
    cfg = lambda text: (lambda d: (d / "c.yaml").write_text(text))  # noqa: E731
    out = []
    # data loss
    out.append(("--compare onto its own input", ex("shot.compare.png"),
                ["denoise", "shot.compare.png", "-o", "shot.jpg", "--compare", "-q"]))
    out.append(("import -o the checkpoint itself", lambda d: _legacy(d / "a.t7"), ["import", "a.t7", "-o", "a.t7", "--sigma", "25"]))
    out.append(("import -o notes.txt", lambda d: (_legacy(d / "a.t7"), (d / "notes.txt").write_text("mine")),
                ["import", "a.t7", "-o", "notes.txt", "--sigma", "25"]))
    out.append(("train name: /abs/path", cfg("name: /tmp/n3-escape\n" + TINY_CFG), ["train", "--config", "c.yaml"]))
    out.append(("train name: ../../x", cfg("name: ../../x\n" + TINY_CFG), ["train", "--config", "c.yaml"]))
    out.append(("train into a run folder without --resume",
                lambda d: (cfg("name: x\n" + TINY_CFG)(d), (d / "run").mkdir(), (d / "run" / "log.jsonl").write_text("{}\n")),
                ["train", "--config", "c.yaml", "--out", "run"]))
    # garbage with exit code 0
    if SAMPLES.is_dir():
        out.append(("DNG cut to 1 KB", raw_cut("blackmagic_pocket4k.dng", 1024), ["denoise", "cut.dng", "-o", "o.dng", "-q"]))
        out.append(("DNG cut to 2 MB", raw_cut("blackmagic_pocket4k.dng", 2_000_000), ["denoise", "cut.dng", "-o", "o.dng", "-q"]))
        out.append(("KDC cut in half", raw_cut("kodak_dc120.kdc", 82179), ["denoise", "cut.kdc", "-o", "o.tif", "-q"]))
    out.append(("float TIFF with NaN, --sigma 25", lambda d: _nan_tiff(d / "nan.tif", 3),
                ["denoise", "nan.tif", "-o", "o.tif", "--sigma", "25", "-q"]))
    out.append(("gray float TIFF with NaN", lambda d: _nan_tiff(d / "nan.tif", 1), ["denoise", "nan.tif", "-o", "o.tif", "-q"]))
    out.append(("train lr: .inf", cfg("name: x\n" + TINY_CFG + "optim: {lr: .inf}\n"), ["train", "--config", "c.yaml"]))
    out.append(("train sigma: .nan", cfg("name: x\n" + TINY_CFG + "noise: {sigma: .nan}\n"), ["train", "--config", "c.yaml"]))
    out.append(("model with NaN weights", lambda d: (_nan_model(d / "m.safetensors"), ex("in.png")(d)),
                ["denoise", "in.png", "-o", "o.png", "-m", "m.safetensors", "-q"]))
    # memory from small files
    bomb = "a: &a [x,x,x,x,x,x,x,x,x]\n" + "".join(
        f"{c}: &{c} [{', '.join([f'*{p}'] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi"))
    out.append(("YAML alias bomb", cfg(bomb + "name: x\nmodel: {arch: n3net, description: *i}\ndata: {train: x}\n"),
                ["train", "--config", "c.yaml"]))
    out.append(("model file: 4096 features", lambda d: (_model_file(d / "m.safetensors", {"features": 4096}), ex("in.png")(d)),
                ["denoise", "in.png", "-o", "o.png", "-m", "m.safetensors", "-q"]))
    out.append(("model file: depth 10^7", lambda d: (_model_file(d / "m.safetensors", {"depth": 10**7}), ex("in.png")(d)),
                ["denoise", "in.png", "-o", "o.png", "-m", "m.safetensors", "-q"]))
    out.append(("config: 4096 features", cfg("name: x\nmodel: {arch: n3net, args: {features: 4096}}\ndata: {train: x}\n"),
                ["train", "--config", "c.yaml"]))
    out.append((".t7 with zero-stride tensors", lambda d: _legacy(d / "z.t7", zero_stride=True),
                ["import", "z.t7", "-o", "z.safetensors", "--sigma", "25"]))
    out.append(("PNG header 30000^2 RGBA16", lambda d: (d / "big.png").write_bytes(_png_header(30000, 30000)),
                ["denoise", "big.png", "-o", "o.png", "-q"]))
    out.append(("JPEG header 13000^2", lambda d: (d / "big.jpg").write_bytes(_jpeg_declaring(13000, 13000)),
                ["denoise", "big.jpg", "-o", "o.jpg", "-q"]))

    def loop_tree(d: Path) -> None:
        (d / "t" / "a").mkdir(parents=True)
        (d / "t" / "x.txt").write_text("not an image")
        os.symlink(d / "t", d / "t" / "a" / "loop")

    out.append(("'t/**/*.png' -r over a symlink loop", loop_tree, ["denoise", "t/**/*.png", "-o", "out", "-r", "-q"]))
    # tracebacks
    for args, label in (({"features": 10**9}, "features 10^9"), ({"features": -5}, "features -5"),
                        ([1, 2], "args a list")):
        out.append((f"model file: {label}", lambda d, a=args: (_model_file(d / "m.safetensors", a), ex("in.png")(d)),
                    ["denoise", "in.png", "-o", "o.png", "-m", "m.safetensors", "-q"]))
    out.append(("model file: min_size 'abc'",
                lambda d: (_model_file(d / "m.safetensors", {}, min_size="abc"), ex("in.png")(d)),
                ["denoise", "in.png", "-o", "o.png", "-m", "m.safetensors", "-q"]))
    out.append(("ONNX: bad n3cli.graph", lambda d: (_bad_onnx(d / "m.onnx", '{"min_size": "abc"}'), ex("in.png")(d)),
                ["denoise", "in.png", "-o", "o.png", "-m", "m.onnx", "-q"]))
    out.append(("ONNX: external data ../../etc/passwd", lambda d: (_external_data_onnx(d / "m.onnx"), ex("in.png")(d)),
                ["denoise", "in.png", "-o", "o.png", "-m", "m.onnx", "-q"]))
    out.append(("YAML name: 12345", cfg("name: 12345\n" + TINY_CFG), ["train", "--config", "c.yaml"]))
    out.append(("YAML name: a list", cfg("name: [a, b]\n" + TINY_CFG), ["train", "--config", "c.yaml"]))
    out.append(("YAML !!python/object", cfg("name: !!python/object/apply:os.system ['echo pwned']\n" + TINY_CFG),
                ["train", "--config", "c.yaml"]))
    out.append(("config not UTF-8", lambda d: (d / "c.yaml").write_bytes(b"name: caf\xe9\n"), ["train", "--config", "c.yaml"]))
    out.append(("pairs file not UTF-8", lambda d: (d / "p.txt").write_bytes(b"caf\xe9.png b.png 0 0\n"),
                ["eval", "match", "--data", "p.txt"]))
    for K, label in (("nan " * 9, "NaN"), ("0 " * 9, "zero"), ("1e308 0 1 0 1e308 1 0 0 1", "1e308")):
        out.append((f"pairs file: {label} intrinsics", lambda d, K=K: (_pairs(d / "p.txt", K), ex("a.png")(d)),
                    ["eval", "match", "--data", "p.txt"]))
    for text, label in (('{"K": "abc"}', '{"K":"abc"}'), ('{"K": [[1, 2], [3]]}', "ragged K"), ("0 " * 9, "zero K")):
        out.append((f"match --intrinsics {label}", lambda d, t=text: ((d / "k.json").write_text(t), ex("a.png")(d)),
                    ["match", "a.png", "a.png", "-o", "m.json", "--intrinsics", "k.json"]))
    out.append(("match --focal nan", ex("a.png"), ["match", "a.png", "a.png", "-o", "m.json", "--focal", "nan"]))
    out.append(("match --viz m.xyz", ex("a.png"), ["match", "a.png", "a.png", "-o", "m.json", "--viz", "m.xyz"]))
    out.append(("import a pickle that runs code", lambda d: _evil_pickle(d / "evil.t7"),
                ["import", "evil.t7", "-o", "x.safetensors", "--sigma", "25"]))
    out.append(("text file named .nef", lambda d: (d / "notes.nef").write_text("shopping list\n"),
                ["denoise", "notes.nef", "-o", "o.dng", "-q"]))
    return out


class _Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def _evil_pickle(path: Path) -> None:
    import torch

    torch.save({"net": _Evil()}, path)


def _snapshot(d: Path) -> dict[str, str]:
    out = {}
    for root, dirs, files in os.walk(d, followlinks=False):
        for f in files:
            p = Path(root) / f
            out[str(p.relative_to(d))] = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "?"
    return out


def run_probe(name: str, setup, args: list[str], cap_gb: float) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        setup(d)
        before = _snapshot(d)

        def limit():
            cap = int(cap_gb * 2**30)
            resource.setrlimit(resource.RLIMIT_AS, (cap, cap))

        t = time.perf_counter()
        with open(d / ".stderr", "w") as err, open(os.devnull, "w") as devnull:
            p = subprocess.Popen([sys.executable, "-m", "n3cli", *args], cwd=d, stdout=devnull, stderr=err,
                                 stdin=subprocess.DEVNULL, preexec_fn=limit)
            try:
                _, status, usage = os.wait4(p.pid, 0)
            except KeyboardInterrupt:
                p.send_signal(signal.SIGKILL)
                raise
            p.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - t
        stderr = (d / ".stderr").read_text(errors="replace")
        (d / ".stderr").unlink()
        after = _snapshot(d)
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    added = sorted(set(after) - set(before))
    changed = sorted(k for k in before if k in after and before[k] != after[k])
    return {"probe": name, "rc": p.returncode, "stderr": lines[0] if lines else "", "lines": len(lines),
            "leftovers": added, "inputs_changed": changed, "peak_rss_mb": usage.ru_maxrss / 1024, "seconds": seconds}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cap-gb", type=float, default=4.0, help="address-space cap per probe (torch maps ~2 GB at import)")
    ap.add_argument("--only", default=None, help="run the probes whose name contains this")
    ap.add_argument("--json", default=None, help="also write the rows to this file")
    a = ap.parse_args()
    rows, bad = [], 0
    for name, setup, args in probes():
        if a.only and a.only not in name:
            continue
        r = run_probe(name, setup, args, a.cap_gb)
        ok = r["rc"] not in (0, None) and not r["leftovers"] and not r["inputs_changed"] and r["peak_rss_mb"] < 1024
        bad += not ok
        rows.append(r)
        print(f"{'ok ' if ok else 'BAD'} | {name:42.42} | rc {r['rc']:>3} | {r['peak_rss_mb']:6.0f} MB | "
              f"{r['seconds']:5.1f} s | left {len(r['leftovers'])} | changed {len(r['inputs_changed'])} | "
              f"{r['stderr'][:150]}", flush=True)
    if a.json:
        Path(a.json).write_text(json.dumps(rows, indent=1))
    print(f"{len(rows) - bad} of {len(rows)} probes as they should be")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
