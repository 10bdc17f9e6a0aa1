"""Architecture registry: a model is a registered architecture name plus its arguments."""
from __future__ import annotations

import inspect
from typing import Any, Callable

import torch
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


MAX_ARG = 1024  # no size argument of a network here (features, depth, channels, ...) needs more
MAX_PARAMETERS = 50_000_000  # the shipped models have 0.1-0.7 M; a file asking for more is a mistake or an attack


def build_model(arch: str, args: dict[str, Any] | None = None) -> nn.Module:
    """Instantiate a registered architecture; unknown names or arguments, and sizes past
    :data:`MAX_ARG` or :data:`MAX_PARAMETERS`, raise CheckpointError before anything is allocated."""
    if not isinstance(arch, str) or arch not in ARCHITECTURES:
        raise CheckpointError(f"unknown architecture {arch!r} (known: {', '.join(sorted(ARCHITECTURES))})")
    if args is not None and not isinstance(args, dict):
        raise CheckpointError(f"architecture {arch!r}: its arguments must be a mapping, got {type(args).__name__}")
    fn = ARCHITECTURES[arch]
    args = dict(args or {})
    params = inspect.signature(fn).parameters
    bad = sorted(set(args) - set(params))
    if bad:
        raise CheckpointError(f"architecture {arch!r} takes no argument(s) {', '.join(map(str, bad))}")
    for name, value in args.items():
        want_bool = isinstance(params[name].default, bool)
        if want_bool:
            if not isinstance(value, bool):
                raise CheckpointError(f"architecture {arch!r}: {name} must be true or false, got {value!r}")
        elif not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_ARG:
            raise CheckpointError(f"architecture {arch!r}: {name} must be a whole number from 0 to {MAX_ARG}, "
                                  f"got {value!r}")
    try:
        with torch.device("meta"):  # count the parameters without allocating them
            size = sum(p.numel() for p in fn(**args).parameters())
        if size > MAX_PARAMETERS:
            raise CheckpointError(f"architecture {arch!r} with {args} has {size:,} parameters; "
                                  f"at most {MAX_PARAMETERS:,} are accepted")
        return fn(**args)
    except (TypeError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"architecture {arch!r}: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
