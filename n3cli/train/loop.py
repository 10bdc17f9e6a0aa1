"""The training loop: one process, or one of several under ``torchrun`` (DDP)."""
from __future__ import annotations

import json
import math
import os
import platform
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.utils.data import DataLoader

from ..errors import N3Error
from ..eval.metrics import psnr
from ..imaging.noise import add_gaussian, eval_rng, network_input
from ..models.registry import build_model
from ..store.checkpoint import ModelInfo, atomic_write, load_state, save_model
from .data import NoisyPatches, RawPatches, SRPatches, StepSampler, load_images


def lr_at(step: int, optim: dict[str, Any]) -> float:
    """The paper's schedule: lr * 10**(-decay * epoch / epochs), stepping once per epoch."""
    epoch = step // optim["steps_per_epoch"]
    return optim["lr"] * 10 ** (-optim["decay"] * epoch / optim["epochs"])


def optimizer_step(net: torch.nn.Module, opt: torch.optim.Optimizer, loss: torch.Tensor, clip: float = 0.0) -> bool:
    """Backpropagate ``loss`` and step ``opt``, clipping the gradient norm to ``clip`` (0: off).

    Returns False, leaving the weights untouched, when the loss or a gradient is not finite: one
    bad batch is skipped rather than allowed to poison the weights of a long run.
    """
    opt.zero_grad(set_to_none=True)
    loss.backward()
    norm = torch.nn.utils.clip_grad_norm_(net.parameters(), clip or math.inf)
    if not (torch.isfinite(norm) and torch.isfinite(loss)):
        opt.zero_grad(set_to_none=True)
        return False
    opt.step()
    return True


def model_info(cfg: dict[str, Any], net: torch.nn.Module) -> ModelInfo:
    m, n = cfg["model"], cfg["noise"]
    extra = {k: m[k] for k in ("description", "license") if m.get(k)}
    if m["task"] == "sr":
        scales = [int(v) for v in cfg["data"]["scales"]]
        return ModelInfo(name=cfg["name"], arch=m["arch"], args=dict(m["args"]), task="sr", color="gray",
                         noise={}, scale=scales[0], min_size=1, extra={**extra, "scales": scales, "input": "bicubic-y"})
    if m["task"] == "raw":
        return ModelInfo(name=cfg["name"], arch=m["arch"], args=dict(m["args"]), task="raw", color="bayer",
                         noise={"kind": "poisson-gaussian", "inputs": ["sqrt_a", "sqrt_b"], "model": "var = a*x + b"},
                         min_size=1, extra={**extra, "input": "rggb-planes+sqrt_a+sqrt_b"})
    if n["kind"] == "fixed":
        noise = {"kind": "fixed", "sigma": float(n["sigma"])}
    else:
        noise = {"kind": n["kind"], "sigma_range": [float(v) for v in n["sigma_range"]]}
    return ModelInfo(name=cfg["name"], arch=m["arch"], args=dict(m["args"]), task=m["task"], color=m["color"],
                     noise=noise, min_size=1, extra=extra)


def validate_psnr(net: torch.nn.Module, info: ModelInfo, images: list[np.ndarray], sigma: float,
                  device: torch.device, seed: int = 0) -> float:
    """Mean PSNR on whole images with the evaluation protocol's fixed noise (no tiling)."""
    was = net.training
    net.eval()
    vals = []
    with torch.no_grad():
        for i, clean in enumerate(images):
            noisy = add_gaussian(clean, sigma, eval_rng(seed, i))
            x = torch.from_numpy(noisy.transpose(2, 0, 1)).unsqueeze(0).to(device)
            y = net(network_input(x, sigma, info.takes_noise_map))
            vals.append(psnr(y[0].float().cpu().numpy().transpose(1, 2, 0), clean))
    net.train(was)
    return float(np.mean(vals))


def validate_sr_psnr(net: torch.nn.Module, images: list[np.ndarray], scale: int, device: torch.device) -> float:
    """Mean Y-PSNR (the SR protocol: 8-bit LR, ``scale`` px shaved) on whole images (no tiling)."""
    from ..imaging.resize import imresize, make_lr, modcrop, psnr_y

    was = net.training
    net.eval()
    vals = []
    with torch.no_grad():
        for im in images:
            hr = modcrop(np.rint(im[:, :, 0] * 255.0), scale)
            inp = imresize(make_lr(hr, scale), scale) / 255.0
            y = net(torch.from_numpy(inp[None, None].astype(np.float32)).to(device))[0, 0].float().cpu().numpy()
            vals.append(psnr_y(np.clip(y * 255.0, 0, 255), hr, scale))
    net.train(was)
    return float(np.mean(vals))


