"""Real camera JPEGs from raw files: a Bayer raw file developed as a camera develops its own JPEG
(LibRaw's defaults: the camera's white balance, AHD demosaicing, auto brightness, sRGB tone curve,
8 bits) and compressed at a JPEG quality. The noise in the result is a real sensor's after a
real development, which no synthesis reproduces exactly: what the no-reference measure of
:mod:`n3cli.eval.flat` is run on."""
from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np

from ..errors import ImageError


def parse_crop(text: str | None) -> tuple[int, int] | None:
    """``"1000x800"`` -> (1000, 800): the width and height of a centre crop; None or "" -> None."""
    if not text:
        return None
    parts = str(text).lower().split("x")
    if len(parts) != 2 or not all(p.strip().isdigit() and int(p) >= 48 for p in parts):
        raise ValueError(f"crop {text!r}: give WIDTHxHEIGHT, each at least 48, such as 1000x800")
    return int(parts[0]), int(parts[1])


def centre_crop(px: np.ndarray, crop: tuple[int, int] | None) -> np.ndarray:
    """The centre ``crop`` (width, height) of ``px``, or all of a side that is smaller."""
    if crop is None:
        return px
    H, W = px.shape[:2]
    w, h = min(crop[0], W), min(crop[1], H)
    y, x = (H - h) // 2, (W - w) // 2
    return px[y : y + h, x : x + w]


def camera_jpeg(path: str | os.PathLike, quality: int = 92, crop: tuple[int, int] | None = None) -> np.ndarray:
    """The Bayer raw file ``path`` developed by LibRaw's defaults, centre-cropped to ``crop`` and
    JPEG-compressed at ``quality`` (4:2:0, as cameras and phones save), decoded again: float32
    H x W x 3 in [0, 1]. ImageError naming the file for anything but a Bayer raw file."""
    import rawpy
    from PIL import Image as PILImage

    from .raw import read_raw

    path = Path(path)
    read_raw(path)  # the checks and one-line errors of the raw path: not raw, not Bayer, truncated
    if not 1 <= int(quality) <= 100:
        raise ValueError(f"JPEG quality {quality}: give 1-100")
    with rawpy.imread(str(path)) as r:
        rgb = r.postprocess(use_camera_wb=True, output_bps=8)
    rgb = np.ascontiguousarray(centre_crop(rgb, crop))
    buf = io.BytesIO()
    PILImage.fromarray(rgb).save(buf, "JPEG", quality=int(quality), subsampling=2)
    buf.seek(0)
    try:
        with PILImage.open(buf) as im:
            return np.asarray(im.convert("RGB"), np.float32) / 255.0
    except OSError as e:  # (never expected: Pillow reading its own output)
        raise ImageError(f"{path}: the developed JPEG could not be read back ({e})") from None
