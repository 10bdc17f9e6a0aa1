"""Weight-space interpolation of a fine-tuned model with the model it was fine-tuned from.

Fine-tuning on a new kind of data (camera noise) costs a network some of what it knew (Gaussian
noise). Averaging the two networks' weights, ``alpha * tuned + (1 - alpha) * base``, can keep much
of both, and on data unlike either training set beat both (Wortsman et al., "Robust fine-tuning of
zero-shot models", CVPR 2022: WiSE-FT). It only makes sense for two networks of one architecture
where one started from the other. Measure a mix before trusting it: for n3net-color-real it beat
both ends on real sensor noise and fell below both on Gaussian noise (weights/README.md).
"""
from __future__ import annotations

import os
from pathlib import Path

from ..errors import CheckpointError
from .checkpoint import LoadedModel, load_model
from .zoo import sha256


def interpolate_models(base: str | os.PathLike, tuned: str | os.PathLike, alpha: float) -> LoadedModel:
    """``tuned``'s network with weights ``alpha * tuned + (1 - alpha) * base``, and ``tuned``'s
    description with the interpolation recorded in its training record and no metrics.

    Floating-point tensors (weights, biases, batch-norm running statistics) are interpolated;
    integer ones (batch-norm step counters) are taken from ``tuned``. Raises
    :class:`~n3cli.errors.CheckpointError` when the two files do not hold one architecture.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    b, t = load_model(base), load_model(tuned)
    if (b.info.arch, b.info.args, b.info.task, b.info.color) != (t.info.arch, t.info.args, t.info.task, t.info.color):
        raise CheckpointError(f"{tuned}: not the architecture of {base} ({t.info.arch} {t.info.args} "
                              f"vs {b.info.arch} {b.info.args})")
    sb, st = b.net.state_dict(), t.net.state_dict()
    mixed = {}
    for k, v in st.items():
        if v.is_floating_point():
            # in float64 so that alpha = 0 or 1 gives either file's weights bit for bit
            mixed[k] = (alpha * v.double() + (1.0 - alpha) * sb[k].double()).to(v.dtype)
        else:
            mixed[k] = v.clone()
    t.net.load_state_dict(mixed)
    t.info.extra.pop("metrics", None)  # measured on the tuned network, not on the mix
    t.info.extra["training"] = {
        "method": "weight interpolation (WiSE-FT): alpha * tuned + (1 - alpha) * base",
        "alpha": alpha,
        "base": _source(b),
        "tuned": _source(t),
    }
    t.path = None
    return t


def _source(m: LoadedModel) -> dict:
    assert m.path is not None
    return {"file": Path(m.path).name, "name": m.info.name, "sha256": sha256(m.path),
            "training": m.info.extra.get("training")}

