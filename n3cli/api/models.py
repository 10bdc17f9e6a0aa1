"""`n3 models`, `n3 export` and `n3 import` for Python users: the shipped models and what was
measured on them, ONNX export, and the authors' checkpoints converted."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..errors import N3Error
from ..store import zoo
from .loading import resolve_model


def shipped_models() -> dict[str, Any]:
    """The shipped models: name, task, colour, noise, size, defaults, metrics, files."""
    from ..store.checkpoint import read_info

    rows = []
    for e in zoo.entries():
        info = read_info(e.path)
        rows.append({"name": e.name, "task": info.task, "color": info.color, "channels": info.image_channels,
                     "noise": info.noise, "size_mb": round(e.path.stat().st_size / 1e6, 2),
                     "default_for": list(e.default_for), "metrics": info.extra.get("metrics", {}),
                     "training": info.extra.get("training", {}), "file": str(e.path),
                     "onnx": str(e.onnx_path) if e.onnx_path else None})
    return {"weights_dir": str(zoo.weights_dir()), "models": rows}


def export_model(model: str | os.PathLike, output: str | os.PathLike, opset: int = 18,
                 tile: tuple[int, int] | None = None, fp16: bool = False, verify: bool = True,
                 overwrite: bool = False) -> dict[str, Any]:
    """Export a model (shipped name or checkpoint) to ONNX; see :func:`n3cli.store.onnx_export.export_onnx`."""
    from ..store.onnx_export import export_onnx

    out = Path(output)
    if out.suffix.lower() != ".onnx":
        raise N3Error(f"{output}: the output must end in .onnx")
    if out.exists() and not overwrite:
        raise N3Error(f"{output} exists (use --overwrite to replace it)")
    src = resolve_model(model, backend="torch")
    if src.suffix.lower() == ".onnx":
        raise N3Error(f"{model}: already an ONNX file")
    return {**export_onnx(src, out, opset, tile, fp16, verify=verify), "source": str(src)}


def import_checkpoint(src: str | os.PathLike, dst: str | os.PathLike, sigma: float, name: str | None = None,
                      overwrite: bool = False):
    """The authors' N³Net checkpoint as an n3 model file; see :func:`n3cli.store.legacy.import_legacy`."""
    from ..store.legacy import import_legacy

    return import_legacy(src, dst, sigma, name, overwrite)
