"""sRGB image files: PNG, JPEG, TIFF (8/16-bit, float), BMP, WebP, HEIF/HEIC; gray, RGB, with or
without alpha.

Pixels come back as float32 in [0, 1], H x W x C (C = 1 or 3); alpha is kept aside in its
original dtype so it can be written back untouched. Bit depth is taken from the file's dtype,
never guessed from pixel values. ICC profiles and EXIF travel with the image where the output
format can hold them (EXIF orientation stays a tag: pixels are never rotated; HEIC, whose format
rotates on decoding, is the exception, see heif.py).
"""
from __future__ import annotations

import io
import os
import struct
import zlib
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..errors import ImageError
from .heif import HEIF_EXTS

READ_EXTS = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp"} | HEIF_EXTS
WRITE_EXTS = READ_EXTS


@dataclass
class Image:
    """An sRGB image: float pixels plus what must be carried to the output."""

    pixels: np.ndarray  # H x W x C float32 in [0, 1], C in {1, 3}
    dtype: np.dtype  # sample type of the source: uint8, uint16 or float32
    alpha: np.ndarray | None = None  # H x W, source dtype, never processed
    icc: bytes | None = None
    exif: bytes | None = None

    @property
    def channels(self) -> int:
        return self.pixels.shape[2]

    def with_pixels(self, pixels: np.ndarray) -> "Image":
        return replace(self, pixels=pixels)


def is_image_path(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in READ_EXTS


MAX_PIXELS = 120_000_000  # per image: a 100 MP medium-format photo passes; raise with max_pixels


def read_image(path: str | os.PathLike, max_pixels: int | None = None) -> Image:
    """Read an image file; raises ImageError (one line, naming the file) when it cannot, or when
    its header declares more than ``max_pixels`` (default :data:`MAX_PIXELS`; 0: no limit) pixels,
    which is checked before any pixel is decoded (a 2 MB file can declare gigabytes)."""
    path = Path(path)
    ext = path.suffix.lower()
    if not path.is_file():
        raise ImageError(f"{path}: no such file")
    if ext not in READ_EXTS:
        raise ImageError(f"{path}: unsupported image type {ext or '(none)'} (use PNG, JPEG, TIFF, BMP, WebP or HEIC)")
    if path.stat().st_size == 0:
        raise ImageError(f"{path}: empty file (0 bytes)")
    limit = MAX_PIXELS if max_pixels is None else max_pixels

    def check(width: int, height: int) -> None:
        if limit and width * height > limit:
            raise ImageError(f"{path}: {width}x{height} is {width * height / 1e6:.0f} MP, over the limit of "
                             f"{limit / 1e6:.0f} MP (--max-megapixels raises it)")

    try:
        if ext in (".tif", ".tiff"):
            arr, icc, exif = _read_tiff(path, check)
        elif ext == ".png":
            arr, icc, exif = _read_png(path, check)
        elif ext in HEIF_EXTS:
            from .heif import read_heif

            arr, icc, exif = read_heif(path, check)
        else:
            arr, icc, exif = _read_pil(path, check)
    except ImageError:
        raise
    except Exception as e:
        raise ImageError(f"{path}: cannot read image ({_first_line(e)})") from None
    return from_array(arr, icc, exif, path)


def from_array(arr: np.ndarray, icc: bytes | None, exif: bytes | None, path: Path) -> Image:
    """An :class:`Image` from decoded samples (H x W or H x W x C, C in 1-4; uint8, uint16 or float);
    ImageError naming ``path`` for other layouts and types, and for non-finite values."""
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 2, 3, 4) or arr.size == 0:
        raise ImageError(f"{path}: unsupported image layout {arr.shape}")
    if arr.dtype == np.uint8 or arr.dtype == np.uint16:
        scale = float(np.iinfo(arr.dtype).max)
    elif arr.dtype in (np.float32, np.float64, np.float16):
        scale = 1.0
        arr = arr.astype(np.float32)
    else:
        raise ImageError(f"{path}: unsupported sample type {arr.dtype}")
    alpha = None
    if arr.shape[2] in (2, 4):
        alpha = arr[:, :, -1].copy()
        arr = arr[:, :, :-1]
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():  # NaN spreads through every tile it touches
        bad = int((~np.isfinite(arr)).any(axis=2).sum())
        raise ImageError(f"{path}: {bad} pixel(s) are NaN or infinite; n3 takes finite values only")
    pixels = arr.astype(np.float32) / np.float32(scale)
    return Image(np.ascontiguousarray(pixels), np.dtype(arr.dtype), alpha, icc, exif)


