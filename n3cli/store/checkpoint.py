"""Model files: ``.safetensors`` tensors plus a JSON config in the file's metadata.

A file carries everything needed to rebuild and use its network (architecture, arguments,
task, input conventions) and what is known about it (training, measured metrics, licence), so
loading never needs outside knowledge.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..errors import CheckpointError
from ..io.atomic import atomic_write  # noqa: F401  (re-exported)
from ..models.layers import flush_subnormal
from ..models.registry import build_model
from .modelinfo import FORMAT_VERSION, META_KEY, ModelInfo  # noqa: F401  (re-exported)


@dataclass
class LoadedModel:
    """A network ready for inference with its description."""

    net: nn.Module
    info: ModelInfo
    path: Path | None = None


def save_model(path: str | os.PathLike, net: nn.Module, info: ModelInfo) -> None:
    """Write ``net``'s weights and ``info`` to a self-describing ``.safetensors`` file."""
    from safetensors.torch import save_file

    state = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    meta = {META_KEY: json.dumps(info.to_json(), sort_keys=True)}
    atomic_write(path, lambda tmp: save_file(state, tmp, metadata=meta))


def read_info(path: str | os.PathLike) -> ModelInfo:
    """Read only the config of a model file (cheap: no tensors are loaded)."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such model file")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except Exception as e:  # safetensors raises several types for a bad header
        raise CheckpointError(f"{path}: not a safetensors model file ({_short(e)})") from None
    if META_KEY not in meta:
        raise CheckpointError(f"{path}: safetensors file without an n3 config (import foreign checkpoints with `n3 import`)")
    try:
        d = json.loads(meta[META_KEY])
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{path}: config is not valid JSON ({e})") from None
    return ModelInfo.from_json(d, str(path))


def load_model(path: str | os.PathLike, device: str | torch.device = "cpu") -> LoadedModel:
    """Rebuild the network a model file describes and load its weights (eval mode)."""
    from safetensors.torch import load_file

    path = Path(path)
    info = read_info(path)
    net = build_model(info.arch, info.args)
    try:
        state = load_file(str(path))
    except Exception as e:
        raise CheckpointError(f"{path}: unreadable tensors ({_short(e)})") from None
    load_state(net, flush_subnormals(state), str(path))
    return LoadedModel(net.to(device).eval(), info, path)


def flush_subnormals(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``state`` with subnormal values set to zero (:func:`~n3cli.models.layers.flush_subnormal`:
    they made trained models up to 80x slower per convolution on Intel CPUs)."""
    return {k: flush_subnormal(t) for k, t in state.items()}


def load_state(net: nn.Module, state: dict[str, torch.Tensor], where: str) -> None:
    """Strict state-dict load with a one-line error naming what does not match."""
    own = net.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [k for k in own if k in state and tuple(own[k].shape) != tuple(state[k].shape)]
    if missing or unexpected or shapes:
        parts = []
        if shapes:
            k = shapes[0]
            parts.append(f"{len(shapes)} tensor(s) of the wrong shape (e.g. {k}: file {tuple(state[k].shape)}, "
                         f"config {tuple(own[k].shape)})")
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
        raise CheckpointError(f"{where}: weights do not match the config: " + "; ".join(parts))
    bad = [k for k, t in state.items() if t.is_floating_point() and not bool(torch.isfinite(t).all())]
    if bad:  # NaN weights turn every image black (or NaN) without an error
        raise CheckpointError(f"{where}: {len(bad)} tensor(s) hold NaN or infinite values (e.g. {bad[0]}); "
                              "the model is broken (a diverged training?)")
    net.load_state_dict(state, strict=True)


def _short(e: Exception) -> str:
    return str(e).splitlines()[0][:200] if str(e) else type(e).__name__
