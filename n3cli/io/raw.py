"""Camera raw files: the Bayer mosaic and what is needed to write it back (via rawpy/LibRaw).

A :class:`RawImage` holds the visible mosaic normalised to [0, 1] by the file's own per-channel
black levels and white level, its 2x2 CFA pattern (``"RGGB"``, ``"GRBG"``, ...) and the colour
metadata a developer needs (the packing into RGGB planes is :mod:`n3cli.imaging.bayer`'s).
:func:`write_dng` writes a mosaic as a DNG that rawpy (and so
darktable, RawTherapee, Lightroom) reads with the same pattern and levels.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import ImageError

RAW_EXTS = {".dng", ".cr2", ".cr3", ".crw", ".nef", ".nrw", ".arw", ".srf", ".sr2", ".raf", ".orf", ".rw2",
            ".pef", ".kdc", ".dcr", ".mrw", ".3fr", ".iiq", ".erf", ".mos", ".srw", ".x3f", ".rwl", ".raw"}
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
    color_matrix: np.ndarray | None = None  # 3x3 XYZ -> camera under D65 (DNG ColorMatrix1); None: linear sRGB
    make: str = ""
    model: str = ""
    noise_profile: list[tuple[float, float]] | None = None  # DNG NoiseProfile (S, O) pairs: var = S*x + O
    orientation: int = 1  # TIFF/EXIF Orientation of the image as shot (1: as stored)
    tags: dict[int, object] = field(default_factory=dict)  # capture metadata, see n3cli.io.metadata.TAGS
    pixel_aspect: float = 1.0  # width / height of one photosite (DNG DefaultScale)
    dng_tags: list[tuple] = field(default_factory=list)  # a DNG source's own colour/crop tags, copied as they are
    black_noise: float | None = None  # variance of the masked (optical black) photosites, normalised units

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


MIN_MASKED = 2000  # masked photosites needed to read the read noise from them
_GUARD = 4  # masked columns/rows next to the image left out: light spills into them on some sensors


def _optical_black_noise(r, black: float, white: float) -> float | None:
    """The variance of the sensor's masked (optical black) border, in the mosaic's normalised
    units: the read noise ``b`` of ``var = a*x + b``, measured where no light falls. None when the
    file keeps no masked area, too little of it, or one that does not read as black."""
    s = r.sizes
    full = r.raw_image
    right = s.raw_width - s.width - s.left_margin
    bottom = s.raw_height - s.height - s.top_margin
    parts = []
    if s.left_margin > _GUARD:
        parts.append(full[:, : s.left_margin - _GUARD])
    if right > _GUARD:
        parts.append(full[:, s.raw_width - right + _GUARD :])
    if s.top_margin > _GUARD:
        parts.append(full[: s.top_margin - _GUARD, s.left_margin : s.left_margin + s.width])
    if bottom > _GUARD:
        parts.append(full[s.raw_height - bottom + _GUARD :, s.left_margin : s.left_margin + s.width])
    v = np.concatenate([p.astype(np.float64).ravel() for p in parts]) if parts else np.empty(0)
    if v.size < MIN_MASKED or white <= black:
        return None
    std = float(v.std())
    # cameras that keep something else there (calibration data, a second readout) are not black
    if std == 0 or abs(float(v.mean()) - black) > max(3 * std, 2.0):
        return None
    return (std / (white - black)) ** 2


def read_raw(path: str | os.PathLike) -> RawImage:
    """Read a Bayer raw file; ImageError (one line naming the file) for anything else."""
    import rawpy

    path = Path(path)
    if not path.is_file():
        raise ImageError(f"{path}: no such file")
    from .native_stderr import captured_stderr

    try:
        with captured_stderr() as said, rawpy.imread(str(path)) as r:
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
            wb = _white_balance(r)
            cm = _xyz_to_camera(r)
            orientation = _LIBRAW_FLIP_TO_TIFF.get(int(r.sizes.flip), 1)
            aspect = float(r.sizes.pixel_aspect) if np.isfinite(r.sizes.pixel_aspect) and r.sizes.pixel_aspect > 0 else 1.0
            uncropped = (r.sizes.raw_height, r.sizes.raw_width) == raw.shape
            other = r.other
            black_noise = _optical_black_noise(r, float(np.mean(bl)), white)
    except ImageError:
        raise
    except Exception as e:  # LibRaw raises several types for truncated/corrupt/unknown files
        short = _missing_tiff_data(path)
        if short:
            raise ImageError(f"{path}: truncated raw file ({short})") from None
        kind = sniff(path)
        if kind is not None:  # LibRaw calls these "Input/output error" or "Unsupported file format"
            raise ImageError(f"{path}: not a camera raw file ({kind})") from None
        arg = e.args[0] if e.args else ""
        text = arg.decode(errors="replace") if isinstance(arg, bytes) else str(e)
        msg = text.strip().splitlines()[0][:160] if text.strip() else "unreadable"
        raise ImageError(f"{path}: cannot read raw file ({msg}; LibRaw {libraw_version()})") from None
    if any(w in said.text for w in ("Premature end", "Corrupt", "corrupt")):  # libjpeg inside LibRaw, decoding on
        raise ImageError(f"{path}: truncated or corrupt raw file ({said.first_line()})")
    short = _missing_tiff_data(path)
    if short:  # LibRaw reads what is there and leaves the rest zero
        raise ImageError(f"{path}: truncated raw file ({short})")
    mosaic = raw  # normalised in place, per CFA position
    for i in range(2):
        for j in range(2):
            mosaic[i::2, j::2] -= np.float32(black[i, j])
            mosaic[i::2, j::2] /= np.float32(max(white - black[i, j], 1.0))
    if mosaic.size and float(mosaic.min()) == float(mosaic.max()):
        raise ImageError(f"{path}: no image data (every photosite reads its black level or one value: "
                         "a truncated or blank file)")
    make, model, profile, tags, dng_tags = _tiff_tags(path, uncropped)
    # LibRaw reads exposure, aperture, ISO, focal length and time from every format it knows
    # (CIFF and maker notes too); a TIFF-based file's own EXIF values win where both exist
    from .metadata import clean_tags, exif_datetime

    libraw = {33434: other.shutter_speed, 33437: other.aperture, 34855: other.iso_speed,
              37386: other.focal_length}
    if other.timestamp is not None and other.timestamp.year > 1970:
        libraw[36867] = exif_datetime(other.timestamp)
    tags = {**clean_tags(libraw), **tags}
    raw_image = RawImage(mosaic, pattern, black, white, np.dtype(np.uint16), wb or [1.0, 1.0, 1.0], cm, make,
                         model, profile, orientation, tags, aspect, dng_tags, black_noise)
    if (cm is None or wb is None) and not any(t[0] in (50721, 50728) for t in dng_tags):
        try:
            rgb_cam, measured_wb = _measure_development(path, raw_image)
        except Exception:  # noqa: BLE001  (LibRaw could not develop it: keep what is known)
            rgb_cam, measured_wb = None, None
        if cm is None:
            ok = rgb_cam is not None and np.isfinite(rgb_cam).all() and np.linalg.cond(rgb_cam) < 1e6
            raw_image.color_matrix = np.linalg.inv(rgb_cam) @ XYZ_TO_SRGB if ok else XYZ_TO_SRGB.copy()
        if wb is None and measured_wb is not None and np.isfinite(measured_wb).all():
            raw_image.wb = measured_wb
    return raw_image


_LIBRAW_FLIP_TO_TIFF = {0: 1, 3: 3, 5: 8, 6: 6}  # LibRaw sizes.flip -> TIFF Orientation
# sRGB (D65) -> XYZ, as LibRaw develops: a camera without a matrix is taken to be linear sRGB
_SRGB_TO_XYZ = np.array([[0.412453, 0.357580, 0.180423], [0.212671, 0.715160, 0.072169],
                         [0.019334, 0.119193, 0.950227]])
XYZ_TO_SRGB = np.linalg.inv(_SRGB_TO_XYZ)
# a DNG source's tags that say how to develop its mosaic: copied to the denoised DNG unchanged
_DNG_COLOUR_TAGS = (50721, 50722, 50723, 50724, 50727, 50728, 50729, 50730, 50778, 50779, 50931, 50932, 50936,
                    50964, 50965, 51108, 51109, 51110, 51111)
_DNG_CROP_TAGS = (50718, 50719, 50720, 50829)  # DefaultScale, DefaultCrop*, ActiveArea: in mosaic pixels


def _missing_tiff_data(path: Path) -> str | None:
    """For TIFF-based raws (DNG, NEF, CR2, ARW, ...): how much of the image data the file's
    directories point past its end, or None (complete, or not a TIFF)."""
    from .native_stderr import quiet_logger

    size = path.stat().st_size
    try:
        import tifffile

        with quiet_logger("tifffile"), tifffile.TiffFile(path) as t:
            pages = list(t.pages)
            for p in list(pages):
                try:
                    pages += list(p.pages or [])  # SubIFDs, where DNG converters put the raw image
                except Exception:  # noqa: BLE001  (unreadable SubIFDs: judged by what is readable)
                    pass
            end = max((o + c for p in pages for o, c in zip(p.dataoffsets, p.databytecounts) if c), default=0)
    except Exception:  # noqa: BLE001  (not TIFF-based: LibRaw's own checks are all there is)
        return None
    if end > size:
        return f"{end - size} bytes of image data missing: the file ends at {size}, its image data at {end}"
    return None


def _white_balance(r) -> list[float] | None:
    """The camera's as-shot R, G, B multipliers; None when the file has none (LibRaw then
    balances automatically, see :func:`_measure_development`)."""
    wb = list(r.camera_whitebalance)
    if len(wb) >= 3 and min(wb[:3]) > 0 and np.isfinite(wb[:3]).all():
        return [float(v) for v in wb[:3]]
    return None


def _xyz_to_camera(r) -> np.ndarray | None:
    """XYZ (D65) -> camera RGB: LibRaw's table entry for the camera, else derived from the camera
    -> sRGB matrix it reports (a DNG's own); None when it reports neither."""
    xyz_cam = np.asarray(r.rgb_xyz_matrix, dtype=np.float64)[:3]
    if np.abs(xyz_cam).sum() > 0:
        return xyz_cam
    rgb_cam = np.asarray(r.color_matrix, dtype=np.float64)[:3, :3]
    if np.abs(rgb_cam).sum() > 0 and np.linalg.cond(rgb_cam) < 1e6:
        return np.linalg.inv(rgb_cam) @ XYZ_TO_SRGB
    return None


def _measure_development(path: Path, raw: RawImage) -> tuple[np.ndarray, list[float]]:
    """The camera -> sRGB matrix and the white balance LibRaw develops ``path`` with, measured by
    developing test mosaics, for files whose matrix or as-shot balance LibRaw keeps to itself
    (old cameras: the Kodak DC120 has a built-in matrix and no as-shot balance, so LibRaw
    balances automatically). A DNG must carry both, or raw developers give it a colour cast.

    Matrix: a flat mosaic at 0.2 and the same with one colour's sites raised by 0.1, developed
    linearly without balance; the difference is that colour's column. Balance: the file's own
    mosaic developed with the camera's setting and without, in camera colours; the ratio of the
    unclipped pixels' sums is the multipliers."""
    import rawpy

    def dev(mosaic: np.ndarray, **kw) -> np.ndarray:
        with rawpy.imread(str(path)) as r:
            r.raw_image_visible[...] = raw.to_raw_units(mosaic)
            out = r.postprocess(output_bps=16, no_auto_bright=True, gamma=(1, 1), half_size=True, **kw)
        return out.reshape(-1, 3).astype(np.float64)

    unit = dict(user_wb=[1.0, 1.0, 1.0, 1.0])
    base = np.full(raw.mosaic.shape, 0.2, np.float32)
    flat = dev(base, **unit).mean(0)
    rgb_cam = np.empty((3, 3))
    for i, colour in enumerate("RGB"):
        m = base.copy()
        for k, c in enumerate(raw.pattern):
            if c == colour:
                m[k // 2 :: 2, k % 2 :: 2] += 0.1
        rgb_cam[:, i] = (dev(m, **unit).mean(0) - flat) / (0.1 * 65535)
    plain = dev(raw.mosaic, output_color=rawpy.ColorSpace.raw, **unit)
    shot = dev(raw.mosaic, output_color=rawpy.ColorSpace.raw, use_camera_wb=True)
    ok = (plain.max(1) < 60000) & (shot.max(1) < 60000) & (plain.min(1) > 256)
    wb = shot[ok].sum(0) / plain[ok].sum(0) if ok.sum() > 100 else np.ones(3)
    return rgb_cam, [float(v / wb[1]) for v in wb]


def _tiff_tags(path: Path, uncropped: bool) -> tuple[str, str, list[tuple[float, float]] | None, dict[int, object],
                                                     list[tuple]]:
    """Make, Model, the DNG NoiseProfile, the capture tags (n3cli.io.metadata.TAGS) and a DNG's
    own colour tags (and its crop tags, when the mosaic is the file's whole raw area) of TIFF-based
    raw files; empty for others."""
    from .metadata import tags_from_tiff
    from .native_stderr import quiet_logger

    try:
        import tifffile

        with quiet_logger("tifffile"), tifffile.TiffFile(path) as t:
            tags = t.pages[0].tags
            make = str(tags["Make"].value).strip() if "Make" in tags else ""
            model = str(tags["Model"].value).strip() if "Model" in tags else ""
            profile = None
            if 51041 in tags:
                v = np.asarray(tags[51041].value, dtype=np.float64).ravel()
                profile = [(float(v[i]), float(v[i + 1])) for i in range(0, len(v) - 1, 2)]
            found = tags_from_tiff(tags, skip=(271, 272, 274, 305))
            dng = []
            if 50706 in tags:  # DNGVersion
                codes = _DNG_COLOUR_TAGS + (_DNG_CROP_TAGS if uncropped else ())
                dng = [(c, int(tags[c].dtype), tags[c].count, tags[c].value) for c in codes if c in tags]
            return make, model, profile, found, dng
    except Exception:  # noqa: BLE001  (not a TIFF-based raw: nothing known)
        return "", "", None, {}, []


def software_tag(path: str | os.PathLike) -> str:
    """The TIFF Software tag of a TIFF-based raw file (DNG, NEF, CR2, ...): what wrote it; "" if none."""
    from .native_stderr import quiet_logger

    try:
        import tifffile

        with quiet_logger("tifffile"), tifffile.TiffFile(path) as t:
            tags = t.pages[0].tags
            return str(tags["Software"].value).strip() if "Software" in tags else ""
    except Exception:  # noqa: BLE001  (not TIFF-based: nothing known)
        return ""


_MAGIC = ((b"\xff\xd8\xff", "a JPEG image"), (b"\x89PNG", "a PNG image"), (b"GIF8", "a GIF image"),
          (b"BM", "a BMP image"), (b"%PDF", "a PDF document"), (b"PK\x03\x04", "a ZIP archive"))


def sniff(path: Path) -> str | None:
    """What a file that LibRaw refused is, when its first bytes tell: an image of another kind,
    text, an empty file. None when they do not (then LibRaw's own message is the best there is)."""
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
    except OSError:
        return None
    if not head:
        return "the file is empty"
    for magic, what in _MAGIC:
        if head.startswith(magic):
            return f"it is {what}"
    if head[8:12] == b"WEBP" and head.startswith(b"RIFF"):
        return "it is a WebP image"
    if head[4:8] == b"ftyp" and head[8:12] in (b"heic", b"heix", b"mif1", b"msf1", b"heim", b"heis", b"hevc"):
        return "it is a HEIF/HEIC image"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return "it is a text file" if all(c.isprintable() or c in "\r\n\t" for c in text) else None


def write_dng(path: str | os.PathLike, raw: RawImage, mosaic: np.ndarray | None = None,
              software: str | None = None) -> None:
    """Write a Bayer DNG that raw developers (LibRaw, dcraw, darktable) develop as they develop the
    original: its pattern, levels, colour matrix and as-shot white balance (a DNG source's own
    colour tags, copied), pixel aspect, orientation, camera names and capture metadata. Software
    names n3, so nobody denoises it twice. Atomic."""
    import tifffile

    from .. import __version__
    from .atomic import atomic_write
    from .metadata import tiff_extratags

    data = raw.to_raw_units(mosaic)
    cfa = bytes(_CFA_CODES[c] for c in raw.pattern)
    cm = raw.color_matrix if raw.color_matrix is not None else XYZ_TO_SRGB
    neutral = [raw.wb[1] / v if v > 0 else 1.0 for v in raw.wb]

    def rationals(vals, denom=10000):
        out = []
        for v in vals:
            out += [int(round(v * denom)), denom]
        return out

    tags: dict[int, tuple] = {
        50706: ("B", 4, (1, 4, 0, 0)),  # DNGVersion
        50707: ("B", 4, (1, 1, 0, 0)),  # DNGBackwardVersion
        50708: ("s", 0, f"{raw.make} {raw.model}".strip() or "unknown camera"),  # UniqueCameraModel
        33421: ("H", 2, (2, 2)),  # CFARepeatPatternDim
        33422: ("B", 4, tuple(cfa)),  # CFAPattern
        50710: ("B", 3, (0, 1, 2)),  # CFAPlaneColor
        50713: ("H", 2, (2, 2)),  # BlackLevelRepeatDim
        50714: ("2I", 4, tuple(rationals(raw.black.ravel(), 1))),  # BlackLevel
        50717: ("I", 1, (int(raw.white),)),  # WhiteLevel
        50721: ("2i", 9, tuple(rationals(cm.ravel()))),  # ColorMatrix1
        50728: ("2I", 3, tuple(rationals(neutral))),  # AsShotNeutral
        50778: ("H", 1, (21,)),  # CalibrationIlluminant1: D65
    }
    if abs(raw.pixel_aspect - 1.0) > 1e-3:  # non-square photosites: readers stretch to the true aspect
        tags[50718] = ("2I", 2, tuple(rationals([raw.pixel_aspect, 1.0], 100000)))  # DefaultScale (h, v)
    for code, dtype, count, value in raw.dng_tags:  # a DNG source knows best how it is developed
        tags[code] = (dtype, count, value)
    if raw.orientation != 1:
        tags[274] = ("H", 1, (int(raw.orientation),))
    if raw.noise_profile:
        tags[51041] = ("d", 2 * len(raw.noise_profile), tuple(v for p in raw.noise_profile for v in p))
    extratags = [(code, *spec, True) for code, spec in tags.items()]
    meta = {**raw.tags, 271: raw.make, 272: raw.model}
    extratags += tiff_extratags({k: v for k, v in meta.items() if k not in tags and k not in (274, 305)})
    software = software or f"n3 {__version__} (denoised)"

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
        sat = _saturation(r.raw_image_visible, raw)
        r.raw_image_visible[...] = data
        return r.postprocess(use_camera_wb=True, output_bps=bits, no_auto_bright=True, adjust_maximum_thr=0.0,
                             user_sat=sat)


ADJUST_MAXIMUM_THR = 0.75  # LibRaw's default


def _saturation(original: np.ndarray, raw: RawImage) -> int:
    """The white point LibRaw develops the *original* mosaic with. By default LibRaw lowers the
    white point to the data's own maximum when that is above 75% of it, so a denoised mosaic,
    whose peaks are lower, would develop up to 27% darker than the original (a Canon PowerShot
    G2 file did); developing every mosaic of a file with the original's white point keeps them
    alike and equal to LibRaw's development of the original."""
    black = np.asarray(raw.black, np.float64)
    maximum = float(raw.white) - float(black.max())
    data_max = max(float((original[i::2, j::2].astype(np.float64) - black[i, j]).max())
                   for i in range(2) for j in range(2))
    if maximum * ADJUST_MAXIMUM_THR < data_max < maximum:
        return int(data_max)
    return int(maximum)
