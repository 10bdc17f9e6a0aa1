"""`n3 train` (config validation, learning, exact resume, DDP) and `n3 eval`'s protocol."""
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from click.testing import CliRunner
from PIL import Image as PILImage
from shared_paths import REPO

from n3cli import api
from n3cli.cli.main import cli
from n3cli.errors import ConfigError
from n3cli.models.registry import build_model
from n3cli.store.checkpoint import ModelInfo, load_model, save_model
from n3cli.train.config import validate
from n3cli.train.loop import train
from n3cli.train.tasks import task_for

TINY = {"in_channels": 1, "out_channels": 1, "features": 8, "depth": 3, "k": 2, "embed_features": 8}


def make_images(folder, n=4, size=96, seed=0):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    for i in range(n):
        f = rng.uniform(2, 8, 3)
        img = 0.5 + 0.25 * np.sin(f[0] * xx + f[1] * yy) + 0.2 * np.cos(f[2] * xx * yy * 4)
        PILImage.fromarray(np.clip(img * 255, 0, 255).astype(np.uint8)).save(folder / f"img{i}.png")
    return folder


def noise_rgb_folder(folder, n, h, w):
    """``n`` uniform-noise RGB PNGs (seed 0): stand-ins for sRGB photos to unprocess."""
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        PILImage.fromarray((rng.random((h, w, 3)) * 255).astype(np.uint8)).save(folder / f"c{i}.png")
    return folder


def tiny_config(tmp_path, **over):
    cfg = {"name": "tiny", "seed": 3,
           "model": {"arch": "n3net", "args": TINY},
           "data": {"train": str(make_images(tmp_path / "train")), "val": str(make_images(tmp_path / "val", 2, seed=1)),
                    "patch": 80, "batch": 4, "workers": 0},
           "noise": {"kind": "fixed", "sigma": 25},
           "optim": {"epochs": 2, "steps_per_epoch": 3},
           "log_every": 1, "val_every": 1000, "checkpoint_every": 1000}
    for k, v in over.items():
        cfg[k].update(v) if isinstance(v, dict) else cfg.__setitem__(k, v)
    return validate(cfg)


@pytest.mark.parametrize("patch,msg", [
    ({"model": {"arch": "n3net", "argz": {}}}, "unknown key 'model.argz'"),
    ({"noise": {"kind": "pink"}}, "noise.kind must be one of"),
    ({"data": {"train": "x", "batch": -2}}, "data.batch must be a positive number"),
    ({"optim": {"lr": "fast"}}, "optim.lr must be a positive number"),
    ({"model": {"arch": "resnet"}}, "model.arch 'resnet' is not one of"),
    ({"model": {"arch": "n3net", "task": "raw", "color": "bayer"}, "noise": {"a_log_range": [-1, -5]}},
     "noise.a_log_range must be"),
    ({"noise": {"b_over_a_log_range": [0, 1]}}, "noise.b_over_a_log_range is for task raw"),
    ({"noise": {"correlated_fraction": 0.5}}, "noise.correlated_fraction is for task raw"),
    ({"model": {"arch": "n3net", "task": "raw", "color": "bayer"}, "noise": {"max_correlation": 0.8}},
     "noise.max_correlation must be between 0 and 0.5, got 0.8"),
])
def test_config_errors_name_the_key(patch, msg):
    raw = {"name": "x", "model": {"arch": "n3net"}, "data": {"train": "x"}}
    for k, v in patch.items():
        raw[k] = {**raw.get(k, {}), **v}
    with pytest.raises(ConfigError, match=msg.replace("(", r"\(").replace("'", "'")):
        validate(raw)
    with pytest.raises(ConfigError, match="missing required key 'name'"):
        validate({"model": {"arch": "n3net"}, "data": {"train": "x"}})