def validate_raw_psnr(net: torch.nn.Module, images: list[np.ndarray], a: float, b: float,
                      device: torch.device, seed: int = 0) -> float:
    """Mean raw-space PSNR on unprocessed validation images (fixed stream per image) at noise (a, b)."""
    from ..imaging.bayer import pack
    from ..imaging.raw_noise import (
        add_poisson_gaussian,
        mosaic_rggb,
        raw_network_input,
        unprocess,
    )

    was = net.training
    net.eval()
    vals = []
    with torch.no_grad():
        for i, im in enumerate(images):
            rng = eval_rng(seed, i)
            lin, _ = unprocess(im if im.shape[2] == 3 else np.repeat(im, 3, 2), rng)
            h, w = lin.shape[0] // 2 * 2, lin.shape[1] // 2 * 2
            clean = mosaic_rggb(lin[:h, :w])
            planes, _ = pack(add_poisson_gaussian(clean, a, b, rng), "RGGB")
            x = torch.from_numpy(raw_network_input(planes, a, b)[None]).to(device)
            y = net(x)[0].float().cpu().numpy()
            vals.append(psnr(y, pack(clean, "RGGB")[0]))
    net.train(was)
    return float(np.mean(vals))


RUN_FILES = ("log.jsonl", "latest.safetensors", "latest.state.pt", "best.safetensors", "model.safetensors",
             "config.json")


def prepare_run_dir(out_dir: str | Path, resume: bool, overwrite: bool) -> None:
    """A run folder that already holds a run is continued (``resume``), started again from
    nothing (``overwrite``: n3's own files in it are removed, nothing else) or refused."""
    out = Path(out_dir)
    present = [f for f in RUN_FILES if (out / f).exists()]
    if resume or not present:
        return
    if not overwrite:
        raise N3Error(f"{out}: holds a run already ({', '.join(present)}); --resume to continue it, "
                      "--overwrite to start again")
    for f in present:
        (out / f).unlink()


