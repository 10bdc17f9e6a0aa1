"""HEIF/HEIC files (what phones write by default) through pillow-heif's libheif.

HEIF stores its rotation as a transform of the image (``irot``/``imir``) that decoders must apply,
so pixels come back as displayed and the EXIF orientation is dropped (carrying it would turn the
photo twice). 10- and 12-bit images become uint16 over the full 16-bit range, so that a 10-bit
white is 1.0 like any other white; on writing, a uint16 source is stored with 10 bits.
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import Callable

import numpy as np

HEIF_EXTS = {".heic", ".heif"}


def read_heif(path: Path, check: Callable[[int, int], None]) -> tuple[np.ndarray, bytes | None, bytes | None]:
    """The primary image of a HEIF file: (H x W x C array, ICC profile, EXIF block without orientation)."""
    import pillow_heif

    from .metadata import exif_bytes, tags_from_exif

    heif = pillow_heif.open_heif(path, convert_hdr_to_8bit=False)
    check(*heif.size)  # the header only: nothing is decoded yet
    arr = np.asarray(heif)
    depth = int(heif.info.get("bit_depth") or 8)
    if arr.dtype == np.uint16 and depth < 16:  # libheif hands the samples shifted to the top bits
        top = (1 << depth) - 1
        arr = np.rint((arr >> (16 - depth)).astype(np.float64) * (65535 / top)).astype(np.uint16)
    icc = heif.info.get("icc_profile") or None
    tags = tags_from_exif(heif.info.get("exif"))
    tags.pop(274, None)
    exif = exif_bytes(tags)
    return arr, icc, exif


def encode_heif(arr: np.ndarray, icc: bytes | None, exif: bytes | None, quality: int) -> bytes:
    """HEIC bytes of an H x W x C (1-4) uint8 or uint16 array at ``quality`` (1-100); uint16 is
    stored with 10 bits, chroma at full resolution (4:4:4, as the JPEG outputs)."""
    import pillow_heif

    c = arr.shape[2]
    if c == 2:  # HEIF has no gray + alpha: gray is written as RGB
        arr = np.concatenate([np.repeat(arr[:, :, :1], 3, axis=2), arr[:, :, 1:]], axis=2)
        c = 4
    mode = {1: "L", 3: "RGB", 4: "RGBA"}[c]
    if arr.dtype == np.uint16:
        if c == 1:  # pillow-heif takes no 16-bit gray: stored as RGB
            arr, mode = np.repeat(arr, 3, axis=2), "RGB"
        mode += ";16"
    data = np.ascontiguousarray(arr[:, :, 0] if mode == "L" else arr)
    heif = pillow_heif.from_bytes(mode=mode, size=(arr.shape[1], arr.shape[0]), data=data.tobytes())
    kw = {}
    if icc:
        kw["icc_profile"] = icc
    if exif:
        kw["exif"] = exif
    buf = io.BytesIO()
    heif.save(buf, quality=int(quality), chroma=444, **kw)
    return buf.getvalue()