def test_cli_reports_config_errors_in_one_line(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("name: x\nmodel: {arch: n3net}\ndata: {train: x}\nspeed: 11\n")
    res = CliRunner().invoke(cli, ["train", "--config", str(p)])
    assert res.exit_code == 2 and "unknown key 'speed'" in res.stderr and "Traceback" not in res.output


@pytest.mark.parametrize("text,msg", [
    ("name: /tmp/elsewhere\nmodel: {arch: n3net}\ndata: {train: x}\n", "name must be a plain name"),
    ("name: ../../escape\nmodel: {arch: n3net}\ndata: {train: x}\n", "name must be a plain name"),
    ("name: 12345\nmodel: {arch: n3net}\ndata: {train: x}\n", "name must be a plain name"),
    ("name: x\nmodel: {arch: n3net}\ndata: {train: x}\noptim: {lr: .inf}\n", "optim.lr is inf"),
    ("name: x\nmodel: {arch: n3net}\ndata: {train: x}\nnoise: {sigma: .nan}\n", "noise.sigma is nan"),
    ("a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
     "name: x\nmodel: {arch: n3net, description: [*b, *b, *b, *b, *b, *b, *b, *b]}\n", "aliases"),
])
def test_configs_that_escape_runs_or_poison_training_are_refused_in_one_line(tmp_path, text, msg):
    """A name is a folder under runs/, never a path; lr .inf or sigma .nan trained NaN weights;
    nested YAML aliases expanded a 700-byte file to gigabytes."""
    p = tmp_path / "c.yaml"
    p.write_text(text)
    res = CliRunner().invoke(cli, ["train", "--config", str(p), "--out", str(tmp_path / "run")])
    assert res.exit_code == 2 and msg in res.stderr and "Traceback" not in res.output, res.output
    assert not (tmp_path / "run").exists()
    p.write_bytes(b"name: \xff\xfe\n")
    res = CliRunner().invoke(cli, ["train", "--config", str(p)])
    assert res.exit_code == 2 and "not UTF-8" in res.stderr


def test_a_run_folder_holding_a_run_needs_resume_or_overwrite(tmp_path):
    import yaml

    cfg = tiny_config(tmp_path, optim={"epochs": 1, "steps_per_epoch": 2})
    p = tmp_path / "c.yaml"
    p.write_text(yaml.safe_dump(cfg))
    out = tmp_path / "run"
    args = ["train", "--config", str(p), "--out", str(out), "--device", "cpu"]
    assert CliRunner().invoke(cli, args).exit_code == 0
    log = (out / "log.jsonl").read_text()
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 2 and "--resume" in res.stderr and (out / "log.jsonl").read_text() == log
    (out / "mine.txt").write_text("not n3's")
    res = CliRunner().invoke(cli, args + ["--overwrite"])
    assert res.exit_code == 0 and (out / "log.jsonl").read_text().count('"step"') == log.count('"step"')
    assert (out / "mine.txt").read_text() == "not n3's"


def test_shipped_configs_validate():

    from n3cli.train.queue import load_queue

    root = REPO / "configs"
    files = sorted(f for f in root.rglob("*.yaml") if f.name != "queue.yaml")
    assert len(files) >= 5
    for f in files:
        cfg = api.load_training_config(f)
        build_model(cfg["model"]["arch"], cfg["model"]["args"])
    queue = load_queue(root / "queue.yaml")  # every run's config, steps and evaluations check out
    assert {r.replaces for r in queue.runs} >= {"n3net-gray-s25", "n3net-color", "n3net-sr", "n3net-raw"}
    fine_tunes = [r for r in queue.runs if r.config["init"]]
    assert [r.replaces for r in fine_tunes[:2]] == ["n3net-color-real", "n3net-raw"]  # the open issues' models first
    for r in fine_tunes:  # a one-session fine-tune continues the very file it would replace
        assert Path(r.config["init"]).resolve() == (REPO / "weights" / f"{r.replaces}.safetensors").resolve()
        assert r is queue.runs[fine_tunes.index(r)]
    with pytest.raises(ConfigError, match="training queue"):
        api.load_training_config(root / "queue.yaml")


@pytest.mark.slow
def test_a_few_steps_lower_the_loss(tmp_path):
    cfg = tiny_config(tmp_path, optim={"epochs": 1, "steps_per_epoch": 40, "lr": 3e-3})
    torch.manual_seed(cfg["seed"])
    from n3cli.train.data import load_images

    net0 = build_model("n3net", TINY)
    task = task_for(cfg)
    val = load_images(cfg["data"]["val"], "gray")
    before = task.validate(net0, task.model_info(), val)["val_psnr"]
    final = train(cfg, tmp_path / "run", progress=False)
    after = task.validate(load_model(final).net, task.model_info(), val)["val_psnr"]
    logged = [json.loads(l) for l in open(tmp_path / "run" / "log.jsonl") if '"val_psnr"' in l][-1]
    assert logged["val_psnr"] == pytest.approx(after, abs=1e-6)  # validation is the protocol `n3 eval` runs
    losses = [json.loads(l)["loss"] for l in open(tmp_path / "run" / "log.jsonl") if '"loss"' in l]
    assert np.mean(losses[-5:]) < np.mean(losses[:5])
    assert after > before + 1.0


@pytest.mark.slow
def test_resume_gives_the_same_weights_as_an_uninterrupted_run(tmp_path):
    cfg = tiny_config(tmp_path, checkpoint_every=1)
    full = load_model(train(cfg, tmp_path / "a", progress=False))
    train(cfg, tmp_path / "b", max_steps=4, progress=False)
    resumed = load_model(train(cfg, tmp_path / "b", resume=True, progress=False))
    sa, sb = full.net.state_dict(), resumed.net.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert resumed.info.extra["training"]["steps"] == 6


@pytest.mark.slow
def test_ddp_with_two_gloo_processes_keeps_ranks_identical(tmp_path):
    cfg = tiny_config(tmp_path)
    cfg["optim"]["epochs"] = 1
    p = tmp_path / "ddp.yaml"
    p.write_text(yaml.safe_dump(cfg))
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517",
           "-m", "n3cli", "train", "--config", str(p), "--out", str(tmp_path / "ddp"), "--device", "cpu"]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    recs = [json.loads(l) for l in open(tmp_path / "ddp" / "log.jsonl")]
    check = [x for x in recs if "rank_checksums" in x][-1]
    assert len(check["rank_checksums"]) == 2 and len(set(check["rank_checksums"])) == 1
    assert (tmp_path / "ddp" / "model.safetensors").exists()


