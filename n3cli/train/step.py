"""One optimisation step of an image model, as fast as the device allows: channels-last
convolutions, bfloat16 autocast where the config asks (the N³ distances and relaxation stay
float32), fused Adam on GPUs, and optionally ``torch.compile`` (with CUDA graphs). The training loop and
``benchmarks/bench_train.py`` run this same step."""
from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def set_precision(precision: str, device: torch.device) -> None:
    """Process-wide math settings for ``precision`` (fp32 | tf32 | bf16) on ``device``."""
    if device.type != "cuda":
        return
    # TF32 for convolutions only: the N³ distances (|a|^2 + |b|^2 - 2ab) need full fp32 products
    torch.backends.cudnn.allow_tf32 = precision in ("tf32", "bf16")
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.benchmark = True


def make_optimizer(net: nn.Module, optim: dict[str, Any], device: torch.device) -> torch.optim.Adam:
    """Adam with weight decay on weights, not biases; the fused kernel on GPUs (one launch for all
    parameters instead of several per tensor)."""
    decay, no_decay = [], []
    for name, p in net.named_parameters():
        (no_decay if name.endswith("bias") else decay).append(p)
    groups = [{"params": decay, "weight_decay": optim["weight_decay"]}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.Adam(groups, lr=optim["lr"], fused=device.type == "cuda" or None)


def optimizer_step(net: nn.Module, opt: torch.optim.Optimizer, loss: Tensor, clip: float = 0.0) -> bool:
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


class TrainStep:
    """``step(input, target[, weight]) -> (loss, applied)``: forward, MSE loss, backward, clipped update.

    ``net`` is the module whose parameters ``opt`` updates; ``forward`` what runs it (``net``
    itself, its DDP wrapper, or either compiled).
    """

    def __init__(self, net: nn.Module, opt: torch.optim.Optimizer, device: torch.device, precision: str = "fp32",
                 compile: bool | str = False, clip: float = 0.0, forward: nn.Module | None = None) -> None:
        self.net, self.opt, self.device, self.clip = net, opt, device, clip
        # channels-last convolutions are faster on CPUs (oneDNN) and on GPUs (tensor cores)
        net.to(memory_format=torch.channels_last)
        fwd = forward or net
        # "reduce-overhead": CUDA graphs too (the shapes of a run's batches never change)
        self.forward = torch.compile(fwd, mode=compile if isinstance(compile, str) else None) if compile else fwd
        self.autocast = precision == "bf16"

    def __call__(self, inp: Tensor, target: Tensor, weight: Tensor | None = None) -> tuple[Tensor, bool]:
        """One update; ``weight`` (one per sample) scales each sample's mean squared error."""
        inp = inp.contiguous(memory_format=torch.channels_last)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.autocast):
            pred = self.forward(inp)
        if weight is None:
            loss = F.mse_loss(pred.float(), target)
        else:
            loss = ((pred.float() - target).pow(2).flatten(1).mean(1) * weight).mean()
        applied = optimizer_step(self.net, self.opt, loss, self.clip)
        if applied and self.device.type == "cpu":
            flush_subnormal_(self.net)
        return loss.detach(), applied


def flush_subnormal_(net: nn.Module) -> None:
    """Set the subnormal parameters of ``net`` to zero, in place. Weight decay drives weights below
    float32's smallest normal number, and CPU convolutions with such weights run a slow path: a
    fine-tune from a shipped model ran 30 s per step instead of 1.7 s before this (GPUs do not
    care, and their runs are left bit for bit as they were)."""
    tiny = torch.finfo(torch.float32).tiny
    with torch.no_grad():
        for p in net.parameters():
            if p.dtype == torch.float32:
                p.masked_fill_(p.abs() < tiny, 0.0)
