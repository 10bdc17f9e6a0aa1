"""Photo metadata carried from input to output: camera, exposure and capture time.

One representation, a ``{tag code: value}`` dict of the TIFF/EXIF tags in :data:`TAGS` (plain
Python values: str, int, float), written two ways: as TIFF tags in IFD0 (the TIFF/EP layout DNG
builds on, which exiftool, exiv2, LibRaw and darktable read) and as an EXIF block for JPEG and
PNG (via Pillow). Also the sRGB ICC profile that developed raw files carry.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import struct
from fractions import Fraction
from functools import lru_cache
from typing import Any

# code: (name, TIFF type, in EXIF's sub-IFD rather than IFD0)
TAGS: dict[int, tuple[str, str, bool]] = {
    270: ("ImageDescription", "s", False),
    271: ("Make", "s", False),
    272: ("Model", "s", False),
    274: ("Orientation", "H", False),
    305: ("Software", "s", False),
    306: ("DateTime", "s", False),
    315: ("Artist", "s", False),
    33432: ("Copyright", "s", False),
    33434: ("ExposureTime", "2I", True),
    33437: ("FNumber", "2I", True),
    34855: ("ISOSpeedRatings", "H", True),
    36867: ("DateTimeOriginal", "s", True),
    37386: ("FocalLength", "2I", True),
}
_EXIF_IFD = 0x8769


def exif_datetime(t: _dt.datetime) -> str:
    return t.strftime("%Y:%m:%d %H:%M:%S")


def clean_tags(tags: dict[int, Any]) -> dict[int, Any]:
    """The known tags with usable values: strings stripped and non-empty, numbers finite and > 0
    (LibRaw reports 0 for what a file does not say)."""
    out: dict[int, Any] = {}
    for code, value in tags.items():
        if code not in TAGS or value is None:
            continue
        kind = TAGS[code][1]
        if kind == "s":
            value = str(value).strip().strip("\x00").strip()
            if value:
                out[code] = value
        else:
            try:
                v = float(value)
            except (TypeError, ValueError):
                continue
            if v > 0 and v < 1e9:
                out[code] = int(round(v)) if kind == "H" else v
    return out


def _rational(v: float) -> tuple[int, int]:
    f = Fraction(v).limit_denominator(1000000)
    if f.numerator > 0xFFFFFFFF:  # a long exposure with a fine fraction: fewer digits
        f = Fraction(v).limit_denominator(1000)
    return f.numerator, f.denominator


def tiff_extratags(tags: dict[int, Any]) -> list[tuple]:
    """``tifffile`` extratags for IFD0 (all tags there, as TIFF/EP places them)."""
    out = []
    for code, value in sorted(clean_tags(tags).items()):
        kind = TAGS[code][1]
        if kind == "s":
            out.append((code, "s", 0, value, True))
        elif kind == "H":
            out.append((code, "H", 1, (min(int(value), 65535),), True))
        else:
            out.append((code, "2I", 1, _rational(value), True))
    return out


def exif_bytes(tags: dict[int, Any]) -> bytes | None:
    """An EXIF block (``Exif\\0\\0`` + TIFF structure) holding ``tags``; None when there are none."""
    from PIL import Image as PILImage
    from PIL.TiffImagePlugin import IFDRational

    tags = clean_tags(tags)
    if not tags:
        return None
    exif = PILImage.Exif()
    sub = exif.get_ifd(_EXIF_IFD)
    for code, value in tags.items():
        kind = TAGS[code][1]
        v = IFDRational(*_rational(value)) if kind == "2I" else value
        (sub if TAGS[code][2] else exif)[code] = v
    return exif.tobytes()  # Pillow's block already starts with "Exif\0\0"


def tags_from_exif(blob: bytes | None) -> dict[int, Any]:
    """The known tags of an EXIF block (IFD0 and the EXIF sub-IFD); {} when unreadable."""
    if not blob:
        return {}
    from PIL import Image as PILImage

    try:
        exif = PILImage.Exif()
        exif.load(blob[6:] if blob.startswith(b"Exif\x00\x00") else blob)
        found = {code: exif[code] for code in TAGS if not TAGS[code][2] and code in exif}
        sub = exif.get_ifd(_EXIF_IFD)
        found.update({code: sub[code] for code in TAGS if TAGS[code][2] and code in sub})
    except Exception:  # noqa: BLE001  (a broken EXIF block is dropped, never fatal)
        return {}
    return clean_tags(found)


def tags_from_tiff(tiff_tags: Any, skip: tuple[int, ...] = ()) -> dict[int, Any]:
    """The known tags of a ``tifffile`` page's tags, from IFD0 and its EXIF sub-IFD (IFD0 wins)."""
    found = {code: tiff_tags[code].value for code in TAGS if code in tiff_tags and code not in skip}
    exif = tiff_tags["ExifTag"].value if "ExifTag" in tiff_tags else {}
    if isinstance(exif, dict):
        for code, (name, _, _) in TAGS.items():
            if name in exif and code not in found and code not in skip:
                found[code] = exif[name]
    return clean_tags({code: (v[0] / v[1] if isinstance(v, tuple) and len(v) == 2 and v[1] else v)
                       for code, v in found.items()})


_ICC_DATE = slice(24, 36)  # the header's creation date and time: six big-endian uint16
_ICC_ID = slice(84, 100)  # the header's profile ID (an MD5 of the profile, or zeros)


@lru_cache(maxsize=1)
def srgb_icc() -> bytes:
    """An sRGB ICC profile (littleCMS's, through Pillow), for files developed to sRGB.

    littleCMS stamps the time it built the profile into the header; a fixed date instead keeps
    outputs reproducible: the same input gives the same bytes, whenever and wherever it runs.
    """
    from PIL import ImageCms

    icc = bytearray(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    icc[_ICC_DATE] = struct.pack(">6H", 2026, 1, 1, 0, 0, 0)
    if any(icc[_ICC_ID]):  # an ID over the old date would be wrong: recompute it as ICC.1 says
        body = bytearray(icc)
        body[44:48] = body[64:68] = bytes(4)  # profile flags and rendering intent
        body[_ICC_ID] = bytes(16)
        icc[_ICC_ID] = hashlib.md5(bytes(body)).digest()  # noqa: S324  (the format's checksum, not security)
    return bytes(icc)
