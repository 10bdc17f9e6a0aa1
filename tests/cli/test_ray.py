"""`n3 denoise --ray`: the same batch on a Ray cluster started by the test (local, 2 CPUs) gives
the local run's outputs byte for byte, reports the bad file, and survives a worker killed mid-job."""
import os
import shutil
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image
from shared_paths import RAW_SAMPLES

from n3cli.cli.main import cli

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.slow

RAW = RAW_SAMPLES / "kodak_dc120.kdc"  # the smallest Bayer file of the shared samples (0.8 MP)
LOCAL_RECORDS: list[dict] = []  # the local run's --json records


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """30 noisy photos (gray and colour, 8- and 16-bit), a file that is not an image, a raw file."""
    d = tmp_path_factory.mktemp("in")
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:72, 0:88] / 88
    for i in range(30):
        clean = 0.5 + 0.3 * np.sin((3 + i % 5) * xx + (2 + i % 3) * yy)
        if i % 3 == 0:
            clean = np.stack([clean, clean[::-1], clean[:, ::-1]], -1)
        noisy = np.clip(clean + rng.normal(0, 0.08, clean.shape), 0, 1)
        if i % 7 == 1 and noisy.ndim == 2:  # 16-bit gray
            Image.fromarray(np.rint(noisy * 65535).astype(np.uint16)).save(d / f"p{i:02d}.png")
        else:
            Image.fromarray(np.rint(noisy * 255).astype(np.uint8)).save(d / f"p{i:02d}.png")
    (d / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    shutil.copy(RAW, d / RAW.name)
    return d


def _run(args):
    return CliRunner().invoke(cli, ["denoise", *args, "-q"], catch_exceptions=False)


def _files(d):
    return {p.name: p.read_bytes() for p in sorted(d.iterdir())}


@pytest.fixture(scope="module")
def local(inputs, tmp_path_factory):
    """The local run with one torch thread, as each Ray worker (one CPU each) runs."""
    out = tmp_path_factory.mktemp("local")
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        res = _run([str(inputs), "-o", str(out), "--ext", "tif", "--json"])
    finally:
        torch.set_num_threads(threads)
    assert res.exit_code == 1 and "broken.png" in res.output
    LOCAL_RECORDS[:] = _records(res)
    return out


def _records(res) -> list[dict]:
    """--json's records, by input, without where each ran."""
    import json

    recs = [json.loads(line) for line in res.stdout.splitlines()]
    return sorted(({k: v for k, v in r.items() if k != "backend"} for r in recs), key=lambda r: r["input"])


def test_a_batch_on_ray_writes_what_the_local_run_writes(inputs, local, tmp_path):
    out = tmp_path / "ray"
    res = _run([str(inputs), "-o", str(out), "--ext", "tif", "--ray", "local", "--workers", "2", "--json"])
    assert res.exit_code == 1, res.output
    assert "denoised 31, skipped 0, failed 1" in res.output and "broken.png" in res.output
    assert _files(out) == _files(local)  # 30 photos and the raw file's developed TIFF, byte for byte
    # the same record per input as the local run's, but where each was written
    ray_records = _records(res)
    for r in ray_records + LOCAL_RECORDS:
        r["output"] = Path(r["output"]).name
    assert ray_records == LOCAL_RECORDS and len(ray_records) == 32
    assert {r["status"] for r in ray_records} == {"written", "failed"}
    again = _run([str(inputs), "-o", str(out), "--ext", "tif", "--ray", "local", "--workers", "2"])
    assert "denoised 0, skipped 31, failed 1" in again.output  # existing outputs are kept


def test_a_worker_killed_mid_job_loses_nothing_and_leaves_no_partial_file(inputs, local, tmp_path):
    from n3cli.api import plan_jobs, run_on_ray
    from n3cli.io.images import is_image_path
    from n3cli.io.raw import is_raw_path

    out = tmp_path / "ray"
    jobs = plan_jobs([str(inputs)], str(out), False, lambda p: is_image_path(p) or is_raw_path(p), "tif",
                     lambda e: True, default_ext=lambda f: ".tif")
    jobs = sorted(jobs, key=lambda j: not is_raw_path(j.src))  # the slow raw file first

    first = []

    def kill_one_soon(pids):
        first.extend(pids)

        def kill():
            time.sleep(3.0)  # the first worker is inside the raw file by now
            os.kill(pids[0], signal.SIGKILL)

        threading.Thread(target=kill, daemon=True).start()

    tally = run_on_ray(jobs, "denoise", "local", None, {}, workers=2, on_workers=kill_one_soon)
    assert tally["done"] == 31 and len(tally["failed"]) == 1
    assert tally["workers"] - set(first), "the killed worker was not replaced (killed too late?)"
    assert _files(out) == _files(local)
    assert not [p for p in out.iterdir() if p.name.endswith(".part")]


def test_ray_denoiser_maps_batches_of_arrays_and_of_paths(inputs):
    """The class for Ray Data's map_batches, called as Ray Data calls it."""
    from n3cli.api import RayDenoiser, denoise, load_denoiser

    px = np.asarray(Image.open(inputs / "p02.png"))  # 8-bit gray
    fn = RayDenoiser(device="cpu")
    got = fn({"image": np.stack([px, px])})["denoised"]
    assert got.dtype == np.uint8 and got.shape == (2, *px.shape)
    assert np.array_equal(got[0], denoise(load_denoiser(None, "gray", "cpu"), px))
    by_path = fn({"path": np.array([str(inputs / "p02.png")])})["denoised"][0]  # read as float in [0, 1]
    assert by_path.dtype == np.float32 and np.abs(by_path[:, :, 0] * 255 - got[0]).max() <= 0.5 + 1e-3
    with pytest.raises(Exception, match="'image' or a 'path'"):
        fn({"pixels": []})
