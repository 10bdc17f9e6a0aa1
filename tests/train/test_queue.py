"""The training queue: runs continued over budgets, exact resumes, status, and promotion that only
replaces a shipped model with a better one."""
import json
import shutil

import numpy as np
import pytest
import torch
import yaml
from click.testing import CliRunner
from PIL import Image

from n3cli.cli.main import cli
from n3cli.errors import ConfigError
from n3cli.store.checkpoint import load_model, save_model
from n3cli.store.zoo import sha256
from n3cli.train.queue import (
    STATE_FILES,
    load_queue,
    parse_budget,
    run_progress,
    run_queue,
    status,
)

TINY = {"arch": "dncnn", "args": {"in_channels": 1, "out_channels": 1, "features": 8, "depth": 3}}


def images(folder, n, seed):
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:64, 0:64] / 64
    for i in range(n):
        f = rng.uniform(2, 8, 2)
        img = 0.5 + 0.3 * np.sin(f[0] * xx + f[1] * yy)
        Image.fromarray(np.rint(img * 255).astype(np.uint8)).save(folder / f"{i}.png")
    return folder


def make_queue(tmp_path, steps=(6, 4), evaluate=True):
    train, val = images(tmp_path / "train", 4, 0), images(tmp_path / "val", 2, 1)
    runs = []
    for i, n in enumerate(steps):
        cfg = {"name": f"r{i}", "seed": i, "model": {**TINY, "task": "denoise", "color": "gray"},
               "data": {"train": str(train), "val": str(val), "patch": 40, "batch": 4},
               "noise": {"kind": "fixed", "sigma": 25}, "optim": {"epochs": 1, "steps_per_epoch": n, "lr": 3e-3},
               "log_every": 1, "val_every": 1000, "checkpoint_every": 1000}
        (tmp_path / f"r{i}.yaml").write_text(yaml.safe_dump(cfg))
        entry = {"name": f"r{i}", "config": f"r{i}.yaml", "steps": n}
        if evaluate:
            entry.update(replaces="gray-tiny", evaluate=[{"key": "val", "task": "denoise", "data": str(val), "sigma": 25}])
        runs.append(entry)
    path = tmp_path / "queue.yaml"
    path.write_text(yaml.safe_dump({"out": "states", "runs": runs}))
    return path


def test_budgets_are_read_in_seconds_minutes_and_hours():
    assert [parse_budget(t) for t in ("90", "90s", "9m", "1.5h")] == [90, 90, 540, 5400]
    for bad in ("", "nine", "-3m", "0", "5d"):
        with pytest.raises(ConfigError):
            parse_budget(bad)


def test_a_queue_is_checked_before_anything_trains(tmp_path):
    path = make_queue(tmp_path)
    q = load_queue(path)
    assert [r.name for r in q.runs] == ["r0", "r1"] and q.out == tmp_path / "states"
    raw = yaml.safe_load(path.read_text())
    for change, msg in ((lambda r: r["runs"][0].update(steps=7), "schedule is 6 steps"),
                        (lambda r: r["runs"][1].update(name="r0"), "used twice"),
                        (lambda r: r["runs"][0].update(colour=1), "unknown key 'colour'"),
                        (lambda r: r["runs"][0].pop("evaluate"), "needs the evaluations"),
                        (lambda r: r["runs"][0]["evaluate"][0].pop("sigma"), "needs sigma"),
                        (lambda r: r.update(runs=[]), "non-empty list")):
        bad = json.loads(json.dumps(raw))
        change(bad)
        (tmp_path / "bad.yaml").write_text(yaml.safe_dump(bad))
        with pytest.raises(ConfigError, match=msg):
            load_queue(tmp_path / "bad.yaml")


def test_runs_accumulate_over_budgets_and_end_where_one_long_run_ends(tmp_path):
    """A run cut by its budget continues from its state in the next call, and ends with exactly
    the weights of the same run trained in one go."""
    path = make_queue(tmp_path, steps=(30, 4))
    q = load_queue(path)
    first = run_queue(q, 1e-9, device="cpu", progress=False)  # out of time after the first step
    assert first == [{"name": "r0", "from": 0, "to": 1, "target": 30, "finished": False}]
    names = {p.name for p in (q.out / "r0").iterdir()}
    assert set(STATE_FILES) <= names and names - set(STATE_FILES) <= {"best.safetensors"}  # (best: not kept)
    assert [r["steps"] for r in status(q)] == [1, 0]
    second = run_queue(q, 600, device="cpu", progress=False, max_runs=1)
    assert second == [{"name": "r0", "from": 1, "to": 30, "target": 30, "finished": True}]
    third = run_queue(q, 600, device="cpu", progress=False)
    assert [d["name"] for d in third] == ["r1"] and all(r["finished"] for r in status(q))
    assert run_queue(q, 600, device="cpu", progress=False) == []

    from n3cli.train.loop import train

    whole = train(q.runs[0].config, tmp_path / "whole", device="cpu", progress=False)
    a, b = load_model(whole).net.state_dict(), load_model(q.out / "r0" / "model.safetensors").net.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow
