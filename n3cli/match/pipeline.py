"""`n3 match`: SIFT matches between two photos, scored by a match network, and the relative pose."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import N3Error
from ..imaging.color import to_gray
from ..io.images import read_image

FOCAL_GUESS = 1.2  # focal length in units of the longer image side when nothing better is known


def _uint8_gray(path: str | os.PathLike) -> tuple[np.ndarray, Any]:
    img = read_image(path)
    return np.clip(np.rint(to_gray(img.pixels)[:, :, 0] * 255), 0, 255).astype(np.uint8), img


def sift_matches(a: np.ndarray, b: np.ndarray, max_features: int = 2000, ratio: float | None = 0.8,
                 names: tuple[str, str] = ("A", "B")) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates ``(N, 2)`` of ratio-test SIFT matches between two uint8 gray images;
    ``ratio=None``: every keypoint of A with its nearest neighbour in B (CNNet's setting, mostly wrong)."""
    import cv2

    sift = cv2.SIFT_create(nfeatures=max_features)
    ka, da = sift.detectAndCompute(a, None)
    kb, db = sift.detectAndCompute(b, None)
    for name, k in zip(names, (ka, kb)):
        if k is None or len(k) < 8:
            raise N3Error(f"{name}: no usable features found (blank or featureless image)")
    pairs = cv2.BFMatcher(cv2.NORM_L2).knnMatch(da, db, k=2)
    good = [m[0] for m in pairs if m and (ratio is None or len(m) == 2 and m[0].distance < ratio * m[1].distance)]
    pa = np.array([ka[m.queryIdx].pt for m in good], dtype=np.float64).reshape(-1, 2)
    pb = np.array([kb[m.trainIdx].pt for m in good], dtype=np.float64).reshape(-1, 2)
    return pa, pb


