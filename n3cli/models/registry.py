"""Architecture registry: a model is a registered architecture name plus its arguments."""
from __future__ import annotations

import inspect
from typing import Any, Callable

from torch import nn

from ..errors import CheckpointError
from .cnnet import CNNet
from .nets import N3Net

ARCHITECTURES: dict[str, Callable[..., nn.Module]] = {}


def register(name: str) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator: make ``fn(**args)`` buildable as architecture ``name``."""

    def deco(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in ARCHITECTURES:
            raise ValueError(f"architecture {name!r} registered twice")
        ARCHITECTURES[name] = fn
        return fn

    return deco


register("n3net")(N3Net)


@register("dncnn")
def dncnn(in_channels: int = 1, out_channels: int = 1, features: int = 64, depth: int = 17) -> N3Net:
    """Plain DnCNN (Zhang et al. 2017): one residual stage, no N³ block."""
    return N3Net(in_channels, out_channels, features=features, depth=depth, stages=1)


register("cnnet")(CNNet)


def build_model(arch: str, args: dict[str, Any] | None = None) -> nn.Module:
    """Instantiate a registered architecture; unknown names or arguments raise CheckpointError."""
    if arch not in ARCHITECTURES:
        raise CheckpointError(f"unknown architecture {arch!r} (known: {', '.join(sorted(ARCHITECTURES))})")
    fn = ARCHITECTURES[arch]
    args = dict(args or {})
    allowed = set(inspect.signature(fn).parameters)
    bad = sorted(set(args) - allowed)
    if bad:
        raise CheckpointError(f"architecture {arch!r} takes no argument(s) {', '.join(bad)}")
    try:
        return fn(**args)
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"architecture {arch!r}: {e}") from None