def test_promotion_replaces_a_shipped_model_only_with_a_better_one(tmp_path, monkeypatch):
    path = make_queue(tmp_path, steps=(40,))
    q = load_queue(path)
    run_queue(q, 600, device="cpu", progress=False)
    trained = load_model(q.out / "r0" / "model.safetensors")
    weights = tmp_path / "weights"
    weights.mkdir()
    worse = load_model(q.out / "r0" / "model.safetensors").net
    with torch.no_grad():
        for p in worse.parameters():
            p.add_(0.05 * torch.randn_like(p))
    save_model(weights / "gray-tiny.safetensors", worse, trained.info)
    (weights / "README.md").write_text("# Shipped models\n\n## gray-tiny\n\nold text\n")
    man = {"models": [{"name": "gray-tiny", "file": "gray-tiny.safetensors", "sha256": sha256(weights / "gray-tiny.safetensors"),
                       "default_for": [], "onnx": "gray-tiny.onnx", "onnx_sha256": ""}]}
    (weights / "manifest.json").write_text(json.dumps(man))
    monkeypatch.setenv("N3_WEIGHTS", str(weights))
    before = sha256(weights / "gray-tiny.safetensors")

    res = CliRunner().invoke(cli, ["train", "--queue", str(path), "--promote", "r0", "--dry-run", "--device", "cpu"])
    assert res.exit_code == 0, res.output
    assert "better; --dry-run" in res.output and sha256(weights / "gray-tiny.safetensors") == before

    res = CliRunner().invoke(cli, ["train", "--queue", str(path), "--promote", "r0", "--json", "--device", "cpu"])
    rep = json.loads(res.output)
    assert rep["replaced"] and rep["run_mean_psnr"] > rep["shipped_mean_psnr"]
    shipped = load_model(weights / "gray-tiny.safetensors")
    assert shipped.info.name == "gray-tiny"
    assert shipped.info.extra["metrics"]["val"]["psnr"] == round(rep["run_mean_psnr"], 2)
    assert all(torch.equal(v, trained.net.state_dict()[k]) for k, v in shipped.net.state_dict().items())
    entry = json.loads((weights / "manifest.json").read_text())["models"][0]
    assert entry["sha256"] == sha256(weights / "gray-tiny.safetensors")
    assert entry["onnx_sha256"] == sha256(weights / "gray-tiny.onnx")  # the ONNX copy made again
    card = (weights / "README.md").read_text()
    assert "<!-- measured:gray-tiny -->" in card and f"{rep['run_mean_psnr']:.2f} dB" in card
    assert (weights / "logs" / "gray-tiny.jsonl").read_text() == (q.out / "r0" / "log.jsonl").read_text()

    # now the shipped model is the run's own: not better, nothing replaced
    shutil.copyfile(weights / "manifest.json", tmp_path / "manifest.before")
    res = CliRunner().invoke(cli, ["train", "--queue", str(path), "--promote", "r0", "--device", "cpu"])
    assert res.exit_code == 0 and "not better: gray-tiny stays" in res.output
    assert (weights / "manifest.json").read_text() == (tmp_path / "manifest.before").read_text()

    # a one-session fine-tune of the shipped file: its log joins the earlier ones, and the card says so
    import time

    from n3cli.api.queue import _install
    from n3cli.store import zoo

    ft = q.out / "r0-ft"
    ft.mkdir()
    m = load_model(weights / "gray-tiny.safetensors")
    m.info.extra["training"] = {**m.info.extra.get("training", {}), "init": {"file": "gray-tiny.safetensors"}}
    save_model(ft / "model.safetensors", m.net, m.info)
    (ft / "log.jsonl").write_text('{"step": 1, "loss": 0.5}\n')
    first_log = (weights / "logs" / "gray-tiny.jsonl").read_text()
    rows = [{"key": "val", "data": "val", "run": {"sigma": 25.0, "psnr": 30.0}, "shipped": {"sigma": 25.0, "psnr": 29.0}}]
    _install(ft / "model.safetensors", zoo.find("gray-tiny"), rows, ft / "log.jsonl")
    assert (weights / "logs" / "gray-tiny.jsonl").read_text() == first_log
    assert (weights / "logs" / f"gray-tiny.r0-ft-{time.strftime('%Y-%m-%d')}.jsonl").read_text() == '{"step": 1, "loss": 0.5}\n'
    assert "fine-tuned from gray-tiny.safetensors" in (weights / "README.md").read_text()


def test_the_queue_options_are_checked(tmp_path):
    path = make_queue(tmp_path)
    run = CliRunner().invoke
    assert run(cli, ["train", "--queue", str(path)]).exit_code == 2
    assert run(cli, ["train", "--queue", str(path), "--status", "--budget", "1m"]).exit_code == 2
    assert run(cli, ["train", "--config", str(tmp_path / "r0.yaml"), "--budget", "1m"]).exit_code == 2
    res = run(cli, ["train", "--queue", str(path), "--promote", "r0"])
    assert res.exit_code != 0 and "has not finished" in res.output
    res = run(cli, ["train", "--queue", str(path), "--status"])
    assert res.exit_code == 0 and "0/6 steps" in res.output
    assert run_progress(tmp_path / "nowhere") == 0


