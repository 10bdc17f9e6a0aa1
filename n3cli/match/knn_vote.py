"""kNN-augmented inlier classification for match networks (FACTS §9).

- :func:`embed` gives a network's per-match logits and unit-norm last hidden features.
- :func:`build_datastore` fills a :class:`~n3cli.match.datastore.Datastore` from training pairs.
- :func:`combine_logits` interpolates ``p = lam * p_knn + (1 - lam) * p_net`` (lam = 0: the
  network's logits, bit for bit).
- :func:`knn_weights` is the training-time reweighting ``(1 - p_knn(true label)) ** gamma``.
- :func:`tune` picks k and T (validation log-likelihood of p_knn), then lambda (validation pose mAP).
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import torch

from .datastore import Datastore, normalise, vote
from .synthetic import Pair

K_GRID = (8, 16, 32, 64)
T_GRID = (0.01, 0.03, 0.1, 0.3)
LAMBDA_GRID = (0.0, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0)


def embed(net: torch.nn.Module, xa: np.ndarray, xb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(logits ``(N,)``, unit-norm features ``(N, C)``) of one pair's matches."""
    x = torch.from_numpy(np.concatenate([xa, xb], 1).T[None].astype(np.float32))
    dev = next(net.parameters()).device
    with torch.no_grad():
        logits, feats = net(x.to(dev), return_features=True)
    return logits[0].float().cpu().numpy(), normalise(feats[0].T.float().cpu().numpy())


def build_datastore(net: torch.nn.Module, pairs: Iterable[tuple[int, Pair]], per_pair: int, seed: int = 0,
                    k: int = 16, temperature: float = 0.05, meta: dict[str, Any] | None = None) -> Datastore:
    """``per_pair`` random matches of each (pair id, pair), embedded by ``net`` in eval mode."""
    rng = np.random.default_rng(seed)
    keys, labels, groups = [], [], []
    was = net.training
    net.eval()
    for pid, p in pairs:
        _, f = embed(net, p.xa, p.xb)
        pick = rng.choice(len(f), size=min(per_pair, len(f)), replace=False)
        keys.append(f[pick])
        labels.append(p.labels[pick])
        groups.append(np.full(len(pick), pid))
    net.train(was)
    return Datastore(np.concatenate(keys), np.concatenate(labels), np.concatenate(groups), k, temperature, meta or {})


def combine_logits(logits: np.ndarray, p_knn: np.ndarray | None, lam: float) -> np.ndarray:
    """Logits of ``lam * p_knn + (1 - lam) * sigmoid(logits)``; ``logits`` itself when lam is 0."""
    if lam == 0 or p_knn is None:
        return logits
    p_net = 1.0 / (1.0 + np.exp(-logits.astype(np.float64)))
    p = np.clip(lam * p_knn + (1.0 - lam) * p_net, 1e-7, 1 - 1e-7)
    return np.log(p / (1.0 - p)).astype(np.float32)


def knn_weights(store: Datastore | None, feats: torch.Tensor, labels: torch.Tensor, groups: np.ndarray,
                gamma: float) -> torch.Tensor:
    """Per-match loss weights ``(1 - p_knn(true label)) ** gamma`` for features ``(B, C, N)`` and
    labels ``(B, N)`` of pairs ``groups`` (B ids; their own entries are not searched). Ones
    without a store."""
    if store is None or len(store) == 0:
        return torch.ones_like(labels)
    B, C, N = feats.shape
    q = feats.detach().transpose(1, 2).reshape(B * N, C).float().cpu().numpy()
    p = store.prob(q, exclude=np.repeat(np.asarray(groups), N))
    p = torch.from_numpy(p).view(B, N).to(labels.device)
    p_true = torch.where(labels > 0.5, p, 1.0 - p)
    return (1.0 - p_true).clamp(min=0.0) ** gamma


