"""Cell geometry shared by every form of the N³ block.

Patches of size ``2s`` with stride ``s`` tile the zero-padded feature map, so every ``s x s`` *cell*
lies in exactly four patches (per axis: patch ``a - 1`` and patch ``a`` cover cell ``a``). A patch
is then its 2x2 cells, and everything the block computes per patch is a sum over cells.
Candidates are the ``window x window`` patches around each query, the window shifted, not cut,
at the border.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor


class Cells(NamedTuple):
    """A feature map cut into cells: ``(B, C*s*s, Hc, Wc)`` (pixel_unshuffle layout), and where the
    image sits in the padded frame."""

    values: Tensor
    top: int
    left: int

    @property
    def grid(self) -> tuple[int, int]:
        """Patches per axis ``(nh, nw)``: one fewer than cells."""
        return self.values.shape[-2] - 1, self.values.shape[-1] - 1


def frame_padding(height: int, width: int, patch: int, stride: int) -> tuple[int, int, int, int]:
    """Zero padding ``(left, right, top, bottom)`` that makes the patch grid cover the image evenly."""
    ph, pw = (-(height - patch)) % stride, (-(width - patch)) % stride
    return pw // 2, pw - pw // 2, ph // 2, ph - ph // 2


def to_cells(t: Tensor, pads: tuple[int, int, int, int], stride: int) -> Cells:
    """``t`` zero-padded by ``pads`` and cut into ``stride x stride`` cells."""
    return Cells(F.pixel_unshuffle(F.pad(t, pads), stride), pads[2], pads[0])


def window_starts(n: int, window: int, device: torch.device | None = None) -> Tensor:
    """First grid index of each position's window of ``window`` candidates (clamped inside)."""
    i = torch.arange(n, device=device)
    return (i - window // 2).clamp(0, n - window)


def window_start(i: int, n: int, window: int) -> int:
    """:func:`window_starts` for one position, as a Python int (shape arithmetic only, so the
    block loops trace to a static graph)."""
    return max(0, min(i - window // 2, n - window))


def self_index(nh: int, nw: int, window: int, device: torch.device) -> Tensor:
    """Window position (row-major in ``window x window``) of each patch itself, ``(nh, nw)``."""
    ki = torch.arange(nh, device=device) - window_starts(nh, window, device)
    kj = torch.arange(nw, device=device) - window_starts(nw, window, device)
    return ki.view(-1, 1) * window + kj.view(1, -1)


def box2(t: Tensor) -> Tensor:
    """Sum over 2x2 neighbouring cells: cell map ``(.., Hc, Wc)`` -> patch map ``(.., Hc-1, Wc-1)``."""
    return t[..., :-1, :-1] + t[..., 1:, :-1] + t[..., :-1, 1:] + t[..., 1:, 1:]


def covering_count(nh: int, nw: int, like: Tensor) -> Tensor:
    """Patches covering each cell ``(Hc, Wc)``: 4 inside, 2 on the edges, 1 in the corners."""
    ones = F.pad(torch.ones(1, 1, nh, nw, device=like.device, dtype=like.dtype), (1, 1, 1, 1))
    return box2(ones)[0, 0]


def window_norms(norms: Tensor, window: int) -> Tensor:
    """Each patch's candidates' values of a patch map ``(B, nh, nw)``, as ``(B, nh, nw, window**2)``."""
    B, nh, nw = norms.shape
    dev = norms.device
    ar = torch.arange(window, device=dev)
    rows = window_starts(nh, window, dev).unsqueeze(1) + ar
    cols = window_starts(nw, window, dev).unsqueeze(1) + ar
    cand = norms[:, rows][..., cols]  # (B, nh, w, nw, w)
    return cand.permute(0, 1, 3, 2, 4).reshape(B, nh, nw, window * window)


def cells_last(cells: Tensor) -> Tensor:
    """``(B, D, H, W)`` -> ``(B, H, W, D)``: each cell's D values contiguous, so band gathers copy
    whole cells."""
    return cells.permute(0, 2, 3, 1).contiguous()


def bands(cells: Tensor, row_starts: Tensor, col_starts: Tensor, size: int) -> Tensor:
    """Every ``size x size`` band of a (padded, cells-last) cell map whose top-left corners are the
    grid ``row_starts x col_starts``. Returns ``(B, n_rows, n_cols, size**2, D)``."""
    B, _, _, D = cells.shape
    nr, nc = row_starts.shape[0], col_starts.shape[0]
    ar = torch.arange(size, device=cells.device)
    rows = (row_starts.view(-1, 1) + ar).reshape(-1)
    cols = (col_starts.view(-1, 1) + ar).reshape(-1)
    b = cells.index_select(1, rows).index_select(2, cols).view(B, nr, size, nc, size, D)
    return b.permute(0, 1, 3, 2, 4, 5).reshape(B, nr, nc, size * size, D)


def band_row(cells: Tensor, row: int, size: int, col_starts: Tensor) -> Tensor:
    """The ``size x size`` bands of a (padded, cells-last) cell map that start at cell row ``row``,
    one per column start. Returns ``(B, n_bands, size**2, D)``."""
    B, _, width, D = cells.shape
    ar = torch.arange(size, device=cells.device)
    # one index_select of whole D-vectors, already in band order: advanced indexing plus a
    # permuted copy cost several times more on CPUs
    idx = ((row + ar).view(1, size, 1) * width + col_starts.view(-1, 1, 1) + ar.view(1, 1, size)).reshape(-1)
    return cells.reshape(B, -1, D).index_select(1, idx).view(B, col_starts.shape[0], size * size, D)
