"""A fixed-sigma model given a noise-level map input: the start of a noise-aware fine-tune.

A network trained for one sigma (``n3net-gray-s25``) knows images and one noise level; a
noise-aware one (FFDNet-style, the image plus a constant sigma/255 channel) must learn every
level. Starting the noise-aware network from the fixed one keeps what it knows: the first
convolution gets one more input channel with zero weights, so at the start the map is ignored
except where the first stage's residual adds it to a feature channel, and fine-tuning teaches
the network to read it (docs/training.md, "A noise-aware model from a fixed-sigma one").
"""
from __future__ import annotations

import copy
import os

import torch

from ..errors import CheckpointError
from ..models.registry import build_model
from .checkpoint import LoadedModel, load_model
from .zoo import sha256


def with_noise_map(source: str | os.PathLike, sigma_range: tuple[float, float], name: str) -> LoadedModel:
    """``source`` (a fixed-sigma or blind image denoiser) as a noise-map model named ``name``:
    one more input channel, zero-weighted, and noise ``{kind: map, sigma_range}``. Every other
    tensor is the source's. Raises :class:`~n3cli.errors.CheckpointError` for a model that
    already takes a map or is no image denoiser."""
    src = load_model(source)
    info = copy.deepcopy(src.info)
    if info.task != "denoise" or info.takes_noise_map or "in_channels" not in info.args:
        raise CheckpointError(f"{source}: not an image denoiser without a noise map "
                              f"(task {info.task}, noise {info.noise.get('kind')})")
    lo, hi = sigma_range
    if not 0.0 <= lo < hi <= 255.0:
        raise ValueError(f"sigma range must satisfy 0 <= low < high <= 255, got {sigma_range}")
    info.name = name
    info.args = {**info.args, "in_channels": int(info.args["in_channels"]) + 1}
    info.noise = {"kind": "map", "sigma_range": [float(lo), float(hi)]}
    info.extra = {k: v for k, v in info.extra.items() if k in ("license",)}
    info.extra["training"] = {"method": "noise-map channel added with zero weights (n3cli.store.noise_map)",
                              "source": {"file": os.path.basename(source), "name": src.info.name,
                                         "sha256": sha256(source), "training": src.info.extra.get("training")}}
    net = build_model(info.arch, info.args)
    state, old = net.state_dict(), src.net.state_dict()
    widened = [k for k in state if tuple(state[k].shape) != tuple(old[k].shape)]
    if len(widened) != 1 or state[widened[0]].dim() != 4:
        raise CheckpointError(f"{source}: cannot find the one first convolution to widen (got {widened})")
    for k, v in old.items():
        if k == widened[0]:
            w = torch.zeros_like(state[k])
            w[:, : v.shape[1]] = v
            state[k] = w
        else:
            state[k] = v.clone()
    net.load_state_dict(state)
    return LoadedModel(net.eval(), info, None)
