"""Training the match networks (`n3 train` with ``model.task: match``) on synthetic pairs.

Loss (CNNet): class-balanced binary cross-entropy on the inlier labels, plus
``essential_weight`` x the essential-matrix loss of the weighted 8-point solution once
``essential_after`` steps are done. Pairs are generated on the fly, pair i of the run being a
pure function of (seed, i), so runs are reproducible; ``data.pool`` > 0 limits training to that
many distinct pairs (the low-data budgets), pair i then being pair ``i mod pool``.

kNN (FACTS §9, ``knn`` section): with ``knn.reweight`` each match's BCE is multiplied by
``(1 - p_knn(true label)) ** gamma``, p_knn from a datastore of the embeddings of the previous
``refresh_every`` steps (``per_pair`` matches a pair), searched without the query's own pair.
With ``knn.store`` the finished model gets a datastore of ``store_per_pair`` matches of each of
``store_pairs`` training pairs, beside it, with k, T and lambda chosen on the validation pairs.
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

from ..errors import ConfigError
from ..models.registry import build_model
from ..store.checkpoint import ModelInfo, save_model
from .datastore import Datastore, normalise
from .geometry import essential_loss, weighted_eight_point
from .knn_vote import knn_weights
from .synthetic import make_pair, pair_tensor

SCHEMA: dict[str, Any] = {
    "name": None,
    "seed": 0,
    "model": {"arch": "cnnet", "args": {}, "task": "match", "description": "", "license": ""},
    "data": {"matches": 512, "outliers": [0.5, 0.95], "noise_px": [0.0, 1.5], "batch": 16,
             "val_pairs": 100, "val_matches": 1000, "val_seed": 1234, "pool": 0},
    "optim": {"lr": 1e-3, "lr_final": None, "steps": 3000, "essential_weight": 0.1, "essential_after": 1000},
    "init": None,
    "knn": {"reweight": False, "gamma": 2.0, "k": 16, "temperature": 0.05, "refresh_every": 50, "per_pair": 8,
            "store": False, "store_pairs": 1000, "store_per_pair": 32},
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
    if not isinstance(cfg["data"]["pool"], int) or cfg["data"]["pool"] < 0:
        raise ConfigError(f"{where}: data.pool must be a non-negative integer (0: a new pair every time)")
    for key in ("k", "refresh_every", "per_pair", "store_pairs", "store_per_pair"):
        v = cfg["knn"][key]
        if not isinstance(v, int) or v < 1:
            raise ConfigError(f"{where}: knn.{key} must be a positive integer, got {v!r}")
    if not isinstance(cfg["knn"]["gamma"], (int, float)) or cfg["knn"]["gamma"] < 0:
        raise ConfigError(f"{where}: knn.gamma must be a number >= 0")
    if not isinstance(cfg["knn"]["temperature"], (int, float)) or cfg["knn"]["temperature"] <= 0:
        raise ConfigError(f"{where}: knn.temperature must be a positive number")
    lf = cfg["optim"]["lr_final"]
    if lf is not None and (not isinstance(lf, (int, float)) or lf <= 0):
        raise ConfigError(f"{where}: optim.lr_final must be a positive number (or absent: constant lr)")
    if cfg["init"] is not None and not isinstance(cfg["init"], str):
        raise ConfigError(f"{where}: init must be a model file path")
    lo, hi = cfg["data"]["outliers"]
    if not 0 <= lo <= hi < 1:
        raise ConfigError(f"{where}: data.outliers must be [low, high] within [0, 1)")
    return copy.deepcopy(cfg)


def pair_ids(start: int, batch: int, pool: int) -> np.ndarray:
    """The training pair ids of samples ``start..start+batch-1`` (``mod pool`` when pool > 0)."""
    ids = np.arange(start, start + batch)
    return ids % pool if pool else ids


def training_pair(seed: int, pid: int, data: dict[str, Any]):
    return make_pair(np.random.default_rng([seed, int(pid)]), data["matches"], tuple(data["outliers"]),
                     tuple(data["noise_px"]))


def batch_of(seed: int, start: int, batch: int, data: dict[str, Any]):
    """(inputs, labels, essential matrices, pair ids) of one training batch."""
    ids = pair_ids(start, batch, data.get("pool", 0))
    pairs = [training_pair(seed, i, data) for i in ids]
    x = torch.from_numpy(np.stack([pair_tensor(p) for p in pairs]))
    y = torch.from_numpy(np.stack([p.labels for p in pairs]).astype(np.float32))
    e = torch.from_numpy(np.stack([p.E.reshape(-1) for p in pairs]).astype(np.float32))
    return x, y, e, ids


def balanced_bce(logits: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """Mean BCE over inliers and over outliers, averaged (CNNet's class balancing); ``weights``
    scale each match's term (kNN reweighting)."""
    pos, neg = labels, 1 - labels
    loss = F.binary_cross_entropy_with_logits(logits, labels, reduction="none")
    if weights is not None:
        loss = loss * weights
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
    init_training = _load_init(net, cfg) if cfg["init"] else None
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
    kc = cfg["knn"]
    store, window = None, []  # the kNN reweighting's datastore and the embeddings for the next one
    net.train()
    for step in range(1, steps + 1):
        if o["lr_final"] is not None:  # geometric decay over the config's full length
            for g in opt.param_groups:
                g["lr"] = o["lr"] * (o["lr_final"] / o["lr"]) ** ((step - 1) / max(1, o["steps"] - 1))
        x, y, e_gt, ids = batch_of(cfg["seed"], (step - 1) * d["batch"], d["batch"], d)
        x, y, e_gt = x.to(dev), y.to(dev), e_gt.to(dev)
        w = None
        if kc["reweight"]:
            logits, feats = net(x, return_features=True)
            w = knn_weights(store, feats, y, ids, kc["gamma"])
            window.append(_sample_entries(feats, y, ids, kc["per_pair"], step))
            if step % kc["refresh_every"] == 0:
                store = Datastore(*(np.concatenate(c) for c in zip(*window)), k=kc["k"], temperature=kc["temperature"])
                window = []
        else:
            logits = net(x)
        loss = balanced_bce(logits, y, w)
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
            loss = balanced_bce(net(x), y, w)
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
                         "data": "synthetic pairs", "seed": cfg["seed"], "pool": d["pool"],
                         "knn_reweight": bool(kc["reweight"]), "knn_gamma": kc["gamma"] if kc["reweight"] else None}
    if cfg["init"]:
        extra["training"]["init"] = {"file": Path(cfg["init"]).name, "training": init_training}
    final = out / "model.safetensors"
    if kc["store"]:
        extra["knn"] = attach_datastore(net, cfg, final, val)
    save_model(final, net, ModelInfo(info.name, info.arch, info.args, "match", "gray", {}, 1, 1, extra))
    return final


