"""Camera raw files: the Bayer mosaic and what is needed to write it back (via rawpy/LibRaw).

A :class:`RawImage` holds the visible mosaic normalised to [0, 1] by the file's own per-channel
black levels and white level, its 2x2 CFA pattern (``"RGGB"``, ``"GRBG"``, ...) and the colour
metadata a developer needs. :func:`pack` aligns any of the four Bayer layouts to RGGB (by
dropping at most one leading row and column) and packs the mosaic into 4 half-resolution planes;
:func:`unpack` undoes it exactly. :func:`write_dng` writes a mosaic as a DNG that rawpy (and so
darktable, RawTherapee, Lightroom) reads with the same pattern and levels.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import ImageError

RAW_EXTS = {".dng", ".cr2", ".cr3", ".crw", ".nef", ".nrw", ".arw", ".srf", ".sr2", ".raf", ".orf", ".rw2",
            ".pef", ".kdc", ".dcr", ".mrw", ".3fr", ".iiq", ".erf", ".mos", ".srw", ".x3f", ".rwl"}
_CFA_CODES = {"R": 0, "G": 1, "B": 2}  # TIFF/EP CFAPattern colour codes


def libraw_version() -> str:
    import rawpy

    v = rawpy.libraw_version
    return ".".join(map(str, v)) if isinstance(v, tuple) else str(v)


def is_raw_path(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in RAW_EXTS


@dataclass
class RawImage:
    """A Bayer raw image: mosaic in [0, 1] (H x W float32, not clipped) plus its metadata."""

    mosaic: np.ndarray
    pattern: str  # the 2x2 CFA at the mosaic's top-left, row-major, e.g. "RGGB"
    black: np.ndarray  # (2, 2) black level of each CFA position, in raw units
    white: float  # white level, raw units
    dtype: np.dtype = np.dtype(np.uint16)
    wb: list[float] = field(default_factory=lambda: [1.0, 1.0, 1.0])  # as-shot R, G, B multipliers
    color_matrix: np.ndarray | None = None  # 3x3 XYZ -> camera (DNG ColorMatrix1)
    make: str = ""
    model: str = ""
    noise_profile: list[tuple[float, float]] | None = None  # DNG NoiseProfile (S, O) pairs: var = S*x + O
    orientation: int = 1  # TIFF/EXIF Orientation of the image as shot (1: as stored)
    text_tags: dict[int, str] = field(default_factory=dict)  # DateTime, Artist, Copyright of TIFF-based files

    def to_raw_units(self, mosaic: np.ndarray | None = None) -> np.ndarray:
        """Back to the file's integer values: levels as the camera wrote them, clipped to the valid range."""
        m = self.mosaic if mosaic is None else mosaic
        out = np.empty(m.shape, self.dtype)
        for i in range(2):  # per CFA position: no full-size float64 temporaries for a 24 MP file
            for j in range(2):
                bl = np.float32(self.black[i, j])
                v = np.rint(m[i::2, j::2].astype(np.float32) * (np.float32(self.white) - bl) + bl)
                out[i::2, j::2] = np.clip(v, 0, self.white)
        return out