def test_the_device_travel_commit_leaves_out_the_weights_and_touches_nothing_here(tmp_path):
    """tools/queue_carry.py: the device call sees HEAD without weights/ (they would fill its 64 MiB)."""
    import importlib.util
    import subprocess
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("queue_carry", Path(__file__).parents[2] / "tools" / "queue_carry.py")
    qc = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(qc)

    def git(*args):
        return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=tmp_path,
                              check=True, capture_output=True, text=True).stdout

    git("init", "-q")
    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / "big.safetensors").write_bytes(b"\0" * 5000)
    (tmp_path / "n3cli").mkdir()
    (tmp_path / "n3cli" / "x.py").write_text("x = 1\n")
    git("add", "-A")
    git("commit", "-q", "-m", "c")
    head, index = git("rev-parse", "HEAD"), git("ls-files", "-s")
    (tmp_path / "n3cli" / "new.py").write_text("y = 2\n")  # untracked: travels beside the commit

    commit = qc.travel_commit(tmp_path)
    assert git("ls-tree", "-r", "--name-only", commit).split() == ["n3cli/x.py"]
    assert git("rev-parse", f"{commit}^") == head
    assert qc.commit_bytes(tmp_path, commit) == 6 and qc.untracked_bytes(tmp_path) == 6
    assert git("rev-parse", "HEAD") == head and git("ls-files", "-s") == index
    assert (tmp_path / "weights" / "big.safetensors").stat().st_size == 5000


def test_a_flat_guard_is_checked_and_holds_back_a_run_that_leaves_more_noise_in_real_photos(tmp_path, monkeypatch):
    """A run better on PSNR but leaving more noise in real photos' flat windows than the shipped
    model (by more than max_rise) replaces nothing: the stage-5 trial of n3net-color-real did that."""
    path = make_queue(tmp_path, steps=(6,))
    raw = yaml.safe_load(path.read_text())
    flat = {"key": "photos", "task": "flat", "data": str(tmp_path / "val"), "crop": "64x64", "max_rise": 0.02}
    for change, msg in ((lambda ev: ev.update(crop="64"), "crop '64'"),
                        (lambda ev: ev.update(max_rise=-1), "max_rise must be"),
                        (lambda ev: ev.update(quality=90), "unknown key 'quality'"),
                        (lambda ev: ev.update(jpeg_quality=101), "jpeg_quality must be")):
        bad = json.loads(json.dumps(raw))
        ev = dict(flat)
        change(ev)
        bad["runs"][0]["evaluate"].append(ev)
        (tmp_path / "bad.yaml").write_text(yaml.safe_dump(bad))
        with pytest.raises(ConfigError, match=msg):
            load_queue(tmp_path / "bad.yaml")
    only_flat = json.loads(json.dumps(raw))
    only_flat["runs"][0]["evaluate"] = [flat]
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(only_flat))
    with pytest.raises(ConfigError, match="flat only guards"):
        load_queue(tmp_path / "bad.yaml")

    raw["runs"][0]["evaluate"].append(flat)
    path.write_text(yaml.safe_dump(raw))
    q = load_queue(path)
    run_queue(q, 600, device="cpu", progress=False)
    weights = tmp_path / "weights"
    weights.mkdir()
    shutil.copyfile(q.out / "r0" / "model.safetensors", weights / "gray-tiny.safetensors")
    man = {"models": [{"name": "gray-tiny", "file": "gray-tiny.safetensors",
                       "sha256": sha256(weights / "gray-tiny.safetensors"), "default_for": []}]}
    (weights / "manifest.json").write_text(json.dumps(man))
    monkeypatch.setenv("N3_WEIGHTS", str(weights))

    import n3cli.api.queue as aq

    left = {}  # noise left per model file: the run's file is the queue's, the shipped one is in weights/

    def score(ev, model, device):
        run = "weights" not in str(model)
        if ev["task"] == "flat":
            return {"photos": 2, "crop": ev["crop"], "noise_left": left["run" if run else "shipped"]}
        return {"sigma": 25.0, "psnr": 30.0 if run else 29.5, "ssim": 0.8}

    monkeypatch.setattr(aq, "_score", score)
    for run_left, held in ((0.40, True), (0.30, False), (0.25, False)):
        left.update(run=run_left, shipped=0.29)
        res = CliRunner().invoke(cli, ["train", "--queue", str(path), "--promote", "r0", "--dry-run", "--json"])
        rep = json.loads(res.output)
        assert rep["held_back_by"] == (["photos"] if held else []) and rep["better"] is not held
    res = CliRunner().invoke(cli, ["train", "--queue", str(path), "--promote", "r0", "--dry-run"])
    assert res.exit_code == 0 and "photos: run noise left 0.250" in res.output and "better; --dry-run" in res.output
    left.update(run=0.40)
    res = CliRunner().invoke(cli, ["train", "--queue", str(path), "--promote", "r0"])
    assert res.exit_code == 0, res.output
    assert "held back: noise left in real photos rose (photos 0.290 -> 0.400); gray-tiny stays" in res.output
    assert json.loads((weights / "manifest.json").read_text()) == man