def test_eval_matches_psnr_computed_here(tmp_path):
    data = make_images(tmp_path / "set", 3, size=90, seed=5)
    torch.manual_seed(0)
    net = build_model("n3net", TINY).eval()
    save_model(tmp_path / "m.safetensors", net, ModelInfo("tiny", "n3net", TINY, noise={"kind": "fixed", "sigma": 25}))
    res = CliRunner().invoke(cli, ["eval", "denoise", "--model", str(tmp_path / "m.safetensors"), "--data", str(data),
                                   "--sigma", "25", "--sigma", "50", "--json"])
    assert res.exit_code == 0, res.output
    rep = json.loads(res.stdout)
    assert rep["model"] == "tiny" and rep["task"] == "denoise" and len(rep["results"]) == 2
    for r in rep["results"]:
        mine = []
        for i, f in enumerate(sorted(data.iterdir())):
            clean = np.asarray(PILImage.open(f), dtype=np.float32)[:, :, None] / 255
            rng = np.random.default_rng([0, i, 0x5EED])  # the documented noise stream of image i
            noisy = clean + rng.standard_normal(clean.shape, dtype=np.float32) * np.float32(r["sigma"] / 255)
            # a sigma-25 model on sigma 50: the image at half contrast about its mean, and back (docs/usage.md)
            gain, mid = np.float32(25 / r["sigma"]), np.float32(noisy.mean())
            with torch.no_grad():
                out = net(torch.from_numpy((noisy - mid) * gain + mid).permute(2, 0, 1)[None])[0].numpy()
            out = (out.transpose(1, 2, 0) - mid) / gain + mid
            mine.append(10 * math.log10(1 / np.mean((out.astype(np.float64) - clean) ** 2)))
        got = [x["psnr"] for x in r["per_image"]]
        assert np.allclose(got, mine, atol=1e-3)
        assert abs(r["mean_psnr"] - np.mean(mine)) < 1e-3
        assert set(r) >= {"data", "sigma", "mean_psnr", "mean_ssim", "per_image"}


