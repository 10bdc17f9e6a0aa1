"""The training loop: one process, or one of several under ``torchrun`` (DDP)."""
from __future__ import annotations

import json
import math
import os
import platform
import time
from pathlib import Path
from typing import Any, Callable

import torch
import torch.distributed as dist

from ..errors import N3Error
from ..models.registry import build_model
from ..store.checkpoint import ModelInfo, atomic_write, load_state, save_model
from .data import load_images
from .step import TrainStep, make_optimizer, optimizer_step, set_precision  # noqa: F401  (optimizer_step: API)
from .tasks import ImageTask, task_for


def lr_at(step: int, optim: dict[str, Any]) -> float:
    """The paper's schedule: lr * 10**(-decay * epoch / epochs), stepping once per epoch."""
    epoch = step // optim["steps_per_epoch"]
    return optim["lr"] * 10 ** (-optim["decay"] * epoch / optim["epochs"])


def total_steps(cfg: dict[str, Any]) -> int:
    """The length of the config's schedule."""
    return cfg["optim"]["epochs"] * cfg["optim"]["steps_per_epoch"]


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
          on_log: Callable[[dict[str, Any]], None] | None = None, deadline: float | None = None) -> Path:
    """Train the model ``cfg`` describes into ``out_dir``; returns the final model file (or, when
    stopped early, the latest checkpoint).

    ``out_dir`` receives ``latest.safetensors`` + ``latest.state.pt`` (for ``resume``), ``best.safetensors``
    (best validation PSNR), ``log.jsonl`` and, at the end, ``model.safetensors``. ``max_steps`` and
    ``deadline`` (a ``time.time()``) stop early, the state saved, while the schedule still follows
    the config's full length: that is how a long run is split over several sessions.
    """
    out = Path(out_dir)
    rank, world, dev = _setup_distributed(device)
    total = total_steps(cfg)
    batch = cfg["data"]["batch"]
    if batch % world:
        raise N3Error(f"data.batch ({batch}) must be divisible by the number of processes ({world})")
    set_precision(cfg["precision"], dev)
    if dev.type == "cpu":
        # subnormal activations and gradients appear as a model trains and take a slow path in CPU
        # convolutions: a fine-tune slowed from 3.0 to 5.0 s per step (one thread) within 500 steps;
        # flushed to zero (set here, before the worker threads start, which inherit it) it stayed at 3.0
        torch.set_flush_denormal(True)
    torch.manual_seed(cfg["seed"])
    net = build_model(cfg["model"]["arch"], cfg["model"]["args"]).to(dev)
    start = None
    if cfg["init"]:  # read on --resume too: the finished model records what the fine-tuning started from
        from safetensors.torch import load_file

        from ..store.checkpoint import flush_subnormals, read_info

        start = read_info(cfg["init"])
        if (start.arch, start.args) != (cfg["model"]["arch"], dict(cfg["model"]["args"])):
            raise N3Error(f"{cfg['init']}: init model is {start.arch} {start.args}, the config {cfg['model']['arch']} "
                          f"{cfg['model']['args']}")
        if not resume:
            load_state(net, {k: v.to(dev) for k, v in flush_subnormals(load_file(cfg["init"])).items()}, cfg["init"])
    task = task_for(cfg)
    info = task.model_info()
    if start is not None:
        info.extra["init_training"] = start.extra.get("training")  # what the fine-tuning started from
    opt = make_optimizer(net, cfg["optim"], dev)
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
        net.to(memory_format=torch.channels_last)  # before DDP lays out its gradient buckets (TrainStep's layout)
        ddp = torch.nn.parallel.DistributedDataParallel(net, device_ids=[dev.index] if dev.type == "cuda" else None)
    run_step = TrainStep(net, opt, dev, cfg["precision"], cfg["compile"], cfg["optim"]["clip"], forward=ddp)

    train_images = load_images(cfg["data"]["train"], task.image_color, downsample=cfg["data"]["downsample"])
    task.prepare([px for _, px in train_images], dev)
    val_images = []
    if cfg["data"]["val"] and rank == 0:
        val_images = load_images(cfg["data"]["val"], task.val_color, cfg["data"]["val_max_images"])
    bar = None
    if progress and rank == 0:
        from tqdm import tqdm

        bar = tqdm(total=end, initial=step, desc=cfg["name"], unit="step", dynamic_ncols=True)
    log = (out / "log.jsonl").open("a") if rank == 0 else None
    net.train()
    if cfg["optim"]["freeze_bn"]:
        for m in net.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.eval()
    t0, s0, last_val, running, skipped = time.time(), step, None, [], 0
    while step < end:
        for g in opt.param_groups:
            g["lr"] = lr_at(step, cfg["optim"])
        inp, target = task.batch(step, rank, world)
        loss, applied = run_step(inp, target, task.loss_weight(inp, target))
        if applied:
            running.append(loss)
        else:
            skipped += 1
        step += 1
        out_of_time = deadline is not None and time.time() >= deadline
        if world > 1 and deadline is not None:  # every rank stops at the same step
            flag = torch.tensor(float(out_of_time), device=dev)
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            out_of_time = bool(flag.item())
        last = step == end or out_of_time
        if rank == 0:
            if step % cfg["log_every"] == 0 or last:
                rec = {"step": step, "loss": float(torch.stack(running).mean()) if running else math.nan,
                       "lr": lr_at(step - 1, cfg["optim"]), "steps_per_s": (step - s0) / max(time.time() - t0, 1e-9)}
                if skipped:
                    rec["skipped_nonfinite"] = skipped
                running, skipped = [], 0
                _log(log, rec, on_log)
            if val_images and (step % cfg["val_every"] == 0 or last):
                rec = task.validate(net, info, val_images)
                last_val = rec["val_psnr"]
                _log(log, {"step": step, **rec}, on_log)
                if last_val > best:
                    best = last_val
                    save_model(out / "best.safetensors", net, _with_training(info, task, step, dev, last_val))
            if step % cfg["checkpoint_every"] == 0 or last:
                _save_latest(out, net, opt, step, best, info)
            if bar is not None:
                bar.update(1)
                if step % 10 == 0:
                    post = {"loss": f"{float(loss):.2e}"}
                    if last_val is not None:
                        post["val_psnr"] = f"{last_val:.2f}"
                    bar.set_postfix(post, refresh=False)
        if out_of_time:
            break
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
            save_model(final, net, _with_training(info, task, step, dev, last_val))
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


def _with_training(info: ModelInfo, task: ImageTask, step: int, dev: torch.device, val: float | None) -> ModelInfo:
    cfg = task.cfg
    extra = dict(info.extra)
    hw = torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"CPU ({platform.machine()}, {os.cpu_count()} cores)"
    extra["training"] = {"config": cfg["name"], "steps": step, "batch": cfg["data"]["batch"],
                         "patch": cfg["data"]["patch"], "data": [Path(p).name for p in cfg["data"]["train"]],
                         "hardware": hw, "seed": cfg["seed"]}
    init_training = extra.pop("init_training", None)
    if cfg["init"]:
        extra["training"]["init"] = {"file": Path(cfg["init"]).name, "training": init_training}
    if val is not None:
        extra.setdefault("metrics", {})["val_psnr"] = {"data": Path(cfg["data"]["val"]).name, **task.condition(),
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

