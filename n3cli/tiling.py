"""Tiled inference: run a network on overlapping tiles so any image fits in memory.

The image is cut into *cores* that partition it; each tile is its core plus ``overlap`` pixels
of context on every side (clipped at the image border). Only the core goes to the output,
cross-faded with its neighbours over a ``blend``-pixel band centred on the core boundary, so
seams are invisible. Where ``overlap - blend/2`` covers the network's receptive field, the
result equals the untiled output up to float noise.

Pure functions on NumPy arrays, no model state, no I/O and no torch: every task (denoise, raw,
upscale) and every backend (torch, onnxruntime) uses them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

MAX_BLEND = 16


@dataclass(frozen=True)
class Span:
    """One tile along one axis: the window ``[start, stop)`` that runs and its ``[core0, core1)``."""

    start: int
    stop: int
    core0: int
    core1: int


def plan_axis(length: int, tile: int, overlap: int, align: int = 1, min_size: int = 1) -> list[Span]:
    """Tiles along one axis: cores of at most ``tile`` (+ alignment) pixels, windows with context.

    Core boundaries and window starts are multiples of ``align`` (so tiles see the same patch
    grid as the whole image); windows are at least ``min_size`` long when the image is.
    """
    if tile < 1 or overlap < 0:
        raise ValueError(f"tile must be >= 1 and overlap >= 0 (got {tile}, {overlap})")
    n = max(1, math.ceil(length / tile))
    bounds = [0] + [(round(i * length / n) // align) * align for i in range(1, n)] + [length]
    bounds = sorted(set(bounds))
    pad = math.ceil(overlap / align) * align
    spans = []
    for c0, c1 in zip(bounds[:-1], bounds[1:]):
        s, e = max(0, c0 - pad), min(length, c1 + pad)
        short = min(min_size, length) - (e - s)
        if short > 0:  # grow the window inside the image up to the network's minimum size
            grow = math.ceil(short / align) * align
            s = max(0, s - grow)
            e = min(length, max(e, s + min(min_size, length)))
            s = max(0, min(s, e - min(min_size, length)))
        spans.append(Span(s, e, c0, c1))
    return spans


def plan_grid(height: int, width: int, tile: int, overlap: int, align: int = 1,
              min_size: int = 1) -> tuple[list[Span], list[Span]]:
    """Row and column tiles (:func:`plan_axis`) whose windows hold at most about ``(tile + 2 *
    overlap)^2`` pixels each (the memory a tile may use), with the fewest pixels run in all.

    Most images get square tiles. A thin image or a panorama gets long ones: a strip a few hundred
    pixels high would otherwise run as many small tiles, each with its context and each padded up
    to the network's minimum size.
    """
    budget = (tile + 2 * overlap) ** 2
    pad = math.ceil(overlap / align) * align

    def longest(spans: list[Span]) -> int:
        return max(s.stop - s.start for s in spans)

    def area(spans: list[Span]) -> int:
        return sum(s.stop - s.start for s in spans)

    best = (plan_axis(height, tile, overlap, align, min_size), plan_axis(width, tile, overlap, align, min_size))
    for across in (False, True):  # fewer rows of longer tiles, then fewer columns of taller ones
        length, other = (width, height) if across else (height, width)
        for n in range(1, len(best[1 if across else 0]) + 1):
            spans = plan_axis(length, math.ceil(length / n), overlap, align, min_size)
            core = budget // longest(spans) - 2 * pad - align
            if core <= tile:
                continue
            grid = (plan_axis(other, core, overlap, align, min_size), spans)
            grid = grid[::-1] if not across else grid
            if (area(grid[0]) * area(grid[1]), len(grid[0]) * len(grid[1])) < \
                    (area(best[0]) * area(best[1]), len(best[0]) * len(best[1])):
                best = grid
    return best


def plan_axis_fixed(length: int, window: int, overlap: int, align: int = 1) -> list[Span]:
    """Tiles along one axis for a network that only takes ``window``-pixel inputs.

    Every window is exactly ``window`` long (shifted inward at the image border rather than cut,
    so it still touches the border exactly as the whole image does); an axis shorter than the
    window gives one span ``[0, length)`` that the caller pads. ``window`` and ``length`` must be
    multiples of ``align``.
    """
    if length <= window:
        return [Span(0, length, 0, length)]
    pad = math.ceil(overlap / align) * align
    core = window - 2 * pad - align  # longest interior core whose context fits in the window
    if core < align:
        raise ValueError(f"a {window}-pixel tile cannot hold {overlap} pixels of context on both sides")
    spans = []
    for sp in plan_axis(length, core, 0, align):
        start = min(max(0, sp.core0 - pad), length - window)
        spans.append(Span(start, start + window, sp.core0, sp.core1))
    return spans


def centred_mirror_steps(height: int, width: int, extra_h: int, extra_w: int
                         ) -> list[tuple[tuple[int, int, int, int], str]]:
    """How to mirror-pad an image by ``extra_h`` rows and ``extra_w`` columns split around its
    centre (top and left get the smaller half): steps of ``((top, bottom, left, right), mode)``.

    One reflection adds at most side - 1 pixels, so large pads take several; a 1-pixel side can
    only be repeated (``edge``). The runner (NumPy) and the networks' own padding of small inputs
    (torch) both follow these steps, so the two backends see the same pixels.
    """
    pads = [extra_h // 2, extra_h - extra_h // 2, extra_w // 2, extra_w - extra_w // 2]
    steps: list[tuple[tuple[int, int, int, int], str]] = []
    while any(pads):
        if min(height, width) < 2:
            steps.append(((pads[0], pads[1], pads[2], pads[3]), "edge"))
            break
        step = (min(pads[0], height - 1), min(pads[1], height - 1), min(pads[2], width - 1), min(pads[3], width - 1))
        steps.append((step, "reflect"))
        height, width = height + step[0] + step[1], width + step[2] + step[3]
        pads = [a - b for a, b in zip(pads, step)]
    return steps


def blend_weights(span: Span, length: int, blend: int, scale: int = 1) -> np.ndarray:
    """Output weights of one tile along one axis (at output resolution), over its window.

    1 inside the core, linear ramps of width ``blend`` centred on interior core boundaries; the
    ramps of two neighbours sum to 1, so the weights partition unity.
    """
    pos = (np.arange(span.start * scale, span.stop * scale) + 0.5) / scale  # pixel centres, input units
    w = np.ones_like(pos)
    if span.core0 > 0:
        w = np.minimum(w, _ramp(pos - span.core0, blend))
    if span.core1 < length:
        w = np.minimum(w, _ramp(span.core1 - pos, blend))
    return w.astype(np.float32)


def _ramp(d: np.ndarray, blend: int) -> np.ndarray:
    if blend <= 0:
        return (d >= 0).astype(np.float64)
    return np.clip(d / blend + 0.5, 0.0, 1.0)


def run_tiled(
    fn: Callable[[np.ndarray], np.ndarray],
    x: np.ndarray,
    tile: int,
    overlap: int,
    align: int = 1,
    min_size: int = 1,
    scale: int = 1,
    blend: int | None = None,
    on_tile: Callable[[int, int], None] | None = None,
    fixed: tuple[int, int] | None = None,
    batch: int = 1,
) -> np.ndarray:
    """Apply ``fn`` to ``x`` (``(1, C, H, W)`` float32) tile by tile and stitch the results.

    ``fn`` maps ``(B, C, h, w)`` to ``(B, C', h*scale, w*scale)``, each sample on its own; only
    ``batch`` tiles' activations are ever alive. ``batch > 1`` runs up to that many tiles of the
    same size in one call (an accelerator is busier with a few tiles at once than with one small
    one). ``fixed=(th, tw)``: ``fn`` only takes inputs of exactly that size (``tile`` is then
    ignored); tiles are planned to that size and ``fn`` must handle smaller images itself.
    ``on_tile(done, total)`` reports progress.
    """
    _, _, H, W = x.shape
    if blend is None:
        blend = min(MAX_BLEND, overlap)
    blend = min(blend, 2 * overlap)  # the ramp must stay inside the context
    if fixed is not None:
        rows = plan_axis_fixed(H, fixed[0], overlap, align)
        cols = plan_axis_fixed(W, fixed[1], overlap, align)
    else:
        rows, cols = plan_grid(H, W, tile, overlap, align, min_size)
    if len(rows) == 1 and len(cols) == 1:
        y = fn(x)
        if on_tile:
            on_tile(1, 1)
        return np.asarray(y, dtype=np.float32)
    # tiles of one size run together; cores differ by up to ``align`` pixels and border windows
    # lose context, so a grid has a few sizes, each taken in row-major order
    groups: dict[tuple[int, int], list[tuple[Span, Span]]] = {}
    for r in rows:
        for c in cols:
            groups.setdefault((r.stop - r.start, c.stop - c.start), []).append((r, c))
    out = None
    total, done = len(rows) * len(cols), 0
    for tiles in groups.values():
        for i in range(0, len(tiles), max(1, batch)):
            chunk = tiles[i : i + max(1, batch)]
            xs = np.concatenate([x[:, :, r.start : r.stop, c.start : c.stop] for r, c in chunk], 0)
            ys = np.asarray(fn(np.ascontiguousarray(xs)), dtype=np.float32)
            if out is None:
                out = np.zeros((1, ys.shape[1], H * scale, W * scale), dtype=np.float32)
            for (r, c), y in zip(chunk, ys):
                w = blend_weights(r, H, blend, scale)[:, None] * blend_weights(c, W, blend, scale)[None, :]
                out[0, :, r.start * scale : r.stop * scale, c.start * scale : c.stop * scale] += y * w
            done += len(chunk)
            if on_tile:
                on_tile(done, total)
    return out
