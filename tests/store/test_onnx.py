"""ONNX export and the onnxruntime backend: parity with PyTorch, self-describing files, errors."""
import json
import subprocess
import sys

import numpy as np
import onnx
import pytest
import tifffile
import torch
from click.testing import CliRunner

from n3cli.cli.main import cli
from n3cli.models.nets import N3Net
from n3cli.runtime.onnx_runner import OnnxRunner
from n3cli.runtime.runner import run_image
from n3cli.runtime.torch_runner import TorchRunner
from n3cli.store import zoo
from n3cli.store.checkpoint import ModelInfo, load_model, save_model
from n3cli.store.onnx_export import export_onnx
from n3cli.store.onnx_meta import GRAPH_KEY

TINY = dict(in_channels=1, out_channels=1, features=8, depth=3, stages=2, mid_channels=4, k=2,
            embed_features=8, embed_channels=4)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A small random N³Net checkpoint and its ONNX export made by `n3 export`."""
    d = tmp_path_factory.mktemp("onnx")
    torch.manual_seed(0)
    net = N3Net(**TINY)
    with torch.no_grad():  # non-trivial BN statistics, so eval-mode folding is exercised
        for m in net.modules():
            if isinstance(m, (torch.nn.BatchNorm2d, torch.nn.BatchNorm1d)):
                m.running_mean.uniform_(-0.3, 0.3)
                m.running_var.uniform_(0.5, 2.0)
    info = ModelInfo(name="tiny", arch="n3net", args=TINY, task="denoise", color="gray",
                     noise={"kind": "fixed", "sigma": 25.0}, min_size=80, extra={"description": "test"})
    ckpt = d / "tiny.safetensors"
    save_model(ckpt, net, info)
    out = d / "tiny.onnx"
    res = CliRunner().invoke(cli, ["export", str(ckpt), "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert "verified: max |onnxruntime - torch|" in res.output
    return ckpt, out


@pytest.mark.slow
@pytest.mark.parametrize("size", [(80, 80), (85, 130), (165, 210), (300, 245)])  # graph sides: multiples of 5
def test_dynamic_export_matches_torch_at_many_sizes(tiny, size):
    ckpt, path = tiny
    net = load_model(ckpt).net
    x = np.random.default_rng(sum(size)).random((1, 1, *size), dtype=np.float32)
    with torch.no_grad():
        ref = net(torch.from_numpy(x)).numpy()
    y = OnnxRunner(path, "cpu").run(x)
    assert y.shape == ref.shape
    assert np.abs(y - ref).max() <= 1e-4


def test_export_is_valid_and_describes_itself(tiny):
    ckpt, path = tiny
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto, full_check=True)
    ops = {n.domain for n in proto.graph.node}
    assert ops <= {"", "ai.onnx"}, f"non-standard operator domains: {ops}"
    runner = OnnxRunner(path, "cpu")
    assert runner.info.to_json() == load_model(ckpt).info.to_json()
    assert runner.graph["source_sha256"] == zoo.sha256(ckpt)
    assert (runner.size_multiple, runner.min_size, runner.fixed_size) == (5, 80, None)
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    assert dims[1].dim_value == 1 and not dims[2].dim_value and not dims[3].dim_value  # dynamic H, W


@pytest.mark.slow
def test_fixed_size_export_is_tiled_to_its_size(tiny, tmp_path):
    ckpt, dyn = tiny
    out = tmp_path / "fixed.onnx"
    rep = export_onnx(ckpt, out, input_size=(215, 230))
    assert rep["max_abs_err"] <= 1e-4
    dims = onnx.load(str(out)).graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_value for d in dims[2:]] == [215, 230]
    fixed = OnnxRunner(out, "cpu")
    assert fixed.fixed_size == (215, 230)
    x = np.random.default_rng(3).random((1, 1, 333, 401), dtype=np.float32)
    whole = run_image(OnnxRunner(dyn, "cpu"), x, tile=4096)
    tiled = run_image(fixed, x)  # tiles of exactly 215 x 230
    assert tiled.shape == whole.shape
    assert np.abs(tiled - whole).max() <= 1e-4
    small = run_image(fixed, x[..., :90, :101])  # smaller than the graph: padded, cropped back
    assert small.shape == (1, 1, 90, 101)


@pytest.mark.slow
@pytest.mark.parametrize("entry", [e for e in zoo.entries() if e.onnx], ids=lambda e: e.name)
def test_shipped_onnx_files_match_their_checkpoints(entry):
    onnx_runner = OnnxRunner(entry.file_for("onnx"), "cpu")
    assert onnx_runner.graph["source_sha256"] == entry.sha256, \
        "stale ONNX copy: run `python tools/export_zoo.py` after changing a checkpoint"
    torch_runner = TorchRunner(load_model(entry.file_for("torch")))
    cin = onnx_runner.graph["in_channels"]
    rng = np.random.default_rng(7)
    for size in [(123, 171), (50, 61)]:  # the second is below the N³ window: padded by both backends
        x = rng.random((1, cin, *size), dtype=np.float32)
        a, b = run_image(onnx_runner, x), run_image(torch_runner, x)
        assert a.shape == b.shape == (1, onnx_runner.graph["out_channels"], *size)
        assert np.abs(a - b).max() <= 1e-4


def _write_noisy(path, c=3):
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:120, 0:140] / 140.0
    clean = np.stack([0.5 + 0.3 * np.sin(6 * xx), 0.4 + 0.3 * np.cos(5 * yy), 0.3 + 0.4 * xx * yy][:c], -1)
    noisy = np.clip(clean + rng.normal(0, 20 / 255, clean.shape), 0, 1)
    tifffile.imwrite(path, np.rint(noisy * 65535).astype(np.uint16), photometric="rgb" if c == 3 else "minisblack")


@pytest.mark.slow
@pytest.mark.parametrize("c", [1, 3])
def test_denoise_backend_onnx_equals_torch(tmp_path, c):
    src = tmp_path / "in.tif"
    _write_noisy(src, c)
    for backend in ("torch", "onnx"):
        res = CliRunner().invoke(cli, ["denoise", "-q", str(src), "-o", str(tmp_path / f"{backend}.tif"),
                                       "--backend", backend])
        assert res.exit_code == 0, res.output
        assert f"running on {'onnxruntime' if backend == 'onnx' else 'torch'}" in res.stderr
    a = tifffile.imread(tmp_path / "onnx.tif").astype(np.int64)
    b = tifffile.imread(tmp_path / "torch.tif").astype(np.int64)
    assert a.shape == b.shape
    assert np.abs(a - b).max() <= 7  # 1e-4 of the 16-bit range


def test_onnx_path_runs_without_torch(tmp_path, tiny):
    src, dst = tmp_path / "in.tif", tmp_path / "out.png"
    _write_noisy(src, 1)
    code = ("import sys; sys.modules['torch'] = None\n"  # any `import torch` now fails
            "from n3cli.cli.main import main\n"
            f"sys.argv = ['n3', 'denoise', '-q', {str(src)!r}, '-o', {str(dst)!r}, '--model', {str(tiny[1])!r}]\n"
            "main()\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert dst.is_file()


def _one_error(res, needle):
    lines = [ln for ln in res.stderr.splitlines() if ln.startswith("error")]
    assert res.exit_code != 0
    assert any(needle in ln for ln in lines), res.stderr
    assert "Traceback" not in res.output


def test_corrupt_and_foreign_onnx_files_fail_in_one_line(tmp_path):
    src = tmp_path / "in.tif"
    _write_noisy(src, 1)
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"\x08\x07garbage" * 50)
    x = onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 1, "h", "w"])
    y = onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 1, "h", "w"])
    graph = onnx.helper.make_graph([onnx.helper.make_node("Identity", ["x"], ["y"])], "g", [x], [y])
    foreign = tmp_path / "foreign.onnx"
    onnx.save(onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 18)]), foreign)
    for model, needle in [(corrupt, "not a loadable ONNX model"), (foreign, "without n3 metadata")]:
        out = tmp_path / f"{model.stem}.png"
        res = CliRunner().invoke(cli, ["denoise", "-q", str(src), "-o", str(out), "--model", str(model)])
        _one_error(res, needle)
        assert not out.exists()


def test_export_refuses_to_overwrite_and_bad_tile(tiny, tmp_path):
    ckpt, existing = tiny
    res = CliRunner().invoke(cli, ["export", str(ckpt), "-o", str(existing)])
    _one_error(res, "exists")
    res = CliRunner().invoke(cli, ["export", str(ckpt), "-o", str(tmp_path / "t.onnx"), "--tile", "64", "101"])
    _one_error(res, "multiples of 5")
    assert not (tmp_path / "t.onnx").exists()
    meta = {p.key: p.value for p in onnx.load(str(existing)).metadata_props}
    assert json.loads(meta[GRAPH_KEY])["dtype"] == "float32"


@pytest.mark.slow
def test_fp16_export_runs_on_the_cpu_close_to_float32(tiny, tmp_path):
    ckpt, _ = tiny
    out = tmp_path / "half.onnx"
    rep = export_onnx(ckpt, out, fp16=True)
    assert rep["graph"]["dtype"] == "float16"
    assert rep["max_abs_err"] <= 1e-2  # float16 arithmetic; float32 input and output
    runner = OnnxRunner(out, "cpu")
    y = run_image(runner, np.full((1, 1, 90, 95), 0.5, dtype=np.float32))
    assert y.dtype == np.float32 and np.isfinite(y).all()


@pytest.mark.slow
def test_upscale_on_onnxruntime_equals_torch(tmp_path):
    """An SR model exported to ONNX upscales like its checkpoint (bicubic + model on Y)."""
    from n3cli import api

    torch.manual_seed(2)
    args = dict(TINY)
    path = tmp_path / "sr.safetensors"
    save_model(path, N3Net(**args), ModelInfo(name="tiny-sr", arch="n3net", args=args, task="sr", scale=2,
                                              extra={"scales": [2]}))
    export_onnx(path, tmp_path / "sr.onnx", verify=False)
    px = np.random.default_rng(4).random((47, 61, 3), dtype=np.float32)
    a = api.upscale(api.load_upscaler(tmp_path / "sr.onnx", 2, "cpu"), px, 2)
    b = api.upscale(api.load_upscaler(path, 2, "cpu"), px, 2)
    assert a.shape == b.shape == (94, 122, 3)
    assert np.abs(a - b).max() <= 1e-4


@pytest.mark.parametrize("graph,needle", [
    ('{"min_size": "abc"}', "min_size must be"), ('{"context": 100000}', "context must be"),
    ('{"input_size": [1, 2, 3]}', "input_size must be"), ('[1, 2]', "must be a JSON object"), ("{", "not valid JSON"),
])
def test_bad_graph_metadata_is_refused_in_one_line(graph, needle):
    """An ONNX file whose n3cli.graph metadata was edited ended in a traceback (int("abc"))."""
    import json

    from n3cli.errors import CheckpointError
    from n3cli.store.modelinfo import META_KEY
    from n3cli.store.onnx_meta import GRAPH_KEY, read_graph_meta

    meta = {META_KEY: json.dumps({"name": "x", "arch": "n3net", "args": {}, "task": "denoise"}), GRAPH_KEY: graph}
    with pytest.raises(CheckpointError, match=needle):
        read_graph_meta(meta, "m.onnx")