@pytest.mark.slow
def test_sr_training_learns_and_the_result_upscales(tmp_path):
    """A few steps of the SR recipe beat bicubic on the training scenes' validation twins; the
    result is an SR model file that `n3 upscale` loads for every trained scale."""
    from n3cli import api

    def shapes(folder, n, seed):  # sharp-edged rectangles: what bicubic blurs and a CNN can restore
        folder.mkdir(parents=True)
        rng = np.random.default_rng(seed)
        for i in range(n):
            img = np.full((96, 96), 0.5)
            for _ in range(12):
                y, x = rng.integers(0, 80, 2)
                h, w = rng.integers(6, 40, 2)
                img[y : y + h, x : x + w] = rng.uniform(0.1, 0.9)
            PILImage.fromarray(np.rint(img * 255).astype(np.uint8)).save(folder / f"s{i}.png")
        return str(folder)

    cfg = tiny_config(tmp_path, model={"arch": "dncnn", "args": {"in_channels": 1, "out_channels": 1, "features": 16,
                                                                  "depth": 5}, "task": "sr"},
                      data={"patch": 48, "scales": [2, 3], "batch": 8, "train": shapes(tmp_path / "s", 8, 0),
                            "val": shapes(tmp_path / "v", 3, 1)},
                      optim={"epochs": 4, "steps_per_epoch": 50, "lr": 2e-3}, val_every=200)
    cfg = validate(cfg)
    final = train(cfg, tmp_path / "run", device="cpu", progress=False)
    m = load_model(final)
    assert m.info.task == "sr" and m.info.extra["scales"] == [2, 3]
    from n3cli.train.data import load_images

    val = load_images(cfg["data"]["val"], None)
    identity = build_model("dncnn", {"in_channels": 1, "out_channels": 1, "features": 16, "depth": 5})
    with torch.no_grad():
        identity.blocks[0].conv2.weight.zero_()
        identity.blocks[0].conv2.bias.zero_()  # residual net with a zero last layer: exactly bicubic
    task = task_for(dict(cfg, data=dict(cfg["data"], val_scale=2)))
    bicubic = task.validate(identity, m.info, val)["val_psnr"]
    learned = task.validate(m.net, m.info, val)["val_psnr"]
    report = api.evaluate_upscale(final, cfg["data"]["val"], [2], device="cpu")
    assert report["results"][0]["mean_psnr"] == pytest.approx(learned, abs=1e-9)  # the protocol `n3 eval sr` runs
    print(f"Y-PSNR x2: bicubic {bicubic:.2f} dB, after 200 steps {learned:.2f} dB")
    assert learned > bicubic + 0.2, (learned, bicubic)
    up = api.upscale(api.load_upscaler(final, 3, "cpu"), np.full((20, 25, 1), 0.5, np.float32), 3)
    assert up.shape == (60, 75, 1)


