"""The torch backend: runs an ``nn.Module`` (usually loaded from a checkpoint)."""
from __future__ import annotations

import copy
import math
import os

import numpy as np
import torch
from torch import nn

from ..errors import N3Error
from ..models.layers import fold_batchnorm
from ..store.checkpoint import LoadedModel
from ..store.modelinfo import ModelInfo
from .malloc import release_freed_memory
from .runner import DEFAULT_OVERLAP, MIN_TILE, TileMemoryError, cpu_tile

# peak working memory per tile pixel, float32: measured for N³Net's blocked form (GPUs); the fused
# CPU form needs ~0.7 KB with n3's allocator setting (0.4 KB without), so CPUs have room to spare
BYTES_PER_PIXEL = 3000
PRECISIONS = ("fp32", "bf16")


def select_device(device: str | torch.device = "auto") -> torch.device:
    """``auto``: CUDA when usable, else CPU. ``cuda`` without a usable GPU is an error."""
    device = str(device)
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise N3Error("--device cuda: no usable CUDA GPU (torch.cuda.is_available() is False)")
    return torch.device(device)


def prepare_for_inference(net: nn.Module) -> nn.Module:
    """Eval mode, BatchNorm folded into the convolutions (once, not per tile; in place), and
    channels-last convolution weights.

    oneDNN's CPU convolutions run 1.7x (64 -> 64 channels) to 3x (the small ones of the N³ blocks)
    faster on channels-last tensors than on NCHW ones, which it would reorder at every layer
    (measured with torch 2.13 on 2 cores). Results are unchanged up to float rounding.
    """
    net.eval()
    fold_batchnorm(net)
    # channels-last on GPUs too: cuDNN's tensor-core convolutions take it without reordering
    net.to(memory_format=torch.channels_last)
    return net


def to_input(x: torch.Tensor) -> torch.Tensor:
    """``x`` in the memory format :func:`prepare_for_inference` chose (channels-last)."""
    if x.dim() == 4:
        return x.contiguous(memory_format=torch.channels_last)
    return x


def flush_denormals() -> bool:
    """Treat subnormal floats as zero in this process's CPU arithmetic (FTZ/DAZ), unless
    ``N3_KEEP_DENORMALS=1``; returns whether it is on.

    Trained networks make subnormal activations (values below 1.2e-38), and CPU convolutions with
    them take a slow path: the real-noise colour model took 3.1 s per CBSD68 image instead of 1.6 s
    (2 cores). Their contribution to any output is far below float32 resolution. The setting is
    per thread and threads inherit it when they start, so it takes full effect when set before
    torch's first parallel work: loading a model on the CPU sets it. The ONNX backend does the same
    inside onnxruntime (``session.set_denormal_as_zero``).
    """
    if os.environ.get("N3_KEEP_DENORMALS", "") not in ("", "0"):
        return False
    return bool(torch.set_flush_denormal(True))


class TorchRunner:
    """A :class:`~n3cli.runtime.runner.Runner` for a torch network in eval mode."""

    fixed_size = None

    def __init__(self, loaded: LoadedModel | nn.Module, info: ModelInfo | None = None, precision: str = "fp32") -> None:
        if precision not in PRECISIONS:
            raise N3Error(f"unknown precision {precision!r} (choose from {', '.join(PRECISIONS)})")
        if isinstance(loaded, nn.Module):  # a live network (training's validation): prepared on a copy,
            loaded = LoadedModel(copy.deepcopy(loaded), info, None)  # type: ignore[arg-type]  # the caller's trains on
        if next(loaded.net.parameters()).device.type == "cpu":
            flush_denormals()  # before any parallel work starts torch's threads, which inherit it
        self.net, self.info, self.path = prepare_for_inference(loaded.net), loaded.info, loaded.path
        self.device = next(self.net.parameters()).device
        # bf16: the convolutions autocast to bfloat16 (the N³ blocks stay float32); a tile whose
        # result is not finite, or black where the input is not, is run again in float32
        self.precision, self.fallbacks = precision, 0
        self.min_size = int(getattr(self.net, "min_size", 1))
        self.size_multiple = int(getattr(self.net, "size_multiple", 1))
        self.context = int(getattr(self.net, "context", DEFAULT_OVERLAP))
        # tiles per forward pass: None lets tiles_per_forward decide from the free memory
        self.tile_batch: int | None = None

    def run(self, x: np.ndarray) -> np.ndarray:
        try:
            with torch.inference_mode():
                inp = to_input(torch.from_numpy(x).to(self.device))
                if self.precision == "bf16":
                    with torch.autocast(self.device.type, dtype=torch.bfloat16):
                        y = self.net(inp).float()
                    # per tile: not finite, or black where its input is not
                    bad = ~torch.isfinite(y).flatten(1).all(1) | (~y.flatten(1).any(1) & inp.flatten(1).any(1))
                    if bool(bad.any()):
                        self.fallbacks += int(bad.sum())
                        y[bad] = self.net(to_input(inp[bad])).float()
                else:
                    y = self.net(inp).float()
                y = y.cpu().contiguous().numpy()
            release_freed_memory()
            return y
        except torch.OutOfMemoryError:
            if self.device.type == "cuda":
                torch.cuda.empty_cache()
            raise TileMemoryError("out of memory") from None

    def auto_tile(self, overlap: int) -> int:
        if self.device.type != "cuda":
            return cpu_tile(overlap, BYTES_PER_PIXEL)
        free, _ = torch.cuda.mem_get_info(self.device)
        side = int(math.sqrt(0.5 * free / BYTES_PER_PIXEL)) - 2 * overlap
        return int(max(MIN_TILE, min(4096, side)) // 16 * 16)

    def tiles_per_forward(self, tile: int, overlap: int) -> int:
        """``tile_batch`` when set; on a GPU, as many tiles as half its free memory holds (at most
        16): small tiles alone leave most of its cores idle. One on CPUs, where a batch is no faster."""
        if self.tile_batch:
            return int(self.tile_batch)
        if self.device.type != "cuda":
            return 1
        free, _ = torch.cuda.mem_get_info(self.device)
        return int(max(1, min(16, 0.5 * free // (BYTES_PER_PIXEL * (tile + 2 * overlap) ** 2))))

    def describe(self) -> str:
        if self.device.type == "cuda":
            return f"torch cuda ({torch.cuda.get_device_name(self.device)})"
        return f"torch cpu ({torch.get_num_threads()} threads)"
