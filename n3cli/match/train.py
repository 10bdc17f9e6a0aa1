"""Training the match networks (`n3 train` with ``model.task: match``) on synthetic pairs.

Loss (CNNet): class-balanced binary cross-entropy on the inlier labels, plus
``essential_weight`` x the essential-matrix loss of the weighted 8-point solution once
``essential_after`` steps are done. Pairs are generated on the fly, pair i of the run being a
pure function of (seed, i), so runs are reproducible.
"""
from __future__ import annotations

import copy
import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..checkpoint import ModelInfo, save_model
from ..errors import ConfigError
from ..models.registry import build_model
from .geometry import essential_loss, weighted_eight_point
from .synthetic import make_pair, pair_tensor

SCHEMA: dict[str, Any] = {
    "name": None,
    "seed": 0,
    "model": {"arch": "cnnet", "args": {}, "task": "match", "description": "", "license": ""},
    "data": {"matches": 512, "outliers": [0.5, 0.95], "noise_px": [0.0, 1.5], "batch": 16,
             "val_pairs": 100, "val_matches": 1000, "val_seed": 1234},
    "optim": {"lr": 1e-3, "steps": 3000, "essential_weight": 0.1, "essential_after": 1000},
    "log_every": 50,
    "val_every": 500,
}


def validate_match_config(raw: dict[str, Any], where: str) -> dict[str, Any]:
    """Defaults filled in and every key checked (one-line ConfigError naming the key)."""
    from ..train.config import _merge  # the same merge rules as image configs

    cfg = _merge(SCHEMA, raw, (), where)
    if not cfg["name"]:
        raise ConfigError(f"{where}: missing required key 'name'")
    if cfg["model"]["arch"] != "cnnet":
        raise ConfigError(f"{where}: model.arch must be cnnet for task match")
    for key in ("matches", "batch", "val_pairs", "val_matches"):
        v = cfg["data"][key]
        if not isinstance(v, int) or v < 1:
            raise ConfigError(f"{where}: data.{key} must be a positive integer, got {v!r}")
    lo, hi = cfg["data"]["outliers"]
    if not 0 <= lo <= hi < 1:
        raise ConfigError(f"{where}: data.outliers must be [low, high] within [0, 1)")
    return copy.deepcopy(cfg)


def batch_of(seed: int, start: int, batch: int, data: dict[str, Any]):
    pairs = [make_pair(np.random.default_rng([seed, start + j]), data["matches"], tuple(data["outliers"]),
                       tuple(data["noise_px"])) for j in range(batch)]
    x = torch.from_numpy(np.stack([pair_tensor(p) for p in pairs]))
    y = torch.from_numpy(np.stack([p.labels for p in pairs]).astype(np.float32))
    e = torch.from_numpy(np.stack([p.E.reshape(-1) for p in pairs]).astype(np.float32))
    return x, y, e


def balanced_bce(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean BCE over inliers and over outliers, averaged (CNNet's class balancing)."""
    pos, neg = labels, 1 - labels
    loss = F.binary_cross_entropy_with_logits(logits, labels, reduction="none")
    lp = (loss * pos).sum(1) / pos.sum(1).clamp(min=1)
    ln = (loss * neg).sum(1) / neg.sum(1).clamp(min=1)
    return (0.5 * (lp + ln)).mean()


def train_match(cfg: dict[str, Any], out_dir: str | Path, device: str = "cpu", max_steps: int | None = None,
                progress: bool = True) -> Path:
    """Train into ``out_dir`` (``log.jsonl``, ``model.safetensors``); returns the model file."""
    from .evaluate import evaluate_pairs, synthetic_set

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(cfg, indent=2))
    dev = torch.device("cuda" if device in ("auto", "cuda") and torch.cuda.is_available() else "cpu")
    torch.manual_seed(cfg["seed"])
    net = build_model("cnnet", cfg["model"]["args"]).to(dev)
    opt = torch.optim.Adam(net.parameters(), lr=cfg["optim"]["lr"])
    d, o = cfg["data"], cfg["optim"]
    steps = min(o["steps"], max_steps or o["steps"])
    val = synthetic_set(d["val_pairs"], d["val_matches"], d["val_seed"], tuple(d["outliers"]), tuple(d["noise_px"]))
    info = ModelInfo(name=cfg["name"], arch="cnnet", args=dict(cfg["model"]["args"]), task="match", color="gray",
                     extra={k: cfg["model"][k] for k in ("description", "license") if cfg["model"][k]})
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=steps, desc=cfg["name"], unit="step", dynamic_ncols=True)
    log = (out / "log.jsonl").open("a")
    t0, running, best = time.time(), [], -math.inf
    net.train()
    for step in range(1, steps + 1):
        x, y, e_gt = (t.to(dev) for t in batch_of(cfg["seed"], (step - 1) * d["batch"], d["batch"], d))
        logits = net(x)
        loss = balanced_bce(logits, y)
        with_e = o["essential_weight"] > 0 and step > o["essential_after"]
        if with_e:
            w = torch.relu(torch.tanh(logits))
            loss = loss + o["essential_weight"] * essential_loss(weighted_eight_point(x, w), e_gt)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if with_e and not all(torch.isfinite(p.grad).all() for p in net.parameters() if p.grad is not None):
            # eigh's gradient blows up when the two smallest eigenvalues meet: keep this step's
            # classification loss only (CNNet's own code guards the same way)
            opt.zero_grad(set_to_none=True)
            loss = balanced_bce(net(x), y)
            loss.backward()
        opt.step()
        running.append(float(loss.detach()))
        if step % cfg["log_every"] == 0 or step == steps:
            rec = {"step": step, "loss": float(np.mean(running)), "steps_per_s": step / (time.time() - t0)}
            running = []
            log.write(json.dumps(rec) + "\n")
            log.flush()
        if step % cfg["val_every"] == 0 or step == steps:
            net.eval()
            res = evaluate_pairs(val, {"net": net})["net"]
            net.train()
            log.write(json.dumps({"step": step, "val_map": res}) + "\n")
            log.flush()
            if res["10"] > best:
                best = res["10"]
                save_model(out / "best.safetensors", net, info)
            if bar is not None:
                bar.set_postfix({"mAP10": f"{res['10']:.3f}"}, refresh=False)
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    log.close()
    extra = dict(info.extra)
    extra["training"] = {"config": cfg["name"], "steps": steps, "batch": d["batch"], "matches": d["matches"],
                         "data": "synthetic pairs", "seed": cfg["seed"]}
    final = out / "model.safetensors"
    save_model(final, net, ModelInfo(info.name, info.arch, info.args, "match", "gray", {}, 1, 1, extra))
    return final
