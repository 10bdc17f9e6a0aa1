"""Side-by-side crops (``--compare``) so a person can judge a result at 100%."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np


def side_by_side(before: np.ndarray, after: np.ndarray, size: int = 512, gap: int = 8) -> np.ndarray:
    """The centre ``size`` x ``size`` crop of ``before`` and of ``after`` (both H x W x C float in
    [0, 1], the same shape), left and right of a white gap; H x (2*size + gap) x C."""
    if before.shape != after.shape:
        raise ValueError(f"shapes differ: {before.shape} and {after.shape}")
    before, after = centre_crop(before, size), centre_crop(after, size)
    sep = np.ones((before.shape[0], gap, before.shape[2]), np.float32)
    return np.concatenate([before, sep, after], axis=1).clip(0, 1).astype(np.float32)


def centre_crop(a: np.ndarray, size: int = 512) -> np.ndarray:
    """The centre ``size`` x ``size`` of ``a`` (all of a side shorter than that), a view."""
    h, w = a.shape[:2]
    ch, cw = min(size, h), min(size, w)
    y, x = (h - ch) // 2, (w - cw) // 2
    return a[y : y + ch, x : x + cw]


def enlargement_crops(small: np.ndarray, big: np.ndarray, size: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """The centre of ``big`` (``small`` enlarged), at most ``size`` px a side, and the same region
    of ``small`` enlarged bicubically to ``big``'s size: what an enlargement adds over bicubic,
    without enlarging all of ``small`` a second time."""
    from ..imaging.resize import resize_to

    H, W = big.shape[:2]
    ch, cw = min(size, H), min(size, W)
    y, x = (H - ch) // 2, (W - cw) // 2
    before = resize_to(small.astype(np.float32), H, W, region=(y, y + ch, x, x + cw))
    return before.clip(0, 1), np.asarray(big[y : y + ch, x : x + cw], np.float32)


def compare_path(dst: str | os.PathLike) -> str:
    """Where the comparison of output ``dst`` goes: ``<dst without extension>.compare.png``."""
    root, _ = os.path.splitext(os.fspath(dst))
    return root + ".compare.png"


def compare_target(src: str | os.PathLike, dst: str | os.PathLike, overwrite: bool = False) -> tuple[str, bool]:
    """The comparison's path for input ``src`` and output ``dst``, and whether to write it: the
    rules of every output (never the input: an error; an existing file only with ``overwrite``)."""
    from ..errors import N3Error
    from ..io.folders import same_file

    path = compare_path(dst)
    if same_file(Path(src), Path(path)):
        raise N3Error(f"{src}: --compare would write {path}, which is the input; choose another -o")
    return path, overwrite or not os.path.exists(path)


def write_compare(path: str | os.PathLike, before: np.ndarray, after: np.ndarray, size: int = 512) -> str:
    """Write the side-by-side crop to ``path`` as an 8-bit PNG (atomically); returns the path."""
    from ..io.images import Image, write_image

    write_image(path, Image(side_by_side(before, after, size), np.dtype(np.uint8)))
    return str(path)
