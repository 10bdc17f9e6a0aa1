"""The dense form of the N³ block, for training on small crops.

On the crops the paper trains on (80 x 80: a 15 x 15 patch grid, exactly one window) every
window covers the whole grid or most of it. There the block is best written as all-pairs matrix
products over the crop's 5 x 5 cells:

* distances: one Gram matrix of the cells (cells x cells x cell features); a patch inner product is
  the sum of its four cells' ones, i.e. four shifted views of the Gram matrix added up;
* aggregation: the weight of output cell ``a`` on input cell ``c`` is the sum, over the four patches
  covering ``a``, of their weight on the patch that brings ``c``: the patch weights added up at
  four shifts (``K[a, c] = sum_d W[a - d, c - d]``), then one ``(k cells x cells) @ (cells x cell
  features)`` product and the overlap average.

Candidates outside a query's window (and the query itself) are masked to ``-inf``. A handful of
large matrix products, no gather, scatter or Python loop over blocks: fast backward passes, and one
graph for ``torch.compile``. Nothing of size patches x window x patch features is built. The
result equals the other forms' up to float rounding (tested against the per-patch definition,
values and gradients, in float64).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .cells import box2, covering_count, window_starts

# use the dense form while all pairs are at most this many times the window's pairs
MAX_WASTE = 2.0


def fits(nh: int, nw: int, window: int) -> bool:
    """Whether the dense form is the cheaper one for a ``nh x nw`` patch grid."""
    return nh * nw <= MAX_WASTE * window * window


def excluded(nh: int, nw: int, window: int, device: torch.device) -> Tensor:
    """``(P, P)``: True where the candidate is outside the query's window, or is the query."""
    def axis(n: int) -> Tensor:
        start = window_starts(n, window, device).view(-1, 1)
        pos = torch.arange(n, device=device).view(1, -1)
        return (pos >= start) & (pos < start + window)  # (query, candidate) inside the window

    inside = (axis(nh).view(nh, 1, nh, 1) & axis(nw).view(1, nw, 1, nw)).reshape(nh * nw, nh * nw)
    return ~inside | torch.eye(nh * nw, dtype=torch.bool, device=device)


def patch_distances(emb_cells: Tensor) -> Tensor:
    """Squared distances between all patches, ``(B, P, P)``, from the cells ``(B, D, Hc, Wc)`` of
    the (padded) embedding."""
    B, _, Hc, Wc = emb_cells.shape
    nh, nw = Hc - 1, Wc - 1
    e = emb_cells.flatten(2)  # (B, D, Hc*Wc)
    gram = torch.bmm(e.transpose(1, 2), e).view(B, Hc, Wc, Hc, Wc)
    inner = sum(gram[:, da : da + nh, db : db + nw, da : da + nh, db : db + nw] for da in (0, 1) for db in (0, 1))
    norms = box2(e.square().sum(1).view(B, Hc, Wc)).reshape(B, -1)  # (B, P)
    return norms.unsqueeze(2) + norms.unsqueeze(1) - 2.0 * inner.reshape(B, nh * nw, nh * nw)


def neighbours(weights: Tensor, cells: Tensor, stride: int) -> Tensor:
    """``(B, k*C, Hc*s, Wc*s)``: the neighbour images in the padded frame, overlap-averaged.
    ``weights``: ``(k, B, P, P)``; ``cells``: ``(B, C*s*s, Hc, Wc)`` cells of the padded input."""
    k, B = weights.shape[:2]
    D, Hc, Wc = cells.shape[1:]
    nh, nw = Hc - 1, Wc - 1
    w = weights.reshape(k * B, nh, nw, nh, nw)
    # K[a, c] = sum over the covering patches a - d of W[a - d, c - d]
    kernel = sum(F.pad(w, (db, 1 - db, da, 1 - da, db, 1 - db, da, 1 - da)) for da in (0, 1) for db in (0, 1))
    kernel = kernel.view(k, B, Hc * Wc, Hc * Wc)
    out = torch.matmul(kernel, cells.flatten(2).transpose(1, 2))  # (k, B, Hc*Wc, D)
    out = out / covering_count(nh, nw, cells).reshape(-1, 1)
    out = out.view(k, B, Hc, Wc, D).permute(1, 0, 4, 2, 3).reshape(B, k * D, Hc, Wc)
    return F.pixel_shuffle(out, stride)
