"""Pose mAP (5/10/20 degrees) of robust estimation alone and of match networks."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from .geometry import (
    RANSAC_THRESHOLD,
    pose_error_deg,
    pose_map,
    recover_pose,
    sampson_distance,
    sym_epipolar_distance,
)
from .synthetic import Pair, make_pair, pair_tensor

MIN_SELECTED = 16  # a network keeps at least this many matches (its best scored) for the pose
TEST_SEED = 777  # the synthetic test set (training validates on seed 1234, the configs' data.val_seed)


def synthetic_set(n: int, matches: int = 1000, seed: int = 1234, outliers=(0.5, 0.95), noise_px=(0.0, 1.5)) -> list[Pair]:
    """The fixed synthetic test set: pair i made by ``default_rng([seed, i])``."""
    return [make_pair(np.random.default_rng([seed, i]), matches, outliers, noise_px) for i in range(n)]


def network_pose(net: torch.nn.Module, xa: np.ndarray, xb: np.ndarray, knn=None, verify: bool = True):
    """Score matches with ``net`` (interpolated with a kNN vote when ``knn``, a
    :class:`~n3cli.match.knn_vote.KnnScorer`, is given) and estimate the pose from the scores
    (:func:`pose_from_scores`). Returns (logits, (E, R, t, inliers) or None)."""
    if knn is not None:
        logits = knn.logits(net, xa, xb)
    else:
        x = torch.from_numpy(np.concatenate([xa, xb], 1).T[None].astype(np.float32))
        dev = next(net.parameters()).device
        with torch.no_grad():
            logits = net(x.to(dev))[0].float().cpu().numpy()
    return logits, pose_from_scores(xa, xb, logits, verify)


def pose_from_scores(xa: np.ndarray, xb: np.ndarray, logits: np.ndarray, verify: bool = True):
    """The pose from the matches a network keeps (logit > 0, at least the MIN_SELECTED best),
    estimated robustly. With ``verify``, robust estimation on all matches is a second hypothesis,
    and the one whose consistent matches (Sampson distance under the RANSAC threshold) have the
    larger summed inlier probability wins.

    Why: where nearly all matches are right, the networks keep a confident part of them only, and
    when that part lies on one plane (a wall, a facade) its pose is ambiguous; the matches left out
    tell the two apart. Where most matches are wrong, the hypothesis from all of them is supported
    by matches the network gives low probabilities, and loses."""
    keep = logits > 0
    if keep.sum() < MIN_SELECTED:
        keep = np.zeros_like(keep)
        keep[np.argsort(-logits)[:MIN_SELECTED]] = True
    chosen = recover_pose(xa, xb, keep)
    if not verify:
        return chosen
    p = 0.5 * (1.0 + np.tanh(0.5 * np.asarray(logits, np.float64)))  # the sigmoid, without overflow
    a, b = np.asarray(xa, np.float64), np.asarray(xb, np.float64)

    def support(r) -> float:
        return -1.0 if r is None else float(p[sampson_distance(a, b, r[0]) < RANSAC_THRESHOLD].sum())

    other = recover_pose(xa, xb)
    return other if support(other) > support(chosen) else chosen


def pose_errors(pairs: list[Pair], method: Any, verify: bool = True) -> np.ndarray:
    """Pose error (degrees; 180 where no pose is found) of each pair under ``method``: a network,
    a (network, KnnScorer) pair, or None (robust estimation on all matches). ``verify``: see
    :func:`pose_from_scores`."""
    net, knn = method if isinstance(method, tuple) else (method, None)
    errs = []
    for p in pairs:
        r = recover_pose(p.xa, p.xb) if net is None else network_pose(net, p.xa, p.xb, knn, verify)[1]
        errs.append(180.0 if r is None else pose_error_deg(r[1], r[2], p.R, p.t))
    return np.asarray(errs)


def evaluate_pairs(pairs: list[Pair], nets: dict[str, Any]) -> dict[str, dict[str, float]]:
    """mAP per method (see :func:`pose_errors` for what a method is)."""
    return {name: pose_map(pose_errors(pairs, method)) for name, method in nets.items()}


def paired_bootstrap(errors_a: np.ndarray, errors_b: np.ndarray, resamples: int = 2000, seed: int = 0,
                     thresholds: tuple[int, ...] = (5, 10, 20)) -> dict[str, dict[str, float]]:
    """mAP(a) - mAP(b) per threshold on the same pairs, with the 95% interval of that difference
    over ``resamples`` resamplings of the pairs: whether a gap is larger than the test set's noise."""
    ea, eb = np.asarray(errors_a, np.float64), np.asarray(errors_b, np.float64)
    if ea.shape != eb.shape or ea.ndim != 1 or not len(ea):
        raise ValueError("paired_bootstrap: two equally long, non-empty lists of errors are needed")
    idx = np.random.default_rng(seed).integers(0, len(ea), size=(resamples, len(ea)))
    out = {}
    for t in thresholds:
        edges = np.arange(5, t + 1, 5)
        # per pair, its contribution to mAP@t: the share of bins whose edge its error is below
        ca = (ea[:, None] < edges).mean(1)
        cb = (eb[:, None] < edges).mean(1)
        d = (ca - cb)[idx].mean(1)
        lo, hi = np.percentile(d, [2.5, 97.5])
        out[str(t)] = {"diff": float((ca - cb).mean()), "low": float(lo), "high": float(hi)}
    return out