def _read_png(path: Path, check):
    import cv2
    from PIL import Image as PILImage

    from .native_stderr import captured_stderr

    data = np.fromfile(path, dtype=np.uint8)
    if len(data) >= 24 and bytes(data[12:16]) == b"IHDR":
        check(*struct.unpack(">II", bytes(data[16:24])))
    with captured_stderr() as said:  # libpng's complaint, e.g. "bad adaptive filter value"
        arr = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if arr is None or "error" in said.text.lower():  # a warning alone (an odd iCCP chunk) is no failure
        why = said.first_line().removeprefix("libpng error:").strip()
        raise ImageError(f"{path}: not a readable PNG file" + (f" ({why})" if why else ""))
    color_type = data[25] if len(data) > 25 else None
    if arr.ndim == 3 and color_type == 4 and arr.shape[2] == 4:  # OpenCV expands gray+alpha to BGRA
        arr = arr[:, :, [0, 3]]
    elif arr.ndim == 3:  # OpenCV is BGR(A)
        arr = arr[:, :, [2, 1, 0, 3][: arr.shape[2]]] if arr.shape[2] in (3, 4) else arr
    with PILImage.open(path) as im:
        icc = im.info.get("icc_profile")
        exif = im.info.get("exif")
    return arr, icc, exif


def _read_pil(path: Path, check):
    import warnings

    from PIL import Image as PILImage

    with warnings.catch_warnings():
        # n3's own limit (checked on the header below) replaces Pillow's decompression-bomb guard
        warnings.simplefilter("ignore", PILImage.DecompressionBombWarning)
        saved, PILImage.MAX_IMAGE_PIXELS = PILImage.MAX_IMAGE_PIXELS, None
        try:
            im = PILImage.open(path)
        finally:
            PILImage.MAX_IMAGE_PIXELS = saved
    with im:
        check(*im.size)
        im.load()
        icc = im.info.get("icc_profile")
        exif = im.info.get("exif") or None
        mode = im.mode
        if mode in ("1", "P", "CMYK", "YCbCr", "LAB", "HSV"):
            im = im.convert("RGBA" if "transparency" in im.info else "RGB")
        elif mode == "PA":
            im = im.convert("RGBA")
        arr = np.asarray(im)
        if mode.startswith("I;16"):
            arr = arr.astype(np.uint16)
    return arr, icc, exif


def _read_tiff(path: Path, check):
    import tifffile

    from .native_stderr import quiet_logger
    from .stacks import series_frames

    with quiet_logger("tifffile"), tifffile.TiffFile(path) as tf:
        series = tf.series[0] if tf.series else None
        frames = series_frames(series) if series is not None else 1
        if frames > 1:  # a stack: reading page 1 would drop the rest
            raise ImageError(f"{path}: a stack of {frames} images (multi-page TIFF); n3 denoise and "
                             "n3 upscale take stacks, this takes one image")
        page = tf.pages[0]
        check(page.imagewidth, page.imagelength)
        arr = tiff_page_array(page.asarray(), page.photometric)
        icc_tag = page.tags.get(34675)
        icc = bytes(icc_tag.value) if icc_tag is not None else None
        from .metadata import exif_bytes, tags_from_tiff

        exif = exif_bytes(tags_from_tiff(page.tags, skip=(274,)))  # pixels are read as stored
    return arr, icc, exif


def tiff_page_array(arr: np.ndarray, photometric) -> np.ndarray:
    """A decoded TIFF page's samples as H x W (x C): planar storage interleaved, white-is-zero turned."""
    import tifffile

    if arr.ndim == 3 and arr.shape[0] in (1, 2, 3, 4) and arr.shape[2] not in (1, 2, 3, 4):
        arr = np.moveaxis(arr, 0, -1)  # planar storage
    if photometric == tifffile.PHOTOMETRIC.MINISWHITE:
        arr = np.iinfo(arr.dtype).max - arr if arr.dtype.kind == "u" else 1.0 - arr
    return arr


_STRIP = 256  # rows quantised at a time


