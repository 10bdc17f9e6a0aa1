"""Importer for the authors' N³Net denoising checkpoints (PyTorch 0.4 pickles).

Layout (N3NET-FACTS §3): ``{'net': state_dict, 'epoch': int}`` with ``blocks.{i}.conv1``,
``blocks.{i}.layer1.{0,3,6,9}`` (convs) / ``{1,4,7,10}`` (BNs), ``blocks.{i}.conv2``, an unused
``blocks.{i}.bn1``, ``nls.{j}.embedcnn.*``, ``nls.{j}.tempcnn.*`` and
``nls.{j}.n3aggregation.aggregation.nnn.bn.*``. The file is loaded with ``weights_only=True``: a
pickle that needs code execution is refused, never run.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import torch

from ..errors import CheckpointError, first_sentences
from ..models.registry import build_model
from .checkpoint import ModelInfo, load_state, save_model

_RENAMES = [
    (re.compile(r"^blocks\.(\d+)\.layer1\."), r"blocks.\1.body."),
    (re.compile(r"^nls\.(\d+)\.n3aggregation\.aggregation\.nnn\.bn\."), r"nls.\1.bn."),
]
_DROP = re.compile(r"^blocks\.\d+\.bn1\.")


def read_legacy(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The authors' state dict, loaded without executing pickled code."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        first = first_sentences(str(e)) or "unreadable"
        raise CheckpointError(f"{path}: not a loadable tensor-only checkpoint ({first})") from None
    state = obj.get("net", obj.get("state_dict", obj)) if isinstance(obj, dict) else None
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        raise CheckpointError(f"{path}: no state dict of tensors in it")
    return {k.removeprefix("module."): v for k, v in state.items()}


def convert_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename the authors' keys to ours; drop the unused ``bn1``; add BN step counters."""
    out = {}
    for k, v in state.items():
        if _DROP.match(k):
            continue
        for pat, rep in _RENAMES:
            k = pat.sub(rep, k)
        out[k] = v
    for k in list(out):
        if k.endswith("running_mean") and k.replace("running_mean", "num_batches_tracked") not in out:
            out[k.replace("running_mean", "num_batches_tracked")] = torch.tensor(0, dtype=torch.long)
    return out


def infer_args(state: dict[str, torch.Tensor]) -> dict[str, int]:
    """N³Net arguments from tensor shapes (only for foreign files: ours store their config)."""
    try:
        stages = 1 + max(int(k.split(".")[1]) for k in state if k.startswith("blocks."))
        cin = state["blocks.0.conv1.weight"].shape[1]
        cout = state[f"blocks.{stages - 1}.conv2.weight"].shape[0]
        features = state["blocks.0.conv1.weight"].shape[0]
        mid = state["blocks.0.conv2.weight"].shape[0]
        depth = 2 + len({k.split(".")[3] for k in state if re.match(r"blocks\.0\.layer1\.\d+\.weight$", k)
                         and state[k].dim() == 4})
        k = state["blocks.1.conv1.weight"].shape[1] // mid - 1 if stages > 1 else 7
        emb = state["nls.0.embedcnn.6.weight"].shape[0] if stages > 1 else 8
    except (KeyError, ValueError, IndexError) as e:
        raise CheckpointError(f"not the N³Net denoiser layout (missing {e})") from None
    return {"in_channels": cin, "out_channels": cout, "features": features, "depth": depth, "stages": stages,
            "mid_channels": mid, "k": k, "embed_channels": emb}


def import_legacy(src: str | os.PathLike, dst: str | os.PathLike, sigma: float, name: str | None = None,
                  overwrite: bool = False) -> ModelInfo:
    """Convert the authors' checkpoint ``src`` into our model file ``dst`` (trained for ``sigma``).
    ``dst`` must be a ``.safetensors`` path, never ``src``; an existing file only with ``overwrite``."""
    from ..io.folders import same_file

    src, dst = Path(src), Path(dst)
    if dst.suffix.lower() != ".safetensors":
        raise CheckpointError(f"{dst}: the model file must be a .safetensors file")
    if same_file(src, dst):
        raise CheckpointError(f"{dst}: that is the checkpoint being imported; choose another -o")
    if dst.exists() and not overwrite:
        raise CheckpointError(f"{dst}: exists; --overwrite to replace it")
    raw = read_legacy(src)
    try:
        args = infer_args(raw)
    except CheckpointError as e:
        raise CheckpointError(f"{src}: {e}") from None
    net = build_model("n3net", args)
    load_state(net, convert_state(raw), str(src))
    color = "gray" if args["in_channels"] == 1 else "rgb"
    info = ModelInfo(name=name or Path(dst).stem, arch="n3net", args=args, task="denoise", color=color,
                     noise={"kind": "fixed", "sigma": float(sigma)},
                     extra={"source": f"imported from {Path(src).name} (Plötz & Roth, N³Net authors)",
                            "license": "the authors' licence: non-commercial use, no redistribution"})
    save_model(dst, net, info)
    return info
