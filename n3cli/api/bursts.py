"""A burst's files in, one clean photo out (`n3 denoise --burst`)."""
from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from ..errors import N3Error
from .loading import ModelCache


def burst_file(srcs: Sequence[str | os.PathLike], dst: str | os.PathLike, model: ModelCache | str | None = None,
               sigma: float | None = None, tile: int | None = None, overlap: int | None = None,
               strength: float = 1.0, on_tile: Callable[[int, int], None] | None = None, tta: bool = False,
               chroma_strength: float | None = None, quality: int | None = None, depth: str | None = None,
               max_pixels: int | None = None, compare: bool = False, overwrite: bool = False,
               on_frame: Callable[[int, dict], None] | None = None, device: str = "auto",
               backend: str = "auto") -> dict:
    """Merge the photos ``srcs`` of one scene (the first is the reference: the output shows the
    scene as it was then) and denoise the merge (:func:`n3cli.pipelines.burst.denoise_burst`);
    write ``dst`` atomically with the first photo's metadata. One TIFF stack may stand for the
    frames (a time series).

    The model is the one ``model`` (a :class:`ModelCache`, name or path) picks for the first
    photo; ``sigma`` is one frame's noise level. Every frame must be readable and of the first's
    size (else N3Error, nothing written); a frame that cannot be registered (another scene, too
    blurred) is left out and said so in ``"frame_records"``. Returns what
    :func:`~n3cli.pipelines.burst.denoise_burst` used, with ``"model"``, ``"backend"`` and the
    noise's kind where it was read. ``compare``: ``<dst>.compare.png``, the first photo beside
    the result (see :func:`n3cli.api.denoise_file`). Raw files are not taken: merge them developed.
    """
    from ..io.folders import same_file
    from ..io.images import check_depth, write_image
    from ..io.raw import is_raw_path
    from ..pipelines.burst import denoise_burst
    from .files import _compare_target

    srcs = [Path(s) for s in srcs]
    if not srcs:
        raise N3Error("a burst needs photos")
    for s in srcs:
        if is_raw_path(s):
            raise N3Error(f"{s}: raw files are not merged as a burst; develop them first or denoise them one by one")
        if same_file(s, Path(dst)):
            raise N3Error(f"{s}: output would overwrite an input; choose another -o")
    if Path(dst).suffix.lower() == ".dng":
        raise N3Error(f"{dst}: a burst is written as a photo (.png, .jpg, .tif, ...), not a DNG")
    check_depth(dst, depth)
    cmp, skipped = _compare_target(srcs[0], dst, compare, overwrite)
    cache = model if isinstance(model, ModelCache) else ModelCache(model, device, backend)
    frames = _frames(srcs, max_pixels)
    first, name = next(frames)
    loaded, kind = cache.for_image(first.pixels)

    def pixels():
        yield first.pixels
        for img, where in frames:
            if img.pixels.shape != first.pixels.shape:
                raise N3Error(f"{where}: {_size(img.pixels)}, the first frame ({name}) {_size(first.pixels)}: "
                              "a burst's frames are one size")
            yield img.pixels

    def said(i: int, rec: dict) -> None:
        rec["input"] = str(srcs[i]) if len(srcs) > 1 else f"{srcs[0]} frame {i + 1}"
        if on_frame is not None:
            on_frame(i, rec)

    out, used = denoise_burst(loaded, pixels(), sigma, tile, overlap, strength, on_tile, tta, chroma_strength,
                              kind.kind if kind is not None else None, said)
    write_image(dst, first, out, quality, depth)
    res = {"model": loaded.info.name, "backend": loaded.describe(), **used, **skipped}
    if kind is not None:
        res["noise_kind"], res["noise_reason"] = kind.kind, kind.reason
    if cmp:
        from ..pipelines.compare import write_compare

        res["compare"] = write_compare(cmp, first.pixels, out)
    return res


def _size(pixels) -> str:
    return f"{pixels.shape[1]}x{pixels.shape[0]}" + (" colour" if pixels.ndim == 3 and pixels.shape[2] == 3 else " gray")


def _frames(srcs: list[Path], max_pixels: int | None) -> Iterator[tuple]:
    """(image, where it comes from) for each frame: the files' images in order, or one stack's frames."""
    from ..io.images import read_image
    from ..io.stacks import open_stack, read_frames

    stacks = [open_stack(s, max_pixels) for s in srcs]
    if any(st is not None for st in stacks):
        if len(srcs) > 1:
            name = next(s for s, st in zip(srcs, stacks) if st is not None)
            raise N3Error(f"{name}: a TIFF stack is a burst of its own; give it alone")
        stack = stacks[0]
        if "C" in stack.lead_axes.upper():
            raise N3Error(f"{srcs[0]}: its frames include channels ({stack.lead_axes}); a burst is frames of one scene")
        for i, img in enumerate(read_frames(stack)):
            yield img, f"{srcs[0]} frame {i + 1}"
        return
    if len(srcs) < 2:
        raise N3Error(f"{srcs[0]}: a burst needs two photos or more (or a TIFF stack of several frames)")
    for s in srcs:
        yield read_image(s, max_pixels), s