def test_raw_samples_follow_the_noise_model_and_a_raw_run_trains(tmp_path):
    from n3cli.train.data import load_images

    folder = noise_rgb_folder(tmp_path / "rgb", 3, 70, 90)
    raw_model = {"arch": "dncnn", "args": {"in_channels": 6, "out_channels": 4, "features": 8, "depth": 3},
                 "task": "raw", "color": "bayer"}
    task = task_for(validate(tiny_config(tmp_path, model=raw_model, data={"train": str(folder), "patch": 40,
                                                                          "batch": 50})))
    task.prepare([px for _, px in load_images(str(folder), "rgb")], torch.device("cpu"))
    inp, clean = task.batch(5)
    assert inp.shape == (50, 6, 20, 20) and clean.shape == (50, 4, 20, 20)
    a_map, b_map = inp[:, 4, 0, 0], inp[:, 5, 0, 0]  # the maps hold sqrt(a) and sqrt(b), constant per sample
    assert torch.all(inp[:, 4] == a_map.view(-1, 1, 1)) and torch.all(inp[:, 5] == b_map.view(-1, 1, 1))
    from n3cli.imaging.raw_noise import A_LOG_RANGE, B_OVER_A_LOG_RANGE

    a, b = a_map.double() ** 2, b_map.double() ** 2
    assert 10 ** A_LOG_RANGE[0] * 0.999 <= float(a.min()) and float(a.max()) <= 10 ** A_LOG_RANGE[1] * 1.001
    ratio = torch.log10(b / a)
    assert B_OVER_A_LOG_RANGE[0] - 1e-3 <= float(ratio.min()) and float(ratio.max()) <= B_OVER_A_LOG_RANGE[1] + 1e-3
    assert 0 <= clean.min() and clean.max() <= 1
    assert torch.equal(task.batch(5)[0], inp)  # a pure function of (seed, step)
    assert not torch.equal(task.batch(6)[0], inp)
    # the residual's variance follows var = a*x + b (checked over many samples)
    zs = []
    for step in range(4):
        x, c = task.batch(step)
        var = x[:, 4:5] ** 2 * c + x[:, 5:6] ** 2
        zs.append(((x[:, :4] - c) / var.sqrt()).flatten())
    assert abs(float(torch.cat(zs).std()) - 1) < 0.02
    # a config's own range (noise.a_log_range, noise.b_over_a_log_range) replaces the default one
    narrow = task_for(validate(tiny_config(tmp_path, model=raw_model, data={"train": str(folder), "patch": 40,
                                                                            "batch": 50},
                                           noise={"a_log_range": [-6.0, -5.5], "b_over_a_log_range": [1.0, 1.6]})))
    narrow.prepare([px for _, px in load_images(str(folder), "rgb")], torch.device("cpu"))
    x = narrow.batch(5)[0]
    la, lr = torch.log10(x[:, 4, 0, 0].double() ** 2), torch.log10(x[:, 5, 0, 0].double() ** 2 / x[:, 4, 0, 0].double() ** 2)
    assert -6.001 <= float(la.min()) and float(la.max()) <= -5.499, la
    assert 0.999 <= float(lr.min()) and float(lr.max()) <= 1.601, lr
    assert narrow.model_info().noise["a_log_range"] == [-6.0, -5.5]  # the model file records what it saw
    assert "correlated_fraction" not in narrow.model_info().noise
    # noise.correlated_fraction: that share of the crops gets noise correlated between neighbours,
    # and their maps say what the single-image fit reads of it (less than the variance)
    corr = task_for(validate(tiny_config(tmp_path, model=raw_model, data={"train": str(folder), "patch": 40,
                                                                          "batch": 50},
                                         noise={"correlated_fraction": 0.5, "max_correlation": 0.3})))
    corr.prepare([px for _, px in load_images(str(folder), "rgb")], torch.device("cpu"))
    assert corr.model_info().noise["correlated_fraction"] == 0.5
    rows, ratios = [], []
    for step in range(4):
        x, c = corr.batch(step)
        told = x[:, 4:5] ** 2 * c + x[:, 5:6] ** 2
        r = (x[:, :4] - c) / told.sqrt()
        rows.append((r[..., 1:] * r[..., :-1]).flatten(1).mean(1) / r.flatten(1).var(1))
        ratios.append(r.flatten(1).var(1))
    rows, ratios = torch.cat(rows), torch.cat(ratios)
    white = ratios < 1.08  # the crops told their whole variance
    assert 0.3 < float(white.float().mean()) < 0.7
    assert float(rows[white].abs().mean()) < 0.05 and float(rows[~white].mean()) > 0.08
    # at most 0.3 along rows and along columns: the fit reads at least 0.61 x 0.61 of the variance
    assert float(ratios.max()) < 1.1 / 0.61**2

    cfg = tiny_config(tmp_path, model={"arch": "dncnn", "args": {"in_channels": 6, "out_channels": 4, "features": 8,
                                                                  "depth": 3}, "task": "raw", "color": "bayer"},
                      data={"train": str(folder), "val": str(folder), "patch": 40, "batch": 4},
                      optim={"epochs": 1, "steps_per_epoch": 4}, val_every=4)
    final = train(validate(cfg), tmp_path / "run", device="cpu", progress=False)
    info = load_model(final).info
    assert info.task == "raw" and info.color == "bayer" and info.image_channels == 4
    assert "val_psnr" in info.extra["metrics"]


