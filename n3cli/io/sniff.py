"""What a file is from its bytes, for data that comes without a name (standard input)."""
from __future__ import annotations

import os
from pathlib import Path

_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", ".png"),
    (b"\xff\xd8\xff", ".jpg"),
    (b"BM", ".bmp"),
)
_HEIF_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"mif1", b"msf1", b"hevc"}


def guess_ext(path: str | os.PathLike) -> str:
    """The extension n3 reads the file at ``path`` by: ``.png``, ``.jpg``, ``.bmp``, ``.webp``,
    ``.heic`` or ``.tif`` for images; ``.dng``, or ``.raw`` for other camera raw files (LibRaw
    reads those by their content). A TIFF-based raw file (NEF, CR2, KDC, ...) is told from a TIFF
    image by its structure (:func:`_tiff_kind`), then by LibRaw opening it; what is none of these
    is tried as a raw file."""
    with open(path, "rb") as f:
        head = f.read(32)
    for magic, ext in _MAGIC:
        if head.startswith(magic):
            return ext
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return ".webp"
    if head[4:8] == b"ftyp" and head[8:12] in _HEIF_BRANDS:
        return ".heic"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return _tiff_kind(Path(path), head)
    return ".raw"


def _tiff_kind(path: Path, head: bytes) -> str:
    """``.dng``, ``.raw`` or ``.tif`` for a file in TIFF's container."""
    import tifffile

    from .native_stderr import quiet_logger

    try:
        with quiet_logger("tifffile"), tifffile.TiffFile(path) as tf:
            page = tf.pages[0]
            if 50706 in page.tags:  # DNGVersion
                return ".dng"
            # a camera's raw file in TIFF's clothes (NEF, ARW, KDC, PEF, ...): its first image a
            # preview with the raw data in a SubIFD, or raw data in the camera maker's own
            # compression; LibRaw alone would take any plain 16-bit gray TIFF for a mosaic
            vendor = page.compression not in (1, 5, 7, 8, 32773, 32946, 34925, 50000, 50001)
            camera = 271 in page.tags and (330 in page.tags or bool(page.subfiletype & 1) or vendor)
    except Exception:
        return ".raw"  # not a TIFF tifffile reads: LibRaw may
    return ".raw" if head[8:10] == b"CR" or (camera and _libraw_reads(path)) else ".tif"


def _libraw_reads(path: Path) -> bool:
    import rawpy

    from .native_stderr import captured_stderr

    try:
        with captured_stderr(), rawpy.imread(str(path)):
            return True
    except Exception:
        return False