def read_raw(path: str | os.PathLike) -> RawImage:
    """Read a Bayer raw file; ImageError (one line naming the file) for anything else."""
    import rawpy

    path = Path(path)
    if not path.is_file():
        raise ImageError(f"{path}: no such file")
    try:
        with rawpy.imread(str(path)) as r:
            if r.raw_type != rawpy.RawType.Flat or r.raw_pattern is None or r.raw_pattern.shape != (2, 2):
                kind = "X-Trans" if r.raw_pattern is not None and r.raw_pattern.shape == (6, 6) else \
                    "not a Bayer mosaic (linear/demosaiced DNG, Foveon or scanner data)"
                raise ImageError(f"{path}: not supported: {kind}; n3 denoises Bayer raw files "
                                 f"(LibRaw {libraw_version()})")
            desc = r.color_desc.decode()
            pat = r.raw_pattern
            pattern = "".join(desc[pat[i, j]] for i in range(2) for j in range(2))
            if sorted(pattern) != ["B", "G", "G", "R"]:
                raise ImageError(f"{path}: not supported: CFA {pattern} is not a Bayer pattern")
            bl = np.asarray(r.black_level_per_channel, dtype=np.float64)
            black = np.array([[bl[pat[i, j]] for j in range(2)] for i in range(2)])
            white = float(r.white_level)
            raw = r.raw_image_visible.astype(np.float32)
            wbc = list(r.camera_whitebalance)
            wb = [wbc[0], wbc[1], wbc[2]] if wbc[1] > 0 and wbc[0] > 0 else [1.0, 1.0, 1.0]
            xyz_cam = np.asarray(r.rgb_xyz_matrix, dtype=np.float64)[:3]
            cm = xyz_cam if np.abs(xyz_cam).sum() > 0 else None
            orientation = _LIBRAW_FLIP_TO_TIFF.get(int(r.sizes.flip), 1)
    except ImageError:
        raise
    except Exception as e:  # LibRaw raises several types for truncated/corrupt/unknown files
        arg = e.args[0] if e.args else ""
        text = arg.decode(errors="replace") if isinstance(arg, bytes) else str(e)
        msg = text.strip().splitlines()[0][:160] if text.strip() else type(e).__name__
        raise ImageError(f"{path}: cannot read raw file ({msg}; LibRaw {libraw_version()})") from None
    mosaic = raw  # normalised in place, per CFA position
    for i in range(2):
        for j in range(2):
            mosaic[i::2, j::2] -= np.float32(black[i, j])
            mosaic[i::2, j::2] /= np.float32(max(white - black[i, j], 1.0))
    make, model, profile, text = _tiff_tags(path)
    return RawImage(mosaic, pattern, black, white, np.dtype(np.uint16), [float(v) for v in wb], cm, make, model,
                    profile, orientation, text)


_LIBRAW_FLIP_TO_TIFF = {0: 1, 3: 3, 5: 8, 6: 6}  # LibRaw sizes.flip -> TIFF Orientation
_TEXT_TAGS = (306, 315, 33432)  # DateTime, Artist, Copyright


def _tiff_tags(path: Path) -> tuple[str, str, list[tuple[float, float]] | None, dict[int, str]]:
    """Make, Model, the DNG NoiseProfile and a few text tags of TIFF-based raw files (empty for others)."""
    try:
        import tifffile

        with tifffile.TiffFile(path) as t:
            tags = t.pages[0].tags
            make = str(tags["Make"].value).strip() if "Make" in tags else ""
            model = str(tags["Model"].value).strip() if "Model" in tags else ""
            profile = None
            if 51041 in tags:
                v = np.asarray(tags[51041].value, dtype=np.float64).ravel()
                profile = [(float(v[i]), float(v[i + 1])) for i in range(0, len(v) - 1, 2)]
            text = {code: str(tags[code].value).strip() for code in _TEXT_TAGS
                    if code in tags and isinstance(tags[code].value, str) and tags[code].value.strip()}
            return make, model, profile, text
    except Exception:  # noqa: BLE001  (not a TIFF-based raw: nothing known)
        return "", "", None, {}


def rggb_offset(pattern: str) -> tuple[int, int]:
    """(dy, dx) at which the 2x2 pattern starting at (0, 0) reads RGGB."""
    grid = [pattern[0:2], pattern[2:4]]
    for dy in (0, 1):
        for dx in (0, 1):
            p = "".join(grid[(dy + i) % 2][(dx + j) % 2] for i in range(2) for j in range(2))
            if p == "RGGB":
                return dy, dx
    raise ValueError(f"{pattern} is not a Bayer pattern")


def pack(mosaic: np.ndarray, pattern: str) -> tuple[np.ndarray, tuple[int, int]]:
    """4 half-resolution planes R, G1, G2, B ``(4, h, w)`` and the (dy, dx) crop that aligned them."""
    dy, dx = rggb_offset(pattern)
    m = mosaic[dy:, dx:]
    h, w = m.shape[0] // 2 * 2, m.shape[1] // 2 * 2
    m = m[:h, :w]
    return np.stack([m[0::2, 0::2], m[0::2, 1::2], m[1::2, 0::2], m[1::2, 1::2]]), (dy, dx)


