"""Running an image-to-image network on a whole image, whatever executes it.

A *runner* (torch or onnxruntime, see :mod:`n3cli.runtime.backends`) maps one ``(1, C, h, w)`` float32
array to its output; :func:`run_image` adds what every task needs around it: padding to the
network's size multiple and minimum size, tiling, and retrying with smaller tiles when an
accelerator runs out of memory. NumPy only: the ONNX path never imports torch.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from ..errors import N3Error
from ..store.modelinfo import DEFAULT_CONTEXT, ModelInfo
from ..tiling import centred_mirror_steps, run_tiled

DEFAULT_OVERLAP = DEFAULT_CONTEXT
MIN_TILE = 128


class TileMemoryError(N3Error):
    """A tile did not fit in the accelerator's memory (the caller may retry with smaller tiles)."""


class Runner(Protocol):
    """What :func:`run_image` needs of a backend."""

    info: ModelInfo | None
    path: Path | None
    min_size: int  # smallest input side the network takes
    size_multiple: int  # input sides must be multiples of this
    context: int  # tile overlap that makes tiled == untiled up to float noise
    fixed_size: tuple[int, int] | None  # the only input size a static-shape graph takes

    def run(self, x: np.ndarray) -> np.ndarray:
        """``(B, C, h, w)`` float32 -> ``(B, C', h*scale, w*scale)`` float32 (B = 1 unless
        :meth:`tiles_per_forward` says more)."""
        ...

    def tiles_per_forward(self, tile: int, overlap: int) -> int:
        """How many tiles of ``tile`` px (plus context) one :meth:`run` call takes at most."""
        ...

    def auto_tile(self, overlap: int) -> int:
        """Largest tile core that fits a safe share of the free memory where it runs."""
        ...

    def describe(self) -> str:
        """Where it runs, for one log line (e.g. ``torch cpu (8 threads)``)."""
        ...


TTA_VIEWS = 8  # the four rotations of the image and of its mirror image


def run_image(runner: Runner, x: np.ndarray, tile: int | None = None, overlap: int | None = None,
              on_tile: Callable[[int, int], None] | None = None, scale: int = 1, tta: bool = False,
              constants: Sequence[float] = ()) -> np.ndarray:
    """Run ``runner`` on a ``(1, C, H, W)`` image of any size; returns ``(1, C', H*scale, W*scale)``.

    The image is mirror-padded to the network's size multiple (so tiled and whole-image runs see
    the same patch grid) and, when smaller than the network's minimum (or than a fixed graph
    size), mirror-padded around its centre up to it; the padding is cropped from the result.
    ``tta``: the mean of the results on the image's eight rotations and mirror images, each turned
    back (test-time augmentation: 8x the time, for a little more quality). ``constants``: planes of
    these values the network takes after the image's channels (a noise level map), appended to each
    tile as it runs: the result of appending them to ``x``, without a full-size copy of the image
    and its maps (a 24 MP raw file's noise maps took 290 MB in float64).
    """
    if not tta:
        return _run_image(runner, x, tile, overlap, on_tile, scale, constants)
    total, progress = None, tta_progress(on_tile)
    for view in range(TTA_VIEWS):
        y = _run_image(runner, dihedral(x, view), tile, overlap, progress, scale, constants)
        y = dihedral(y, view, inverse=True)
        total = y.astype(np.float32) if total is None else total + y
    return total / np.float32(TTA_VIEWS)


def tta_progress(on_tile: Callable[[int, int], None] | None) -> Callable[[int, int], None]:
    """A tile callback for the eight passes of test-time augmentation that reports to ``on_tile``
    as one bar over all of them."""
    done = [0]

    def progress(i: int, n: int) -> None:
        done[0] += 1
        if on_tile:
            on_tile(done[0], n * TTA_VIEWS)

    return progress


def dihedral(x: np.ndarray, view: int, inverse: bool = False) -> np.ndarray:
    """View ``view`` (0 to ``TTA_VIEWS - 1``) of a ``(..., H, W)`` array: ``view % 4`` quarter
    turns, mirrored first when ``view >= 4``; ``inverse`` turns it back."""
    turns, mirror = view % 4, view >= 4
    if inverse:
        x = np.rot90(x, -turns, axes=(-2, -1))
        return np.ascontiguousarray(x[..., ::-1] if mirror else x)
    x = x[..., ::-1] if mirror else x
    return np.ascontiguousarray(np.rot90(x, turns, axes=(-2, -1)))