def test_fine_tuning_starts_from_its_init_model(tmp_path):
    folder = noise_rgb_folder(tmp_path / "rgb", 2, 60, 60)
    model = {"arch": "dncnn", "args": {"in_channels": 6, "out_channels": 4, "features": 8, "depth": 3},
             "task": "raw", "color": "bayer"}
    first = train(validate(tiny_config(tmp_path, model=model, data={"train": str(folder), "patch": 40, "batch": 2},
                                       optim={"epochs": 1, "steps_per_epoch": 2}, val_every=2)),
                  tmp_path / "one", device="cpu", progress=False)
    cfg = tiny_config(tmp_path, model=model, data={"train": str(folder), "patch": 40, "batch": 2},
                      optim={"epochs": 1, "steps_per_epoch": 2, "lr": 1e-12}, val_every=2)
    cfg["init"] = str(first)
    second = train(validate(cfg), tmp_path / "two", device="cpu", progress=False)
    a, b = load_model(first), load_model(second)
    for (k, v), w2 in zip(a.net.state_dict().items(), b.net.state_dict().values()):
        if v.is_floating_point() and "running" not in k:
            assert torch.allclose(v, w2, atol=1e-6), k  # lr 1e-12: still the init model's weights
    rec = b.info.extra["training"]
    assert rec["init"]["file"] == first.name
    assert rec["init"]["training"]["steps"] == 2
    # stopped and resumed, the finished model still says what it started from
    train(validate(cfg), tmp_path / "halves", device="cpu", progress=False, max_steps=1)
    resumed = load_model(train(validate(cfg), tmp_path / "halves", device="cpu", progress=False, resume=True))
    assert resumed.info.extra["training"]["init"]["training"]["steps"] == 2
    cfg["init"] = str(tmp_path / "missing.safetensors")
    with pytest.raises(Exception, match="missing.safetensors"):
        train(validate(cfg), tmp_path / "three", device="cpu", progress=False)



def test_optimizer_step_skips_nonfinite_batches_and_clips():
    from n3cli.train.loop import optimizer_step

    torch.manual_seed(0)
    net = torch.nn.Linear(4, 1)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    before = [p.detach().clone() for p in net.parameters()]
    x = torch.randn(8, 4)
    x[0, 0] = math.nan
    assert not optimizer_step(net, opt, net(x).pow(2).mean())  # a NaN batch: no update
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters()))

    # a huge finite loss: clipped to a gradient norm of 1e-3, so the step is exactly lr * 1e-3 long
    loss = (net(torch.randn(8, 4)) * 1e6).pow(2).mean()
    assert optimizer_step(net, opt, loss, clip=1e-3)
    moved = torch.cat([(a - b).flatten() for a, b in zip(net.parameters(), before)]).norm()
    assert moved.item() == pytest.approx(0.1 * 1e-3, rel=1e-3)


def test_eval_has_a_subcommand_per_task_and_the_old_spelling_still_works(tmp_path):
    """`n3 eval` had 17 options across four tasks; each task now has its own subcommand with its own
    options, and `--task X` keeps working for one release, with a deprecation line."""
    data = make_images(tmp_path / "imgs", 2)
    new = CliRunner().invoke(cli, ["eval", "denoise", "--data", str(data), "--sigma", "25", "--json"])
    old = CliRunner().invoke(cli, ["eval", "--data", str(data), "--sigma", "25", "--json"])
    assert new.exit_code == 0 and old.exit_code == 0, old.output
    assert json.loads(new.stdout)["results"] == json.loads(old.stdout)["results"]
    assert "deprecated" in old.stderr and "n3 eval denoise" in old.stderr and "deprecated" not in new.stderr
    helptext = CliRunner().invoke(cli, ["eval", "sr", "--help"]).output
    assert "--scale" in helptext and "--sigma" not in helptext and "--pairs" not in helptext
    res = CliRunner().invoke(cli, ["eval", "--task", "colour", "--data", str(data)])
    assert res.exit_code == 2 and "denoise, sr, raw, real, flat, match" in res.stderr