def unpack(planes: np.ndarray, offset: tuple[int, int], like: np.ndarray) -> np.ndarray:
    """The mosaic of ``like``'s shape with the planes put back; pixels outside the packed area
    (at most one row/column per side) keep ``like``'s values."""
    dy, dx = offset
    out = np.array(like, dtype=np.float32, copy=True)
    _, h, w = planes.shape
    sub = out[dy : dy + 2 * h, dx : dx + 2 * w]
    sub[0::2, 0::2], sub[0::2, 1::2], sub[1::2, 0::2], sub[1::2, 1::2] = planes
    return out


def write_dng(path: str | os.PathLike, raw: RawImage, mosaic: np.ndarray | None = None,
              software: str = "n3 (denoised)") -> None:
    """Write a Bayer DNG with the original's pattern, levels, colour matrix, white balance and
    camera names; marked as made by n3 so nobody denoises it twice. Atomic."""
    import tifffile

    from ..fileio import atomic_write

    data = raw.to_raw_units(mosaic)
    cfa = bytes(_CFA_CODES[c] for c in raw.pattern)
    cm = raw.color_matrix if raw.color_matrix is not None else np.eye(3)
    neutral = [raw.wb[1] / v if v > 0 else 1.0 for v in raw.wb]

    def rationals(vals, denom=10000):
        out = []
        for v in vals:
            out += [int(round(v * denom)), denom]
        return out

    model = f"{raw.make} {raw.model}".strip() or "n3"
    extratags = [
        (50706, "B", 4, (1, 4, 0, 0), True),  # DNGVersion
        (50707, "B", 4, (1, 1, 0, 0), True),  # DNGBackwardVersion
        (50708, "s", 0, model, True),  # UniqueCameraModel
        (33421, "H", 2, (2, 2), True),  # CFARepeatPatternDim
        (33422, "B", 4, tuple(cfa), True),  # CFAPattern
        (50710, "B", 3, (0, 1, 2), True),  # CFAPlaneColor
        (50713, "H", 2, (2, 2), True),  # BlackLevelRepeatDim
        (50714, "2I", 4, tuple(rationals(raw.black.ravel(), 1)), True),  # BlackLevel
        (50717, "I", 1, (int(raw.white),), True),  # WhiteLevel
        (50721, "2i", 9, tuple(rationals(cm.ravel())), True),  # ColorMatrix1
        (50728, "2I", 3, tuple(rationals(neutral)), True),  # AsShotNeutral
        (50778, "H", 1, (21,), True),  # CalibrationIlluminant1: D65
    ]
    if raw.orientation != 1:
        extratags.append((274, "H", 1, (int(raw.orientation),), True))
    for code, value in raw.text_tags.items():
        extratags.append((code, "s", 0, value, True))
    if raw.noise_profile:
        extratags.append((51041, "d", 2 * len(raw.noise_profile), tuple(v for p in raw.noise_profile for v in p), True))
    if raw.make:
        extratags.append((271, "s", 0, raw.make, True))
    if raw.model:
        extratags.append((272, "s", 0, raw.model, True))

    def write(tmp: str) -> None:
        tifffile.imwrite(tmp, data, photometric=32803, extratags=extratags, metadata=None, software=software)

    atomic_write(path, write)


def develop(path: str | os.PathLike, raw: RawImage, mosaic: np.ndarray | None = None, bits: int = 16) -> np.ndarray:
    """sRGB image (H x W x 3, uint16 or uint8) developed by LibRaw from ``mosaic`` (default: the
    file's own) with the camera's white balance: the file is opened again and its mosaic
    replaced in place before ``postprocess`` (rawpy cannot write raw files itself)."""
    import rawpy

    data = raw.to_raw_units(mosaic)
    with rawpy.imread(str(path)) as r:
        r.raw_image_visible[...] = data
        return r.postprocess(use_camera_wb=True, output_bps=bits, no_auto_bright=True)
