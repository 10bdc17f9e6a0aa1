"""A kNN datastore of per-match embeddings and the kNN inlier probability (FACTS §9).

Entries are L2-normalised last hidden features of a match network with their inlier labels and
the id of the image pair they come from (so a query never votes for itself during training).
Search is faiss inner product: exact for stores up to ``EXACT_MAX`` entries, an IVF index above.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import CheckpointError

EXACT_MAX = 200_000  # above this many entries, search an IVF index instead of all of them
FORMAT = 1


def normalise(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm, float32."""
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


@dataclass
class Datastore:
    """Keys ``(N, C)`` (unit rows, stored float16), labels ``(N,)`` (1 = inlier), pair ids ``(N,)``."""

    keys: np.ndarray
    labels: np.ndarray
    groups: np.ndarray
    k: int = 16
    temperature: float = 0.05
    meta: dict[str, Any] = field(default_factory=dict)
    _index: Any = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.keys = np.ascontiguousarray(self.keys, dtype=np.float16)
        self.labels = np.asarray(self.labels, dtype=np.uint8).ravel()
        self.groups = np.asarray(self.groups, dtype=np.int64).ravel()
        if not (len(self.keys) == len(self.labels) == len(self.groups)) or self.keys.ndim != 2:
            raise ValueError("keys, labels and groups must describe the same entries")

    def __len__(self) -> int:
        return len(self.keys)

    @property
    def dim(self) -> int:
        return int(self.keys.shape[1])

    def index(self):
        """The faiss index over the keys (built once)."""
        if self._index is None:
            import faiss

            keys = self.keys.astype(np.float32)
            if len(keys) <= EXACT_MAX:
                index = faiss.IndexFlatIP(self.dim)
            else:
                nlist = int(4 * np.sqrt(len(keys)))
                index = faiss.IndexIVFFlat(faiss.IndexFlatIP(self.dim), self.dim, nlist, faiss.METRIC_INNER_PRODUCT)
                index.train(keys)
                index.nprobe = 16
            index.add(keys)
            self._index = index
        return self._index

    def search(self, queries: np.ndarray, k: int, exclude: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Similarities and entry indices ``(M, k)`` of each query's k nearest keys, best first;
        with ``exclude`` (one pair id per query), entries of the query's own pair are skipped."""
        q = normalise(queries)
        k = min(k, len(self))
        if exclude is None:
            sims, idx = self.index().search(q, k)
            return sims, idx
        worst = int(np.bincount(self.groups - self.groups.min()).max()) if len(self) else 0
        kk = min(k + worst, len(self))
        sims, idx = self.index().search(q, kk)
        own = (idx < 0) | (self.groups[np.maximum(idx, 0)] == np.asarray(exclude)[:, None])
        order = np.argsort(own, axis=1, kind="stable")[:, :k]  # keep the best k not of the own pair
        sims, idx = np.take_along_axis(sims, order, 1), np.take_along_axis(idx, order, 1)
        dropped = np.take_along_axis(own, order, 1)
        return np.where(dropped, -np.inf, sims), np.where(dropped, -1, idx)

    def prob(self, queries: np.ndarray, k: int | None = None, temperature: float | None = None,
             exclude: np.ndarray | None = None) -> np.ndarray:
        """kNN probability that each query is an inlier: the top-k labels weighted by
        ``exp(similarity / T)``, normalised. 0.5 where no neighbour is left."""
        k = k or self.k
        sims, idx = self.search(queries, k, exclude)
        return vote(sims, idx, self.labels, k, temperature or self.temperature)


def vote(sims: np.ndarray, idx: np.ndarray, labels: np.ndarray, k: int, temperature: float) -> np.ndarray:
    """p(inlier) from search results ``(M, >= k)``, best first (index -1: no neighbour): the
    first k labels weighted by ``exp(similarity / T)``, normalised; 0.5 where none is left."""
    sims, idx = sims[:, :k], idx[:, :k]
    valid = idx >= 0
    top = np.where(valid, sims, -np.inf).max(1, keepdims=True)
    w = np.where(valid, np.exp((sims - np.where(np.isfinite(top), top, 0.0)) / temperature), 0.0)
    votes = (w * labels[np.maximum(idx, 0)]).sum(1)
    total = w.sum(1)
    return np.where(total > 0, votes / np.maximum(total, 1e-30), 0.5).astype(np.float32)


def save_datastore(path: str | os.PathLike, store: Datastore) -> None:
    """Write ``store`` as safetensors (keys float16, labels, pair ids) with its settings as metadata. Atomic."""
    from safetensors.numpy import save_file

    from ..io.atomic import atomic_write

    meta = {"n3cli.knn": json.dumps({"format": FORMAT, "k": store.k, "temperature": store.temperature,
                                     "dim": store.dim, **store.meta})}
    tensors = {"keys": store.keys, "labels": store.labels, "groups": store.groups}
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=meta))


def load_datastore(path: str | os.PathLike) -> Datastore:
    """Read a datastore file; CheckpointError (one line) when it is missing or not one."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such kNN datastore")
    try:
        with safe_open(str(path), "np") as f:
            meta = json.loads((f.metadata() or {})["n3cli.knn"])
            t = {k: f.get_tensor(k) for k in ("keys", "labels", "groups")}
    except Exception as e:  # noqa: BLE001  (any unreadable or foreign file)
        raise CheckpointError(f"{path}: not an n3 kNN datastore ({type(e).__name__})") from None
    if meta.get("format") != FORMAT or t["keys"].shape[1:] != (meta.get("dim"),):
        raise CheckpointError(f"{path}: kNN datastore format or size does not match its header")
    extra = {k: v for k, v in meta.items() if k not in ("format", "k", "temperature", "dim")}
    return Datastore(t["keys"], t["labels"], t["groups"], int(meta["k"]), float(meta["temperature"]), extra)


def datastore_path(model_path: str | os.PathLike) -> Path:
    """Where a model's datastore lives: ``NAME.safetensors`` -> ``NAME.knn.safetensors``."""
    p = Path(model_path)
    return p.with_name(p.name[: -len(".safetensors")] + ".knn.safetensors" if p.name.endswith(".safetensors")
                       else p.name + ".knn.safetensors")