@pytest.mark.slow
@pytest.mark.skipif(not (shutil.which("g++") or shutil.which("c++")), reason="torch.compile on CPUs needs a C++ compiler")
def test_a_compiled_training_step_learns_what_the_eager_one_learns(tmp_path):
    """`compile: true` runs the same step through torch.compile: the same losses up to float
    rounding (its kernels sum in another order)."""
    losses = {}
    for comp in (False, True):
        cfg = tiny_config(tmp_path / str(comp), compile=comp, optim={"epochs": 1, "steps_per_epoch": 3})
        train(cfg, tmp_path / f"run{comp}", device="cpu", progress=False)
        losses[comp] = [json.loads(l)["loss"] for l in open(tmp_path / f"run{comp}" / "log.jsonl") if '"loss"' in l]
    assert len(losses[True]) == 3 and np.allclose(losses[True], losses[False], rtol=1e-3)


def test_a_camera_noise_run_trains_on_estimated_sigma_maps_and_validates_on_synthetic_photos(tmp_path):
    model = {"arch": "dncnn", "args": {"in_channels": 4, "out_channels": 3, "features": 8, "depth": 3},
             "color": "rgb"}
    cfg = tiny_config(tmp_path, model=model, noise={"kind": "camera"}, data={"patch": 32, "batch": 2},
                      optim={"epochs": 1, "steps_per_epoch": 2}, val_every=2)
    task = task_for(cfg)
    task.prepare([np.full((48, 48, 3), 0.5, np.float32)], torch.device("cpu"))
    inp, target = task.batch(0)
    assert inp.shape == (2, 4, 32, 32) and target.shape == (2, 3, 32, 32)
    from n3cli.imaging.estimate import estimate_sigma

    for i in range(2):  # the map is what the estimator reads on the noisy crop, as at inference
        want = estimate_sigma(inp[i, :3].permute(1, 2, 0).numpy(), method="all-patches") / 255
        assert torch.allclose(inp[i, 3], torch.full((32, 32), want), atol=1e-5)
    # gaussian_fraction 1: every crop gets white Gaussian noise over sigma_range, the crop its target
    mixed = task_for(tiny_config(tmp_path, model=model, noise={"kind": "camera", "gaussian_fraction": 1.0,
                                                              "sigma_range": [30, 30]}, data={"patch": 80, "batch": 2}))
    mixed.prepare([np.full((96, 96, 3), 0.5, np.float32)], torch.device("cpu"))
    inp, target = mixed.batch(0)
    assert torch.equal(target, torch.full_like(target, 0.5))
    assert abs(float((inp[:, :3] - target).std()) * 255 - 30) < 1.5
    assert torch.allclose(inp[:, 3], torch.full_like(inp[:, 3], 30 / 255), atol=1.5 / 255)  # the estimator reads it
    out = train(cfg, tmp_path / "run", device="cpu", progress=False)
    info = load_model(out).info
    assert info.noise["kind"] == "map" and info.noise["trained_on"] == "camera"
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [r["val_noise"] for r in log if "val_psnr" in r] == ["camera"]
    assert info.extra["metrics"]["val_psnr"]["noise"] == "camera"
    for bad, msg in (({"data": {"patch": 40}}, "multiple of 16"), ({"model": {"color": "gray"}}, "colour denoisers")):
        raw = {"name": "x", "model": {"arch": "dncnn", "color": "rgb"}, "data": {"train": "t", "patch": 32},
               "noise": {"kind": "camera"}}
        for k, v in bad.items():
            raw[k].update(v)
        with pytest.raises(ConfigError, match=msg):
            validate(raw)


def test_a_cpu_training_step_leaves_no_subnormal_weight():
    """Subnormal weights made CPU convolutions of a fine-tune 20x slower: a step flushes them."""
    from n3cli.train.step import TrainStep, make_optimizer

    torch.set_flush_denormal(False)  # an earlier training run in this process may have set it: 1e-40 would read 0
    net = build_model("dncnn", {"in_channels": 1, "out_channels": 1, "features": 8, "depth": 3})
    with torch.no_grad():
        w = next(p for p in net.parameters() if p.dim() == 4)
        w[0, 0, 0, 0] = 1e-40  # subnormal in float32
    tiny = torch.finfo(torch.float32).tiny
    assert int(((w.abs() < tiny) & (w != 0)).sum()) == 1
    opt = make_optimizer(net, {"lr": 0.0, "weight_decay": 0.0}, torch.device("cpu"))  # only the flush moves it
    step = TrainStep(net, opt, torch.device("cpu"))
    _, applied = step(torch.rand(2, 1, 16, 16), torch.rand(2, 1, 16, 16))
    assert applied
    assert all(int(((p.abs() < tiny) & (p != 0)).sum()) == 0 for p in net.parameters())