def train(cfg: dict[str, Any], out_dir: str | Path, resume: bool = False, device: str = "auto",
          max_steps: int | None = None, progress: bool = True,
          on_log: Callable[[dict[str, Any]], None] | None = None) -> Path:
    """Train the model ``cfg`` describes into ``out_dir``; returns the final model file.

    ``out_dir`` receives ``latest.safetensors`` + ``latest.state.pt`` (for ``resume``), ``best.safetensors``
    (best validation PSNR), ``log.jsonl`` and, at the end, ``model.safetensors``. ``max_steps`` stops
    early (the schedule still follows the config's full length), which is how a long run is split.
    """
    out = Path(out_dir)
    rank, world, dev = _setup_distributed(device)
    total = cfg["optim"]["epochs"] * cfg["optim"]["steps_per_epoch"]
    batch = cfg["data"]["batch"]
    if batch % world:
        raise N3Error(f"data.batch ({batch}) must be divisible by the number of processes ({world})")
    if cfg["precision"] in ("tf32", "bf16") and dev.type == "cuda":
        # convolutions only: the N³ distances (|a|^2 + |b|^2 - 2ab) need full fp32 products
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.benchmark = True
    torch.manual_seed(cfg["seed"])
    net = build_model(cfg["model"]["arch"], cfg["model"]["args"]).to(dev)
    start = None
    if cfg["init"] and not resume:
        from safetensors.torch import load_file

        from ..store.checkpoint import read_info

        start = read_info(cfg["init"])
        if (start.arch, start.args) != (cfg["model"]["arch"], dict(cfg["model"]["args"])):
            raise N3Error(f"{cfg['init']}: init model is {start.arch} {start.args}, the config {cfg['model']['arch']} "
                          f"{cfg['model']['args']}")
        load_state(net, {k: v.to(dev) for k, v in load_file(cfg["init"]).items()}, cfg["init"])
    info = model_info(cfg, net)
    if start is not None:
        info.extra["init_training"] = start.extra.get("training")  # what the fine-tuning started from
    decay, no_decay = [], []
    for name, p in net.named_parameters():
        (no_decay if name.endswith("bias") else decay).append(p)
    opt = torch.optim.Adam([{"params": decay, "weight_decay": cfg["optim"]["weight_decay"]},
                            {"params": no_decay, "weight_decay": 0.0}], lr=cfg["optim"]["lr"])
    step, best = 0, -math.inf
    state_path = out / "latest.state.pt"
    if resume:
        if not state_path.is_file():
            raise N3Error(f"{out}: nothing to resume (no latest.state.pt)")
        from safetensors.torch import load_file

        load_state(net, {k: v.to(dev) for k, v in load_file(str(out / "latest.safetensors")).items()}, str(out))
        st = torch.load(state_path, map_location=dev, weights_only=True)
        opt.load_state_dict(st["optimizer"])
        step, best = int(st["step"]), float(st["best"])
        torch.set_rng_state(st["rng"].cpu())
    elif rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.json").write_text(json.dumps(cfg, indent=2))
    end = min(total, max_steps) if max_steps else total
    ddp = net
    if world > 1:
        ddp = torch.nn.parallel.DistributedDataParallel(net, device_ids=[dev.index] if dev.type == "cuda" else None)

    sr, raw = cfg["model"]["task"] == "sr", cfg["model"]["task"] == "raw"
    color = "y" if sr else "rgb" if raw else cfg["model"]["color"]
    images = load_images(cfg["data"]["train"], color)
    if raw:
        ds = RawPatches(images, cfg["data"]["patch"], cfg["seed"], cfg["data"]["rot90"], cfg["data"]["flip"])
    elif sr:
        ds = SRPatches(images, cfg["data"]["patch"], cfg["data"]["scales"], cfg["seed"], cfg["data"]["rot90"],
                       cfg["data"]["flip"])
    else:
        ds = NoisyPatches(images, cfg["data"]["patch"], cfg["noise"], cfg["seed"], cfg["data"]["rot90"],
                          cfg["data"]["flip"])
    workers = cfg["data"]["workers"]
    loader = DataLoader(ds, batch_size=batch // world, sampler=StepSampler(step, end, batch, rank, world),
                        num_workers=workers, pin_memory=dev.type == "cuda", persistent_workers=False,
                        prefetch_factor=4 if workers else None)
    val_images = []
    if cfg["data"]["val"] and rank == 0:
        val_images = load_images(cfg["data"]["val"], color, cfg["data"]["val_max_images"])
    val_sigma = float(cfg["noise"]["val_sigma"])
    bar = None
    if progress and rank == 0:
        from tqdm import tqdm

        bar = tqdm(total=end, initial=step, desc=cfg["name"], unit="step", dynamic_ncols=True)
    log = (out / "log.jsonl").open("a") if rank == 0 else None
    autocast = torch.autocast(dev.type, dtype=torch.bfloat16, enabled=cfg["precision"] == "bf16")
    net.train()
    t0, s0, last_val, running, skipped = time.time(), step, None, [], 0
    for noisy, clean, sigma in loader:
        noisy, clean, sigma = (t.to(dev, non_blocking=True) for t in (noisy, clean, sigma))
        for g in opt.param_groups:
            g["lr"] = lr_at(step, cfg["optim"])
        with autocast:
            pred = ddp(network_input(noisy, sigma, info.takes_noise_map))
        loss = F.mse_loss(pred.float(), clean)
        if optimizer_step(net, opt, loss, cfg["optim"]["clip"]):
            running.append(loss.detach())
        else:
            skipped += 1
        step += 1
        if rank == 0:
            if step % cfg["log_every"] == 0 or step == end:
                rec = {"step": step, "loss": float(torch.stack(running).mean()) if running else math.nan,
                       "lr": lr_at(step - 1, cfg["optim"]), "steps_per_s": (step - s0) / max(time.time() - t0, 1e-9)}
                if skipped:
                    rec["skipped_nonfinite"] = skipped
                running, skipped = [], 0
                _log(log, rec, on_log)
            if val_images and (step % cfg["val_every"] == 0 or step == end):
                if raw:
                    va, vb = cfg["noise"]["val_ab"]
                    last_val = validate_raw_psnr(net, val_images, va, vb, dev)
                    _log(log, {"step": step, "val_psnr": last_val, "val_ab": [va, vb]}, on_log)
                elif sr:
                    last_val = validate_sr_psnr(net, val_images, cfg["data"]["val_scale"], dev)
                    _log(log, {"step": step, "val_psnr": last_val, "val_scale": cfg["data"]["val_scale"]}, on_log)
                else:
                    last_val = validate_psnr(net, info, val_images, val_sigma, dev)
                    _log(log, {"step": step, "val_psnr": last_val, "val_sigma": val_sigma}, on_log)
                if last_val > best:
                    best = last_val
                    save_model(out / "best.safetensors", net, _with_training(info, cfg, step, dev, last_val))
            if step % cfg["checkpoint_every"] == 0 or step == end:
                _save_latest(out, net, opt, step, best, info)
            if bar is not None:
                bar.update(1)
                if step % 10 == 0:
                    post = {"loss": f"{float(loss):.2e}"}
                    if last_val is not None:
                        post["val_psnr"] = f"{last_val:.2f}"
                    bar.set_postfix(post, refresh=False)
    if bar is not None:
        bar.close()
    final = out / "model.safetensors"
    if world > 1:
        # every rank must end with the same weights; record what each holds
        sums = [torch.zeros((), dtype=torch.float64) for _ in range(world)]
        mine = torch.stack([p.detach().double().sum() for p in net.parameters()]).sum().cpu()
        dist.all_gather_object(sums, float(mine))
        if rank == 0:
            _log(log, {"step": step, "rank_checksums": sums}, on_log)
    if rank == 0:
        if step >= total:
            save_model(final, net, _with_training(info, cfg, step, dev, last_val))
        log.close()
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()
    return final if step >= total else out / "latest.safetensors"