def _run_image(runner: Runner, x: np.ndarray, tile: int | None, overlap: int | None,
               on_tile: Callable[[int, int], None] | None, scale: int, constants: Sequence[float] = ()) -> np.ndarray:
    x = np.ascontiguousarray(x, dtype=np.float32)
    run = _with_constants(runner.run, constants) if len(constants) else runner.run
    H, W = x.shape[-2:]
    mult = max(1, runner.size_multiple)
    overlap = runner.context if overlap is None else overlap
    xp = _pad_end(x, (-H) % mult, (-W) % mult)
    need = runner.fixed_size or (runner.min_size, runner.min_size)
    ch, cw = max(0, need[0] - xp.shape[-2]), max(0, need[1] - xp.shape[-1])
    if ch or cw:
        xp = pad_centered(xp, ch, cw)
    if runner.fixed_size:
        ctx = -(-overlap // mult) * mult
        for side, length in zip(runner.fixed_size, xp.shape[-2:]):
            if length > side and side - 2 * ctx - mult < mult:
                raise N3Error(f"the model's fixed {side}-pixel input cannot hold {overlap} pixels of tile context "
                              "on both sides; use a smaller --overlap or export with a larger --tile")
    tile = tile or (0 if runner.fixed_size else runner.auto_tile(overlap))
    batch = 1 if runner.fixed_size else max(1, runner.tiles_per_forward(tile, overlap))
    while True:
        try:
            y = run_tiled(run, xp, tile, overlap, align=mult, min_size=runner.min_size, scale=scale,
                          on_tile=on_tile, fixed=runner.fixed_size, batch=batch)
            break
        except TileMemoryError:
            if batch > 1:  # fewer tiles per forward before smaller ones: the result stays the same
                batch //= 2
                continue
            if runner.fixed_size or tile <= MIN_TILE:
                raise N3Error(f"out of memory with tile {tile or runner.fixed_size}; try a smaller --tile") from None
            tile = max(MIN_TILE, tile // 2)
    top, left = ch // 2 * scale, cw // 2 * scale
    return y[..., top : top + H * scale, left : left + W * scale]


def _with_constants(run: Callable[[np.ndarray], np.ndarray], values: Sequence[float]) -> Callable[[np.ndarray], np.ndarray]:
    planes = np.asarray(values, dtype=np.float32)[None, :, None, None]

    def run_with(x: np.ndarray) -> np.ndarray:
        b, _, h, w = x.shape
        return run(np.concatenate([x, np.broadcast_to(planes, (b, planes.shape[1], h, w))], axis=1))

    return run_with


def _pad_end(x: np.ndarray, ph: int, pw: int) -> np.ndarray:
    if not (ph or pw):
        return x
    mode = "reflect" if min(x.shape[-2:]) > max(ph, pw) else "edge"
    return np.pad(x, ((0, 0), (0, 0), (0, ph), (0, pw)), mode=mode)


def pad_centered(x: np.ndarray, ph: int, pw: int) -> np.ndarray:
    """Mirror-pad ``ph`` rows and ``pw`` columns split around the centre (:func:`centred_mirror_steps`)."""
    for (top, bottom, left, right), mode in centred_mirror_steps(*x.shape[-2:], ph, pw):
        x = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)), mode=mode)
    return x


def available_ram() -> float:
    """Bytes of RAM available to new allocations (MemAvailable), 8 GiB when unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return float(line.split()[1]) * 1024
    except OSError:
        pass
    return 8 * 2**30


def cpu_tile(overlap: int, bytes_per_px: int) -> int:
    """Tile core for CPU inference: a quarter of available RAM, at most 3 GiB, 128..2048 px."""
    budget = min(0.25 * available_ram(), 3 * 2**30)
    side = int((budget / bytes_per_px) ** 0.5) - 2 * overlap
    return int(max(MIN_TILE, min(2048, side)) // 16 * 16)