def to_array(img: Image, pixels: np.ndarray | None = None, dtype: np.dtype | None = None) -> np.ndarray:
    """Quantise float pixels (default: the image's own) back to ``dtype`` with alpha re-attached."""
    px = img.pixels if pixels is None else pixels
    dtype = np.dtype(dtype or img.dtype)
    if dtype.kind == "u":
        m = np.iinfo(dtype).max
        out = np.empty(px.shape, dtype)
        for i in range(0, px.shape[0], _STRIP):  # float temporaries of a strip, not of the image
            f = np.clip(px[i : i + _STRIP], 0.0, 1.0)
            f *= m
            out[i : i + _STRIP] = np.rint(f, out=f)
    else:
        out = px.astype(dtype)
    if img.alpha is not None:
        a = img.alpha
        if a.dtype != dtype:
            a = _convert_alpha(a, dtype)
        out = np.concatenate([out, a[:, :, None]], axis=2)
    return out


def _convert_alpha(a: np.ndarray, dtype: np.dtype) -> np.ndarray:
    src = float(np.iinfo(a.dtype).max) if a.dtype.kind == "u" else 1.0
    f = a.astype(np.float64) / src
    if dtype.kind == "u":
        m = np.iinfo(dtype).max
        return np.clip(np.rint(f * m), 0, m).astype(dtype)
    return f.astype(dtype)


QUALITY = 95
"""The lossy outputs' (JPEG, WebP, HEIC) default quality."""


DEPTHS = {"8": np.dtype(np.uint8), "16": np.dtype(np.uint16), "float": np.dtype(np.float32)}
"""What ``depth`` may ask of an output: 8 or 16 bits per sample, or 32-bit float."""
_DEPTH_EXTS = {"16": (".png", ".tif", ".tiff"), "float": (".tif", ".tiff")}


def check_depth(path: str | os.PathLike, depth: str | None) -> None:
    """ImageError when ``path``'s format cannot hold samples of ``depth`` (see :data:`DEPTHS`)."""
    if depth is None or depth == "8":
        return
    if depth not in DEPTHS:
        raise ImageError(f"depth {depth!r}: give 8, 16 or float")
    if Path(path).suffix.lower() == ".dng":
        raise ImageError(f"{path}: a DNG keeps the camera's own samples; --depth is for developed and photo outputs")
    if Path(path).suffix.lower() not in _DEPTH_EXTS[depth]:
        need = " or ".join(_DEPTH_EXTS[depth][:-1])
        raise ImageError(f"{path}: {Path(path).suffix or 'this format'} cannot hold {depth}-bit samples; "
                         f"--depth {depth} needs {need}".replace("float-bit", "float"))


def write_image(path: str | os.PathLike, img: Image, pixels: np.ndarray | None = None,
                quality: int | None = None, depth: str | None = None) -> None:
    """Write atomically (temporary file + rename). Bit depth follows the source where the format
    holds it: JPEG, BMP and WebP are 8-bit (WebP lossy, gray stored as RGB); HEIC is 8-bit, or
    10-bit from a 16-bit or float source; float sources become 16-bit PNG or float32 TIFF.
    ``depth`` (``8``, ``16`` or ``float``, :func:`check_depth`) sets it instead.
    ``quality`` (1-100, default :data:`QUALITY`): JPEG, WebP and HEIC; lossless formats ignore it."""
    from .atomic import atomic_write

    path = Path(path)
    ext = path.suffix.lower()
    if ext not in WRITE_EXTS:
        raise ImageError(f"{path}: unsupported output type {ext or '(none)'} (use .png, .jpg, .tif, .bmp, .webp or .heic)")
    check_depth(path, depth)
    dtype = DEPTHS[depth] if depth else img.dtype
    if ext in (".jpg", ".jpeg", ".bmp", ".webp"):
        dtype = np.dtype(np.uint8)
    elif ext in (".png", ".heic", ".heif") and dtype.kind == "f":
        dtype = np.dtype(np.uint16)
    arr = to_array(img, pixels, dtype)
    if ext in (".jpg", ".jpeg") and arr.shape[2] in (2, 4):
        arr = arr[:, :, :-1]  # JPEG has no alpha
    if quality is not None and not 1 <= int(quality) <= 100:
        raise ImageError(f"{path}: quality {quality}: give 1-100")
    try:
        data = _encode(arr, ext, img.icc, img.exif, QUALITY if quality is None else int(quality))
    except ImageError:
        raise
    except Exception as e:
        raise ImageError(f"{path}: cannot encode image ({_first_line(e)})") from None
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))