__all__ = ["synthetic_set", "network_pose", "pose_from_scores", "pose_errors", "evaluate_pairs", "paired_bootstrap", "pair_tensor"]


def load_pairs_file(path: str | Path) -> list[dict[str, Any]]:
    """Pairs in the SuperGlue evaluation format: per line ``imgA imgB rotA rotB KA(9) KB(9) T_AB(16)``
    (row-major; x_B = R x_A + t), image paths relative to the file's folder."""
    from ..errors import N3Error
    from .pipeline import check_K

    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise N3Error(f"{path}: pairs file is not UTF-8 text") from None
    except OSError as e:
        raise N3Error(f"{path}: cannot read pairs file ({e.strerror})") from None
    out = []
    for n, line in enumerate(text.splitlines(), 1):
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
        Ka, Kb = check_K(nums[:9].reshape(3, 3), f"{path}:{n}"), check_K(nums[9:18].reshape(3, 3), f"{path}:{n}")
        R, t = T[:3, :3], T[:3, 3]
        if not (np.isfinite(T).all() and np.allclose(R @ R.T, np.eye(3), atol=1e-3) and np.linalg.norm(t) > 0):
            raise N3Error(f"{path}:{n}: the pose must be a finite rotation and a non-zero translation")
        out.append({"a": path.parent / parts[0], "b": path.parent / parts[1], "Ka": Ka, "Kb": Kb, "R": R, "t": t})
    if not out:
        raise N3Error(f"{path}: no pairs in it")
    return out


def real_pairs(path: str | Path, max_matches: int = 2000, ratio: float | None = 0.8) -> list[Pair]:
    """Each listed pair as SIFT matches (ratio test ``ratio``; None: nearest neighbours only)
    normalised with its intrinsics, labelled by the symmetric epipolar distance to its true pose."""
    from .geometry import essential
    from .pipeline import _uint8_gray, normalise, sift_matches
    from .synthetic import LABEL_THRESHOLD

    pairs = []
    for p in load_pairs_file(path):
        a, _ = _uint8_gray(p["a"])
        b, _ = _uint8_gray(p["b"])
        pa, pb = sift_matches(a, b, ratio=ratio, names=(str(p["a"]), str(p["b"])))
        pa, pb = pa[:max_matches], pb[:max_matches]
        t = p["t"] / max(np.linalg.norm(p["t"]), 1e-12)
        E = essential(p["R"], t)
        xa, xb = normalise(pa, p["Ka"]), normalise(pb, p["Kb"])
        labels = sym_epipolar_distance(xa, xb, E) < LABEL_THRESHOLD
        pairs.append(Pair(xa.astype(np.float32), xb.astype(np.float32), labels, p["R"], t, E))
    return pairs


def pairs_file(data: str | Path) -> Path:
    """``data`` itself, or the pairs file of a folder (its ``pairs.txt``, else its only ``.txt``)."""
    from ..errors import N3Error

    data = Path(data)
    if not data.is_dir():
        return data
    if (data / "pairs.txt").is_file():
        return data / "pairs.txt"
    found = sorted(data.glob("*.txt"))
    if len(found) != 1:
        raise N3Error(f"{data}: a folder of pairs needs a pairs.txt (or exactly one .txt file); found {len(found)} .txt files")
    return found[0]


def evaluate_match(nets: dict[str, Any], data: str | Path | None = None, pairs: int = 200, seed: int = TEST_SEED,
                   matches: int = 1000, outliers: tuple[float, float] = (0.5, 0.95),
                   ratio: float | None = 0.8) -> dict[str, Any]:
    """`n3 eval --task match`: mAP at 5/10/20 degrees for every method on the synthetic test set
    (``pairs`` pairs of ``seed``) or on a pairs file (or folder with one), whose SIFT matches pass
    the ratio test ``ratio`` (None: nearest neighbours only)."""
    if data is None:
        test = synthetic_set(pairs, matches, seed, outliers)
        name = f"synthetic (seed {seed}, {outliers[0]:.0%}-{outliers[1]:.0%} wrong matches)"
    else:
        path = pairs_file(data)
        test, name = real_pairs(path, ratio=ratio), str(path)
    res = evaluate_pairs(test, nets)
    inl = float(np.mean([p.labels.mean() if len(p.labels) else 0.0 for p in test]))  # a pair may have no matches
    return {"task": "match", "models": list(nets),
            "results": [{"data": name, "pairs": len(test), "inlier_fraction": round(inl, 4), "map": res}]}
