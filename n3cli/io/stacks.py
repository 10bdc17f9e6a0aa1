"""Multi-page TIFF stacks (time series, z-stacks, ImageJ hyperstacks, scanned pages of one size):
read and written one frame at a time, so a stack of any length needs the memory of one frame.

A stack is the first image series of a TIFF file (tifffile's reading of it) when it holds more
than one page. Each page is a frame: gray (an ImageJ channel is a frame of its own) or RGB(A).
The output keeps the series' shape, axes, sample type and pixel size (resolution tags; ImageJ's
spacing, unit, frame interval, display ranges, labels and LUTs; an OME-TIFF's physical pixel
sizes, time step and channel names, written as OME-TIFF again).
"""
from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ImageError
from .images import Image, from_array, tiff_page_array, to_array

TIFF_EXTS = (".tif", ".tiff")


@dataclass(frozen=True)
class Stack:
    """What a stack's output needs to know of its input; the pixels are read by :func:`read_frames`."""

    path: Path
    frames: int
    lead_shape: tuple[int, ...]  # the series' shape before each frame's own (e.g. T, Z, C)
    lead_axes: str
    height: int
    width: int
    samples: int  # per pixel: 1 gray, 3 RGB, 4 RGBA
    dtype: np.dtype
    imagej: dict | None = None  # ImageJ's metadata (hyperstack layout, spacing, unit, LUTs, ...)
    resolution: tuple[float, float] | None = None  # pixels per unit, x and y
    resolution_unit: int | None = None  # TIFF's: 1 none, 2 inch, 3 centimetre
    compressed: bool = False
    ome: dict | None = None  # an OME-TIFF's physical sizes, time step, channel names (tifffile's keys)