def _encode(arr: np.ndarray, ext: str, icc: bytes | None, exif: bytes | None, quality: int = QUALITY) -> bytes:
    if ext in (".tif", ".tiff"):
        import tifffile

        buf = io.BytesIO()
        c = arr.shape[2]
        photometric = "minisblack" if c <= 2 else "rgb"
        extras = ["unassalpha"] if c in (2, 4) else None
        from .metadata import tags_from_exif, tiff_extratags

        tags = tags_from_exif(exif)
        software = tags.pop(305, None)
        description = tags.pop(270, None)
        if description and description.startswith('{"shape":'):  # tifffile's own layout note, not a caption
            description = None
        # metadata=None: no layout note of tifffile's own beside (or instead of) the photo's caption
        tifffile.imwrite(buf, arr if c > 1 else arr[:, :, 0], photometric=photometric, extrasamples=extras,
                         compression="zlib", iccprofile=icc, software=software, description=description,
                         metadata=None, extratags=tiff_extratags(tags))
        return buf.getvalue()
    if ext == ".png":
        import cv2

        a = arr
        if a.shape[2] == 2:  # OpenCV writes no gray+alpha PNG
            return _png_add_chunks(_png_encode_plain(a), icc, exif)
        if a.shape[2] in (3, 4):
            a = a[:, :, [2, 1, 0, 3][: a.shape[2]]]
        ok, enc = cv2.imencode(".png", np.ascontiguousarray(a), [cv2.IMWRITE_PNG_COMPRESSION, 6])
        if not ok:
            raise ImageError("PNG encoder failed")
        return _png_add_chunks(enc.tobytes(), icc, exif)
    if ext in HEIF_EXTS:
        from .heif import encode_heif

        return encode_heif(arr, icc, exif, quality)
    from PIL import Image as PILImage

    a = arr[:, :, 0] if arr.shape[2] == 1 else arr
    im = PILImage.fromarray(a)
    buf = io.BytesIO()
    kw = {}
    if icc:
        kw["icc_profile"] = icc
    if ext in (".jpg", ".jpeg"):
        if exif:
            kw["exif"] = exif
        im.save(buf, format="JPEG", quality=quality, subsampling=0, **kw)
    elif ext == ".webp":
        if exif:
            kw["exif"] = exif
        im.save(buf, format="WEBP", quality=quality, method=4, **kw)
    else:
        im.save(buf, format="BMP")
    return buf.getvalue()


def _png_encode_plain(a: np.ndarray) -> bytes:
    """Minimal PNG encoder (no scanline filter) for layouts OpenCV cannot write (gray + alpha)."""
    h, w, c = a.shape
    depth = 16 if a.dtype == np.uint16 else 8
    ctype = {1: 0, 2: 4, 3: 2, 4: 6}[c]
    rows = a.astype(">u2" if depth == 16 else np.uint8).reshape(h, -1).view(np.uint8)
    raw = np.concatenate([np.zeros((h, 1), np.uint8), rows], axis=1).tobytes()
    ihdr = struct.pack(">IIBBBBB", w, h, depth, ctype, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", zlib.compress(raw, 6))
            + _png_chunk(b"IEND", b""))


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _png_add_chunks(png: bytes, icc: bytes | None, exif: bytes | None) -> bytes:
    """Insert iCCP / eXIf chunks right after IHDR (the PNG spec places both before IDAT)."""
    if not icc and not exif:
        return png
    ihdr_end = 8 + 8 + struct.unpack(">I", png[8:12])[0] + 4
    extra = b""
    if icc:
        extra += _png_chunk(b"iCCP", b"ICC profile\x00\x00" + zlib.compress(icc))
    if exif:
        body = exif[6:] if exif.startswith(b"Exif\x00\x00") else exif
        extra += _png_chunk(b"eXIf", body)
    return png[:ihdr_end] + extra + png[ihdr_end:]


def _first_line(e: Exception) -> str:
    s = str(e).strip()
    return s.splitlines()[0][:200] if s else type(e).__name__