def _log(fh, rec: dict[str, Any], on_log) -> None:
    fh.write(json.dumps(rec) + "\n")
    fh.flush()
    if on_log:
        on_log(rec)


def _with_training(info: ModelInfo, cfg: dict[str, Any], step: int, dev: torch.device, val: float | None) -> ModelInfo:
    extra = dict(info.extra)
    hw = torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"CPU ({platform.machine()}, {os.cpu_count()} cores)"
    extra["training"] = {"config": cfg["name"], "steps": step, "batch": cfg["data"]["batch"],
                         "patch": cfg["data"]["patch"], "data": [Path(p).name for p in cfg["data"]["train"]],
                         "hardware": hw, "seed": cfg["seed"]}
    init_training = extra.pop("init_training", None)
    if cfg["init"]:
        extra["training"]["init"] = {"file": Path(cfg["init"]).name, "training": init_training}
    if val is not None:
        cond = ({"scale": cfg["data"]["val_scale"]} if info.task == "sr" else {"ab": cfg["noise"]["val_ab"]}
                if info.task == "raw" else {"sigma": cfg["noise"]["val_sigma"]})
        extra.setdefault("metrics", {})["val_psnr"] = {"data": Path(cfg["data"]["val"]).name, **cond,
                                                       "psnr": round(val, 3)}
    return ModelInfo(info.name, info.arch, info.args, info.task, info.color, info.noise, info.scale,
                     info.min_size, extra)


def _save_latest(out: Path, net, opt, step: int, best: float, info: ModelInfo) -> None:
    save_model(out / "latest.safetensors", net, info)
    state = {"optimizer": opt.state_dict(), "step": step, "best": best, "rng": torch.get_rng_state()}
    atomic_write(out / "latest.state.pt", lambda tmp: torch.save(state, tmp))


def _setup_distributed(device: str) -> tuple[int, int, torch.device]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise N3Error("--device cuda: no usable CUDA GPU")
    if world == 1:
        return 0, 1, torch.device(device)
    rank = int(os.environ["RANK"])
    local = int(os.environ.get("LOCAL_RANK", rank))
    if device == "cuda":
        torch.cuda.set_device(local)
        dist.init_process_group("nccl")
        return rank, world, torch.device("cuda", local)
    dist.init_process_group("gloo")
    return rank, world, torch.device("cpu")

