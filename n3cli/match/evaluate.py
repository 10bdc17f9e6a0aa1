"""Pose mAP (5/10/20 degrees) of robust estimation alone and of match networks."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from .geometry import pose_error_deg, pose_map, recover_pose
from .synthetic import Pair, make_pair, pair_tensor

MIN_SELECTED = 16  # a network keeps at least this many matches (its best scored) for the pose
TEST_SEED = 777  # the synthetic test set (training validates on seed 1234, the configs' data.val_seed)


def synthetic_set(n: int, matches: int = 1000, seed: int = 1234, outliers=(0.5, 0.95), noise_px=(0.0, 1.5)) -> list[Pair]:
    """The fixed synthetic test set: pair i made by ``default_rng([seed, i])``."""
    return [make_pair(np.random.default_rng([seed, i]), matches, outliers, noise_px) for i in range(n)]


def network_pose(net: torch.nn.Module, xa: np.ndarray, xb: np.ndarray, knn=None):
    """Score matches with ``net`` (interpolated with a kNN vote when ``knn``, a
    :class:`~n3cli.match.knn_vote.KnnScorer`, is given) and estimate the pose robustly from those
    it keeps (logit > 0, at least the MIN_SELECTED best). Returns (logits, (E, R, t, inliers) or None)."""
    if knn is not None:
        logits = knn.logits(net, xa, xb)
    else:
        x = torch.from_numpy(np.concatenate([xa, xb], 1).T[None].astype(np.float32))
        dev = next(net.parameters()).device
        with torch.no_grad():
            logits = net(x.to(dev))[0].float().cpu().numpy()
    keep = logits > 0
    if keep.sum() < MIN_SELECTED:
        keep = np.zeros_like(keep)
        keep[np.argsort(-logits)[:MIN_SELECTED]] = True
    return logits, recover_pose(xa, xb, keep)


def evaluate_pairs(pairs: list[Pair], nets: dict[str, Any]) -> dict[str, dict[str, float]]:
    """mAP per method: a network, a (network, KnnScorer) pair, or None (robust estimation on all matches)."""
    out = {}
    for name, method in nets.items():
        net, knn = method if isinstance(method, tuple) else (method, None)
        errs = []
        for p in pairs:
            if net is None:
                r = recover_pose(p.xa, p.xb)
            else:
                _, r = network_pose(net, p.xa, p.xb, knn)
            errs.append(180.0 if r is None else pose_error_deg(r[1], r[2], p.R, p.t))
        out[name] = pose_map(errs)
    return out


__all__ = ["synthetic_set", "network_pose", "evaluate_pairs", "pair_tensor"]


def load_pairs_file(path: str | Path) -> list[dict[str, Any]]:
    """Pairs in the SuperGlue evaluation format: per line ``imgA imgB rotA rotB KA(9) KB(9) T_AB(16)``
    (row-major; x_B = R x_A + t), image paths relative to the file's folder."""
    from ..errors import N3Error

    path = Path(path)
    out = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        parts = line.split()
        if not parts or parts[0].startswith("#"):
            continue
        if len(parts) != 38:
            raise N3Error(f"{path}:{n}: expected 38 fields (2 images, 2 rotations, 9 + 9 + 16 numbers), found {len(parts)}")
        try:
            nums = np.array(parts[4:], dtype=np.float64)
            rot = (int(parts[2]), int(parts[3]))
        except ValueError:
            raise N3Error(f"{path}:{n}: non-numeric intrinsics or pose") from None
        if rot != (0, 0):
            raise N3Error(f"{path}:{n}: rotated pairs (rotA/rotB != 0) are not supported yet")
        T = nums[18:].reshape(4, 4)
        out.append({"a": path.parent / parts[0], "b": path.parent / parts[1], "Ka": nums[:9].reshape(3, 3),
                    "Kb": nums[9:18].reshape(3, 3), "R": T[:3, :3], "t": T[:3, 3]})
    if not out:
        raise N3Error(f"{path}: no pairs in it")
    return out


def real_pairs(path: str | Path, max_matches: int = 2000) -> list[Pair]:
    """Each listed pair as SIFT matches normalised with its intrinsics (labels unknown: all False)."""
    from .geometry import essential
    from .pipeline import _uint8_gray, normalise, sift_matches

    pairs = []
    for p in load_pairs_file(path):
        a, _ = _uint8_gray(p["a"])
        b, _ = _uint8_gray(p["b"])
        pa, pb = sift_matches(a, b, names=(str(p["a"]), str(p["b"])))
        pa, pb = pa[:max_matches], pb[:max_matches]
        t = p["t"] / max(np.linalg.norm(p["t"]), 1e-12)
        pairs.append(Pair(normalise(pa, p["Ka"]).astype(np.float32), normalise(pb, p["Kb"]).astype(np.float32),
                          np.zeros(len(pa), bool), p["R"], t, essential(p["R"], t)))
    return pairs


def evaluate_match(nets: dict[str, Any], data: str | Path | None = None, pairs: int = 200, seed: int = TEST_SEED,
                   matches: int = 1000, outliers: tuple[float, float] = (0.5, 0.95)) -> dict[str, Any]:
    """`n3 eval --task match`: mAP at 5/10/20 degrees for every method on the synthetic test set
    (``pairs`` pairs of ``seed``) or on a pairs file."""
    if data is None:
        test = synthetic_set(pairs, matches, seed, outliers)
        name = f"synthetic (seed {seed}, {outliers[0]:.0%}-{outliers[1]:.0%} wrong matches)"
    else:
        test, name = real_pairs(data), str(data)
    res = evaluate_pairs(test, nets)
    return {"task": "match", "models": list(nets), "results": [{"data": name, "pairs": len(test), "map": res}]}