def test_a_raw_fine_tune_can_weigh_crops_by_their_noise_and_keep_batchnorm_statistics(tmp_path):
    from n3cli.train.batches import RAW_MIN_VAR, RAW_REF_VAR
    from n3cli.train.data import load_images
    from n3cli.train.step import TrainStep

    folder = noise_rgb_folder(tmp_path / "rgb", 2, 60, 60)
    model = {"arch": "dncnn", "args": {"in_channels": 6, "out_channels": 4, "features": 8, "depth": 3},
             "task": "raw", "color": "bayer"}
    cfg = tiny_config(tmp_path, model=model, data={"train": str(folder), "patch": 40, "batch": 16},
                      optim={"epochs": 1, "steps_per_epoch": 3, "loss": "noise_weighted", "freeze_bn": True})
    task = task_for(cfg)
    task.prepare([px for _, px in load_images(str(folder), "rgb")], torch.device("cpu"))
    inp, clean = task.batch(0)
    w = task.loss_weight(inp, clean)
    a, b = inp[:, 4, 0, 0].double() ** 2, inp[:, 5, 0, 0].double() ** 2
    var = (a * clean.double().mean((1, 2, 3)) + b).clamp_min(RAW_MIN_VAR)
    assert torch.allclose(w.double(), RAW_REF_VAR / var, rtol=1e-4)
    assert float(w.max() / w.min()) > 100  # the range spans decades of noise level
    # the step's loss is the weighted mean of the crops' MSEs
    torch.manual_seed(0)
    net = build_model("dncnn", model["args"])
    ref = net(inp).detach()
    opt = torch.optim.SGD(net.parameters(), lr=0.0)
    loss, applied = TrainStep(net, opt, torch.device("cpu"))(inp, clean, w)
    expect = ((ref - clean) ** 2).mean((1, 2, 3)) * w
    assert applied and abs(float(loss) - float(expect.mean())) < 1e-5 * float(expect.mean())
    assert task_for(validate({**cfg, "optim": {**cfg["optim"], "loss": "mse"}})).loss_weight(inp, clean) is None
    half = task_for(validate({**cfg, "optim": {**cfg["optim"], "loss": "sigma_weighted"}})).loss_weight(inp, clean)
    assert torch.allclose(half, w.sqrt(), rtol=1e-5)  # over sigma: half-way

    # freeze_bn: the init model's running statistics come out unchanged; without it they move
    first = train(validate(tiny_config(tmp_path, model=model, data={"train": str(folder), "patch": 40, "batch": 2},
                                       optim={"epochs": 1, "steps_per_epoch": 2}, val_every=2)),
                  tmp_path / "one", device="cpu", progress=False)
    stats = {}
    for freeze in (True, False):
        c = tiny_config(tmp_path, model=model, data={"train": str(folder), "patch": 40, "batch": 4},
                        optim={"epochs": 1, "steps_per_epoch": 3, "loss": "noise_weighted", "freeze_bn": freeze},
                        val_every=3)
        c["init"] = str(first)
        out = train(validate(c), tmp_path / f"ft{freeze}", device="cpu", progress=False)
        stats[freeze] = {k: v for k, v in load_model(out).net.state_dict().items() if "running" in k}
    init = {k: v for k, v in load_model(first).net.state_dict().items() if "running" in k}
    assert init and all(torch.equal(init[k], stats[True][k]) for k in init)
    assert any(not torch.equal(init[k], stats[False][k]) for k in init)
    with pytest.raises(ConfigError, match="noise_weighted is for task raw"):
        tiny_config(tmp_path, optim={"loss": "noise_weighted"})