def read_intrinsics(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """K for both images from a file: 9 numbers (shared) or 18 (A then B), whitespace- or
    comma-separated, or JSON ``{"K": ...}`` / ``{"K_a": ..., "K_b": ...}``."""
    try:
        text = Path(path).read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise N3Error(f"{path}: intrinsics file is not UTF-8 text") from None
    try:
        d = json.loads(text)
    except json.JSONDecodeError:
        d = None
    try:
        if isinstance(d, dict):
            vals = np.array(list(np.ravel(d["K_a"])) + list(np.ravel(d["K_b"])) if "K_a" in d else np.ravel(d["K"]),
                            dtype=np.float64)
        else:
            vals = np.array(text.replace(",", " ").split(), dtype=np.float64)
    except (KeyError, TypeError, ValueError):
        raise N3Error(f"{path}: intrinsics must be 9 or 18 numbers (3x3 K, row-major), or JSON "
                      '{"K": [[...]]} / {"K_a": ..., "K_b": ...}') from None
    if vals.size == 9:
        return check_K(vals.reshape(3, 3), str(path)), check_K(vals.reshape(3, 3), str(path))
    if vals.size == 18:
        return check_K(vals[:9].reshape(3, 3), str(path)), check_K(vals[9:].reshape(3, 3), str(path))
    raise N3Error(f"{path}: intrinsics must be 9 or 18 numbers (3x3 K, row-major), found {vals.size}")


def check_K(K: np.ndarray, where: str) -> np.ndarray:
    """A usable camera matrix: finite, focal lengths > 0 and under 10^6 px, last row (0, 0, 1)."""
    K = np.asarray(K, dtype=np.float64)
    ok = (K.shape == (3, 3) and np.isfinite(K).all() and np.abs(K).max() < 1e6 and K[0, 0] > 0 and K[1, 1] > 0
          and np.allclose(K[2], [0, 0, 1]))
    if not ok:
        raise N3Error(f"{where}: not a camera matrix (needs finite values, focal lengths > 0 and < 1e6 px, "
                      f"last row 0 0 1): {np.array2string(np.ravel(K), precision=4, max_line_width=200)}")
    return K


def exif_focal_px(path: str | os.PathLike, w: int, h: int) -> float | None:
    """Focal length in pixels from EXIF FocalLengthIn35mmFilm (36 mm = the longer side), if present."""
    try:
        from PIL import Image

        with Image.open(path) as im:
            exif = im.getexif()
            f35 = exif.get_ifd(0x8769).get(0xA405) or exif.get(0xA405)
    except Exception:  # noqa: BLE001  (no or broken EXIF: fall back to the guess)
        return None
    return float(f35) / 36.0 * max(w, h) if f35 else None


def intrinsics(path: str | os.PathLike, w: int, h: int, focal: float | None) -> tuple[np.ndarray, str]:
    """K from --focal, else EXIF, else the documented guess; and where it came from."""
    src = "option"
    if focal is None:
        focal = exif_focal_px(path, w, h)
        src = "exif"
    if focal is None:
        focal, src = FOCAL_GUESS * max(w, h), "guess"
    return np.array([[focal, 0, (w - 1) / 2], [0, focal, (h - 1) / 2], [0, 0, 1]], dtype=np.float64), src


def normalise(p: np.ndarray, K: np.ndarray) -> np.ndarray:
    h = np.concatenate([p, np.ones((len(p), 1))], 1) @ np.linalg.inv(K).T
    return h[:, :2] / h[:, 2:]


def match_images(path_a: str | os.PathLike, path_b: str | os.PathLike, net=None, model_name: str | None = None,
                 K: tuple[np.ndarray, np.ndarray] | None = None, focal: float | None = None,
                 max_matches: int = 2000, max_features: int = 2000, knn=None) -> dict[str, Any]:
    """The whole `n3 match` computation; returns the JSON-ready result (see docs/usage.md).
    ``knn``: a :class:`~n3cli.match.knn_vote.KnnScorer` interpolated with the network's scores."""
    from .evaluate import network_pose
    from .geometry import recover_pose

    a, img_a = _uint8_gray(path_a)
    b, img_b = _uint8_gray(path_b)
    pa, pb = sift_matches(a, b, max_features, names=(str(path_a), str(path_b)))
    if len(pa) < 8:
        raise N3Error(f"{path_a}, {path_b}: only {len(pa)} matches; at least 8 are needed for a pose")
    if a.shape == b.shape and np.median(np.linalg.norm(pa - pb, axis=1)) < 0.5:
        raise N3Error(f"{path_a}, {path_b}: the two images are the same view (no motion between them to estimate)")
    pa, pb = pa[:max_matches], pb[:max_matches]
    (ha, wa), (hb, wb) = a.shape, b.shape
    if K is not None:
        Ka, Kb = K
        src = "file"
    else:
        Ka, src_a = intrinsics(path_a, wa, ha, focal)
        Kb, src_b = intrinsics(path_b, wb, hb, focal)
        src = src_a if src_a == src_b else f"{src_a}/{src_b}"
    xa, xb = normalise(pa, Ka), normalise(pb, Kb)
    if net is not None:
        logits, pose = network_pose(net, xa.astype(np.float32), xb.astype(np.float32), knn)
        scores = 1.0 / (1.0 + np.exp(-logits))
    else:
        pose, scores = recover_pose(xa, xb), None
    if pose is None:
        raise N3Error(f"{path_a}, {path_b}: no pose found (too few consistent matches)")
    E, R, t, inl = pose
    F = np.linalg.inv(Kb).T @ E @ np.linalg.inv(Ka)
    return {
        "image_a": str(path_a), "image_b": str(path_b), "size_a": [wa, ha], "size_b": [wb, hb],
        "intrinsics": {"K_a": Ka.tolist(), "K_b": Kb.tolist(), "source": src},
        "model": model_name, "knn": None if knn is None else {"lambda": knn.lam, "k": knn.store.k,
                                                              "temperature": knn.store.temperature},
        "num_matches": int(len(pa)), "num_inliers": int(inl.sum()),
        "keypoints_a": np.round(pa, 3).tolist(), "keypoints_b": np.round(pb, 3).tolist(),
        "matches": [[i, i] for i in range(len(pa))],
        "scores": None if scores is None else np.round(scores, 5).tolist(),
        "inliers": inl.tolist(), "E": E.tolist(), "F": (F / np.linalg.norm(F)).tolist(), "R": R.tolist(),
        "t": t.tolist(),
    }


def draw_matches(res: dict[str, Any], dst: str | os.PathLike, max_outliers: int = 300) -> None:
    """Side-by-side image: inliers in green, (a sample of) outliers in red."""
    import cv2

    from ..io.atomic import atomic_write

    a, _ = _uint8_gray(res["image_a"])
    b, _ = _uint8_gray(res["image_b"])
    h = max(a.shape[0], b.shape[0])
    canvas = np.zeros((h, a.shape[1] + b.shape[1], 3), np.uint8)
    canvas[: a.shape[0], : a.shape[1]] = a[:, :, None]
    canvas[: b.shape[0], a.shape[1] :] = b[:, :, None]
    pa, pb, inl = np.array(res["keypoints_a"]), np.array(res["keypoints_b"]), np.array(res["inliers"])
    out_idx = np.flatnonzero(~inl)[:max_outliers]
    for idx, colour in ((out_idx, (0, 0, 255)), (np.flatnonzero(inl), (0, 200, 0))):
        for i in idx:
            p = (int(round(pa[i, 0])), int(round(pa[i, 1])))
            q = (int(round(pb[i, 0])) + a.shape[1], int(round(pb[i, 1])))
            cv2.line(canvas, p, q, colour, 1, cv2.LINE_AA)
    ok, data = cv2.imencode(Path(dst).suffix or ".png", canvas)
    if not ok:
        raise N3Error(f"{dst}: cannot encode the visualisation")
    atomic_write(dst, lambda tmp: Path(tmp).write_bytes(data.tobytes()))