def _load_init(net: torch.nn.Module, cfg: dict[str, Any]) -> dict[str, Any] | None:
    """Start from the weights of ``cfg["init"]`` (fine-tuning); returns that model's training record."""
    from safetensors.torch import load_file

    from ..errors import N3Error
    from ..store.checkpoint import load_state, read_info

    start = read_info(cfg["init"])
    if (start.arch, start.args) != ("cnnet", dict(cfg["model"]["args"])):
        raise N3Error(f"{cfg['init']}: init model is {start.arch} {start.args}, the config cnnet {cfg['model']['args']}")
    load_state(net, {k: v.to(next(net.parameters()).device) for k, v in load_file(cfg["init"]).items()}, cfg["init"])
    return start.extra.get("training")


def _sample_entries(feats: torch.Tensor, labels: torch.Tensor, ids: np.ndarray, per_pair: int, step: int):
    """``per_pair`` random matches of each pair of a batch as datastore entries (keys, labels, groups)."""
    B, C, N = feats.shape
    rng = np.random.default_rng(step)
    pick = np.stack([rng.choice(N, size=min(per_pair, N), replace=False) for _ in range(B)])
    f = feats.detach().float().cpu().numpy().transpose(0, 2, 1)
    keys = normalise(np.concatenate([f[b, pick[b]] for b in range(B)]))
    lab = np.concatenate([labels[b].cpu().numpy()[pick[b]] for b in range(B)])
    return keys, lab, np.repeat(ids, pick.shape[1])


def attach_datastore(net: torch.nn.Module, cfg: dict[str, Any], model_file: Path, val) -> dict[str, Any]:
    """Build the finished model's datastore from its training pairs, tune k, T and lambda on
    ``val``, write it beside ``model_file``; returns what goes into the model's config."""
    from ..store.zoo import sha256
    from .datastore import datastore_path, save_datastore
    from .knn_vote import build_datastore, tune

    d, kc = cfg["data"], cfg["knn"]
    n = min(kc["store_pairs"], d["pool"]) if d["pool"] else kc["store_pairs"]
    pairs = ((i, training_pair(cfg["seed"], i, d)) for i in range(n))
    store = build_datastore(net, pairs, kc["store_per_pair"], seed=cfg["seed"], meta={"model": cfg["name"]})
    res = tune(net, store, val)
    path = datastore_path(model_file)
    save_datastore(path, store)
    return {"datastore": path.name, "sha256": sha256(path), "entries": len(store), "dim": store.dim,
            "k": res["k"], "temperature": res["temperature"], "lambda": res["lambda"], "gain": bool(res["gain"]),
            "val_map": res["val_map"]}


def add_datastore(cfg: dict[str, Any], model_file: str | Path) -> dict[str, Any]:
    """Give an already trained match model its kNN datastore (`n3 train --build-datastore`):
    built from ``cfg``'s training pairs, tuned on its validation pairs; the model file is
    rewritten with the result in its config."""
    from ..store.checkpoint import load_model
    from .evaluate import synthetic_set

    m = load_model(model_file)
    if m.info.task != "match":
        raise ConfigError(f"{model_file}: a {m.info.task} model, not a match network")
    d = cfg["data"]
    val = synthetic_set(d["val_pairs"], d["val_matches"], d["val_seed"], tuple(d["outliers"]), tuple(d["noise_px"]))
    knn = attach_datastore(m.net.eval(), cfg, Path(model_file), val)
    i = m.info
    save_model(model_file, m.net, ModelInfo(i.name, i.arch, i.args, i.task, i.color, i.noise, i.scale, i.min_size,
                                            {**i.extra, "knn": knn}))
    return knn
