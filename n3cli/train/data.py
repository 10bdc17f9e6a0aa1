"""Training and validation images, read once into memory (batches are made from them on the
device: :mod:`.batches`)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..imaging.color import as_color
from ..io.folders import read_folder


def load_images(folders: list[str] | str, color: str | None, limit: int = 0) -> list[tuple[str, np.ndarray]]:
    """All images of the folders as (name, float32 H x W x C) in ``color`` (see
    :func:`~n3cli.imaging.color.as_color`: ``gray``, ``rgb``, ``y`` or None), the first ``limit``."""
    if isinstance(folders, (str, Path)):
        folders = [folders]
    out: list[tuple[str, np.ndarray]] = []
    for folder in folders:
        out += [(name, as_color(px, color)) for name, px in read_folder(folder, limit - len(out) if limit else 0)]
        if limit and len(out) >= limit:
            break
    return out
