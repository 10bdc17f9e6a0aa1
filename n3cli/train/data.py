"""Training and validation images, read once into memory (batches are made from them on the
device: :mod:`.batches`)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..imaging.color import as_color
from ..io.folders import read_folder


def load_images(folders: list[str] | str, color: str | None, limit: int = 0,
                downsample: int = 1) -> list[tuple[str, np.ndarray]]:
    """All images of the folders as (name, float32 H x W x C) in ``color`` (see
    :func:`~n3cli.imaging.color.as_color`: ``gray``, ``rgb``, ``y`` or None), the first ``limit``,
    each :func:`box_downsample`-d by ``downsample``."""
    if isinstance(folders, (str, Path)):
        folders = [folders]
    out: list[tuple[str, np.ndarray]] = []
    for folder in folders:
        out += [(name, box_downsample(as_color(px, color), downsample))
                for name, px in read_folder(folder, limit - len(out) if limit else 0)]
        if limit and len(out) >= limit:
            break
    return out


def box_downsample(px: np.ndarray, factor: int) -> np.ndarray:
    """``px`` (H x W x C float32) averaged over ``factor`` x ``factor`` blocks; rows and columns
    that do not fill a block are dropped."""
    if factor == 1:
        return px
    h, w = px.shape[0] // factor, px.shape[1] // factor
    blocks = px[: h * factor, : w * factor].reshape(h, factor, w, factor, px.shape[2])
    return blocks.mean((1, 3), dtype=np.float64).astype(np.float32)