def is_stack_path(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in TIFF_EXTS


def open_stack(path: str | os.PathLike, max_pixels: int | None = None) -> Stack | None:
    """The stack in a TIFF file, or None when its first series is one image (read it with
    :func:`n3cli.io.images.read_image`). ``max_pixels`` applies to each frame (see ``read_image``);
    ImageError (one line, naming the file) when the file cannot be read."""
    import tifffile

    from .images import MAX_PIXELS, _first_line
    from .native_stderr import quiet_logger

    path = Path(path)
    if not is_stack_path(path) or not path.is_file() or path.stat().st_size == 0:
        return None  # read_image says what is wrong with it
    try:
        with quiet_logger("tifffile"), tifffile.TiffFile(path) as tf:
            series = tf.series[0] if tf.series else None
            if series is None or series_frames(series) <= 1:
                return None
            key = series.keyframe
            lead_shape = _lead_shape(series)
            lead_axes = series.axes[: len(lead_shape)]
            planar = key.planarconfig == tifffile.PLANARCONFIG.SEPARATE and len(key.shape) == 3
            samples = (key.shape[0] if planar else key.shape[-1]) if len(key.shape) == 3 else 1
            height, width = (key.shape[1:] if planar else key.shape[:2])
            limit = MAX_PIXELS if max_pixels is None else max_pixels
            if limit and width * height > limit:
                raise ImageError(f"{path}: frames of {width}x{height} are {width * height / 1e6:.0f} MP, over the "
                                 f"limit of {limit / 1e6:.0f} MP (--max-megapixels raises it)")
            if samples not in (1, 3, 4):
                raise ImageError(f"{path}: unsupported stack frames of {samples} samples per pixel")
            res = key.resolution if 282 in key.tags and 283 in key.tags else None
            imagej = dict(tf.imagej_metadata) if tf.is_imagej and tf.imagej_metadata else None
            ome = _ome_metadata(tf.ome_metadata, lead_shape, lead_axes) if tf.is_ome and not imagej else None
            return Stack(path, int(np.prod(lead_shape)), lead_shape, lead_axes,
                         int(height), int(width), int(samples), np.dtype(series.dtype), imagej,
                         tuple(map(float, res)) if res else None, int(key.resolutionunit) if res else None,
                         key.compression != 1, ome)
    except ImageError:
        raise
    except Exception as e:
        raise ImageError(f"{path}: cannot read image ({_first_line(e)})") from None


_OME_KEEP = ("PhysicalSizeX", "PhysicalSizeXUnit", "PhysicalSizeY", "PhysicalSizeYUnit", "PhysicalSizeZ",
             "PhysicalSizeZUnit", "TimeIncrement", "TimeIncrementUnit")


def _ome_metadata(xml: str | None, lead_shape: tuple[int, ...], lead_axes: str) -> dict | None:
    """What of the first image's OME-XML an output carries, as tifffile's OME writer takes it; None
    where the layout is one OME cannot describe (tifffile's own axes such as I or Q)."""
    import xml.etree.ElementTree as ET

    if not xml or not set(lead_axes) <= set("TZC"):
        return None
    try:
        pixels = next(e for e in ET.fromstring(xml).iter() if e.tag.rsplit("}", 1)[-1] == "Pixels")
    except (ET.ParseError, StopIteration):
        return None
    meta: dict = {}
    for key in _OME_KEEP:
        if key in pixels.attrib:
            value = pixels.attrib[key]
            try:
                meta[key] = value if key.endswith("Unit") else float(value)
            except ValueError:
                continue
    names = [c.get("Name") for c in pixels if c.tag.rsplit("}", 1)[-1] == "Channel"]
    if "C" in lead_axes and len(names) == lead_shape[lead_axes.index("C")] and all(names):
        meta["Channel"] = {"Name": names}
    return meta


def series_frames(series) -> int:
    """How many frames (pages' images) a tifffile series declares; its parsed pages may be fewer
    (a truncated file, or one IFD for contiguous data)."""
    return int(np.prod(_lead_shape(series)))


def _lead_shape(series) -> tuple[int, ...]:
    """The series' shape before each frame's own (T, Z, C, ...): what is left when the trailing
    dimensions that make up one page are taken off (the series may keep length-1 ones the page drops)."""
    page, dims, n = int(np.prod(series.keyframe.shape)), list(series.shape), 1
    while dims and n < page:
        n *= dims.pop()
    return tuple(dims) if n == page else ()


def read_frames(stack: Stack) -> Iterator[Image]:
    """The stack's frames in order, each as :func:`n3cli.io.images.read_image` returns an image."""
    import tifffile

    from .images import _first_line
    from .native_stderr import quiet_logger

    with quiet_logger("tifffile"), tifffile.TiffFile(stack.path) as tf:
        series = tf.series[0]
        for i in range(stack.frames):
            try:
                arr = tiff_page_array(_frame(tf, series, i, stack.frames), series.keyframe.photometric)
            except Exception as e:
                raise ImageError(f"{stack.path}: cannot read frame {i + 1} of {stack.frames} ({_first_line(e)})") \
                    from None
            yield from_array(arr, None, None, stack.path)


def _frame(tf, series, i: int, frames: int) -> np.ndarray:
    pages = series.pages
    page = pages[i] if i < len(pages) else None
    if page is not None:
        return page.asarray()
    if series.dataoffset is None:  # pages that the file does not have, and no contiguous data to find them in
        raise ValueError(f"the file has {len(pages)} of its {frames} frames")
    # contiguous uncompressed data behind one IFD (ImageJ's stacks over 4 GB): the frame's bytes
    dtype = np.dtype(series.dtype).newbyteorder(tf.byteorder)
    shape = series.keyframe.shape
    offset = series.dataoffset + i * int(np.prod(shape)) * dtype.itemsize
    return np.array(np.memmap(tf.filehandle.path, dtype, "r", offset, shape))


def write_stack(path: str | os.PathLike, stack: Stack, frames: Iterable[tuple[Image, np.ndarray]],
                height: int | None = None, width: int | None = None, software: str | None = None,
                depth: str | None = None) -> None:
    """Write ``frames`` (each an input frame and its new float pixels, in order) as a stack shaped
    like ``stack``, atomically; frames of ``height`` x ``width`` (default the input's) scale the
    pixel size with them. Bit depth (``depth``: see :func:`n3cli.io.images.write_image`, else the
    input's) and alpha follow the input frames."""
    import tifffile

    from .atomic import atomic_write
    from .images import DEPTHS, check_depth

    path = Path(path)
    if path.suffix.lower() not in TIFF_EXTS:
        raise ImageError(f"{stack.path}: a stack of {stack.frames} images is written as a TIFF stack: give the "
                         "output the extension .tif")
    check_depth(path, depth)
    dtype = DEPTHS[depth] if depth else stack.dtype
    h, w = height or stack.height, width or stack.width
    shape = (*stack.lead_shape, h, w) + ((stack.samples,) if stack.samples > 1 else ())
    axes = stack.lead_axes + "YX" + ("S" if stack.samples > 1 else "")
    gain = w / stack.width
    resolution = (stack.resolution[0] * gain, stack.resolution[1] * gain) if stack.resolution else None
    written = [0]

    def pages() -> Iterator[np.ndarray]:
        for img, pixels in frames:
            arr = to_array(img, pixels, dtype)
            written[0] += 1
            yield np.ascontiguousarray(arr[:, :, 0] if arr.shape[2] == 1 else arr)

    kw: dict = {"photometric": "rgb" if stack.samples > 1 else "minisblack", "software": software}
    if stack.imagej is not None:
        meta = {k: v for k, v in stack.imagej.items() if k not in ("ImageJ", "images", "channels", "slices", "frames")}
        for k in ("xorigin", "yorigin"):  # in pixels: they move with the enlargement
            if isinstance(meta.get(k), (int, float)):
                meta[k] = meta[k] * gain
        kw.update(imagej=True, metadata={**meta, "axes": axes})
    elif stack.ome is not None:
        meta = dict(stack.ome)
        for k in ("PhysicalSizeX", "PhysicalSizeY"):  # a pixel's size shrinks with the enlargement
            if k in meta:
                meta[k] = meta[k] / gain
        kw.update(ome=True, metadata={**meta, "axes": axes}, compression="zlib" if stack.compressed else None)
    else:
        kw.update(metadata={"axes": axes}, compression="zlib" if stack.compressed else None)
    if resolution:
        kw.update(resolution=resolution, resolutionunit=stack.resolution_unit)

    def write(tmp: str) -> None:
        tifffile.imwrite(tmp, pages(), shape=shape, dtype=dtype, **kw)
        if written[0] != stack.frames:
            raise ImageError(f"{stack.path}: {written[0]} of {stack.frames} frames came back")

    atomic_write(path, write)