class KnnScorer:
    """A datastore plus its interpolation weight, applied to a network's outputs."""

    def __init__(self, store: Datastore, lam: float) -> None:
        self.store, self.lam = store, float(lam)

    def logits(self, net: torch.nn.Module, xa: np.ndarray, xb: np.ndarray) -> np.ndarray:
        logits, feats = embed(net, xa, xb)
        return combine_logits(logits, self.store.prob(feats) if self.lam else None, self.lam)


def tune(net: torch.nn.Module, store: Datastore, val: list[Pair]) -> dict[str, Any]:
    """Choose k and T by the mean log-likelihood of p_knn on the validation matches, then lambda by
    validation pose mAP at 10 degrees (ties: the smaller lambda). Sets them on ``store``. The
    result's ``gain`` (kNN on by default) needs mAP@10 up by at least one validation pair's worth
    (1 / pairs): a single pair crossing one 5-degree bin edge is noise, not a gain."""
    from .evaluate import evaluate_pairs

    emb = [embed(net, p.xa, p.xb) for p in val]
    q = np.concatenate([f for _, f in emb])
    y = np.concatenate([p.labels for p in val]).astype(bool)
    best = (-np.inf, store.k, store.temperature)
    sims, idx = store.search(q, max(K_GRID))  # one search serves every k
    for k in K_GRID:
        for t in T_GRID:
            p = np.clip(vote(sims, idx, store.labels, k, t), 1e-4, 1 - 1e-4)
            ll = float(np.mean(np.where(y, np.log(p), np.log(1 - p))))
            if ll > best[0]:
                best = (ll, k, t)
    store.k, store.temperature = best[1], best[2]
    maps = {}
    for lam in LAMBDA_GRID:
        maps[lam] = evaluate_pairs(val, {"n": (net, KnnScorer(store, lam))})["n"]
    lam = max(LAMBDA_GRID, key=lambda v: (round(maps[v]["10"], 6), -v))
    return {"k": store.k, "temperature": store.temperature, "lambda": lam, "val_loglik": best[0],
            "val_map": {str(v): maps[v] for v in LAMBDA_GRID}, "gain": has_gain(maps[lam]["10"], maps[0.0]["10"], len(val))}


def has_gain(with_knn: float, without: float, pairs: int) -> bool:
    """Whether validation mAP@10 rose by at least one pair's worth (see :func:`tune`)."""
    return with_knn - without >= 1.0 / pairs - 1e-9


def scorer_for(model_path, info, want: bool | None) -> tuple[KnnScorer | None, str | None]:
    """The kNN scorer a match model carries, and a warning for the user (or None).

    ``want``: True (the user asked: any problem is an error), False (off), None (the default:
    on when the model carries a datastore whose validation showed a gain; problems only warn).
    """
    from ..errors import CheckpointError
    from ..store.zoo import sha256
    from .datastore import datastore_path, load_datastore

    if want is False:
        return None, None
    cfg = info.extra.get("knn")
    if not cfg:
        if want:
            raise CheckpointError(f"{info.name}: this model carries no kNN datastore (train it with knn.store: true)")
        return None, None
    path = datastore_path(model_path).with_name(cfg["datastore"])
    try:
        if not path.is_file():
            raise CheckpointError(f"{path}: the model's kNN datastore is missing")
        if sha256(path) != cfg["sha256"]:
            raise CheckpointError(f"{path}: kNN datastore does not match its model (checksum differs)")
        store = load_datastore(path)
        if store.dim != cfg["dim"]:
            raise CheckpointError(f"{path}: kNN datastore has {store.dim}-d keys, the model {cfg['dim']}-d features")
    except CheckpointError as e:
        if want:
            raise
        return None, f"warning: {e}; matching without kNN"
    if want is None and not cfg.get("gain"):
        return None, None
    store.k, store.temperature = int(cfg["k"]), float(cfg["temperature"])
    return KnnScorer(store, float(cfg["lambda"])), None
