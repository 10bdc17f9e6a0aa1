"""Backends that run a model: torch (checkpoints) and onnxruntime (exported ``.onnx`` files).

Both give a :class:`n3cli.runtime.runner.Runner`; this module imports neither framework until asked.
"""
from __future__ import annotations

import os
from pathlib import Path

from ..errors import N3Error

BACKENDS = ("auto", "torch", "onnx")


def backend_for(path: str | os.PathLike, backend: str = "auto") -> str:
    """``torch`` or ``onnx`` for a model file: ``auto`` goes by its extension."""
    if backend not in BACKENDS:
        raise N3Error(f"unknown backend {backend!r} (choose from {', '.join(BACKENDS)})")
    is_onnx = Path(path).suffix.lower() == ".onnx"
    if backend == "auto":
        return "onnx" if is_onnx else "torch"
    if backend == "torch" and is_onnx:
        raise N3Error(f"{path}: an ONNX file runs on the onnx backend, not torch (drop --backend torch)")
    if backend == "onnx" and not is_onnx:
        raise N3Error(f"{path}: --backend onnx needs an .onnx model (make one with `n3 export`)")
    return backend


def open_runner(path: str | os.PathLike, backend: str = "auto", device: str = "auto", precision: str = "fp32"):
    """A runner for the model file ``path`` on ``device`` (``auto``, ``cpu``, ``cuda``); ``precision``
    ``bf16`` (torch only) autocasts the convolutions to bfloat16."""
    if backend_for(path, backend) == "onnx":
        if precision != "fp32":
            raise N3Error(f"{path}: --precision {precision} is for the torch backend (export an fp16 ONNX instead)")
        from .onnx_runner import OnnxRunner

        return OnnxRunner(path, device)
    from ..store.checkpoint import load_model
    from .torch_runner import TorchRunner, flush_denormals, select_device

    dev = select_device(device)
    if dev.type == "cpu":
        flush_denormals()  # before building the network starts torch's threads, so that they inherit it
    return TorchRunner(load_model(path, dev), precision=precision)
