"""The blocked form of the N³ block's two halves: a loop over block rows of query patches.

* distances: patch inner products are sums of four cell inner products, which come from one
  matrix product per block of ``R x R`` query patches against the band of cells its windows reach;
* aggregation: an output cell is the average, over the patches covering it, of the matching cell of
  each neighbour patch. Adding the covering patches' weights first turns that into one matrix
  product per block of output cells against the same kind of band.

Nothing of size (patches x window x patch features) is built; the largest intermediates are
(patches x window) weights and one block row of bands. Differentiable (training) and, with
``into``, writing straight into the block's output (GPU inference).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .cells import (
    band_row,
    box2,
    cells_last,
    covering_count,
    window_norms,
    window_start,
    window_starts,
)


def distances(cells: Tensor, window: int, block: int) -> Tensor:
    """Squared distances of each patch to its window's candidates (itself included),
    ``(B, nh, nw, window**2)``. ``cells``: ``(B, D, nh+1, nw+1)`` cells of the embedding."""
    B = cells.shape[0]
    nh, nw = cells.shape[-2] - 1, cells.shape[-1] - 1
    w, R = window, block
    dev = cells.device
    sr, sc = window_starts(nh, w, dev), window_starts(nw, w, dev)
    norms = box2((cells * cells).sum(1))  # (B, nh, nw) squared patch norms
    cand_norms = window_norms(norms, w)

    nbr, nbc = -(-nh // R), -(-nw // R)
    padded = cells_last(F.pad(cells, (0, R + 1, 0, R + 1)))
    Lq, Lk = R + 1, R + w  # band sides: a block's query cells, and the cells its windows reach
    q0 = torch.arange(nbc, device=dev) * R  # block column starts (query cells)
    k0 = sc[q0]  # candidate band column starts
    # column part of the gather index into the Gram matrix (depends on the block column only)
    qj = torch.arange(R, device=dev)
    jj = (q0.view(-1, 1) + qj).clamp(max=nw - 1)  # (nbc, R) query patch columns
    ccol = sc[jj].unsqueeze(-1) - k0.view(-1, 1, 1) + torch.arange(w, device=dev)  # (nbc,R,w)
    inner = cells.new_empty(B, nbr * R, nbc * R, w * w)
    for bi in range(nbr):
        i0 = bi * R
        r0 = window_start(i0, nh, w)
        qb = band_row(padded, i0, Lq, q0)  # (B, nbc, Lq*Lq, D)
        kb = band_row(padded, r0, Lk, k0)  # (B, nbc, Lk*Lk, D)
        gram = torch.matmul(qb, kb.transpose(-1, -2)).view(B, nbc, Lq * Lq * Lk * Lk)
        ii = (i0 + torch.arange(R, device=dev)).clamp(max=nh - 1)
        crow = sr[ii].unsqueeze(-1) - r0 + torch.arange(w, device=dev)  # (R, w)
        acc = None
        for da in (0, 1):  # the patch's four cells: (row, column) offsets da, db
            for db in (0, 1):
                qidx = (torch.arange(R, device=dev) + da).view(R, 1) * Lq + (qj + db).view(1, R)
                kidx = (crow + da).view(1, R, 1, w, 1) * Lk + (ccol + db).view(nbc, 1, R, 1, w)
                idx = qidx.view(1, R, R, 1, 1) * (Lk * Lk) + kidx  # (nbc, R, R, w, w)
                t = torch.gather(gram, 2, idx.reshape(1, nbc, -1).expand(B, -1, -1))
                acc = t if acc is None else acc + t
        acc = acc.view(B, nbc, R, R, w * w).permute(0, 2, 1, 3, 4)
        inner[:, i0 : i0 + R] = acc.reshape(B, R, nbc * R, w * w)
    inner = inner[:, :nh, :nw]
    return norms.unsqueeze(-1) + cand_norms - 2.0 * inner


def aggregate(weights: Tensor, cells: Tensor, window: int, stride: int, block: int,
              into: tuple[Tensor, Tensor, int, int] | None = None, padded: bool = False) -> Tensor | None:
    """Neighbour images ``(B, k*C, Hc*s, Wc*s)``: overlap-averaged weighted sums of candidate cells.

    ``weights``: ``(k, B, nh, nw, window**2)``; ``cells``: ``(B, C*s*s, nh+1, nw+1)`` cells of the
    input. With ``into = (dst, x, top, left)`` (inference), writes ``N_j - x`` cropped at
    ``(top, left)`` to ``dst`` ``(B, k, C, H, W)`` instead, one block row at a time, and returns None.
    ``padded``: ``weights`` already carry the zero border this function would add.
    """
    k, B, _, _, ww = weights.shape
    D, Hc, Wc = cells.shape[1:]
    nh, nw = Hc - 1, Wc - 1
    w, R, s = window, block, stride
    dev = cells.device
    sr, sc = window_starts(nh, w, dev), window_starts(nw, w, dev)
    nbr, nbc = -(-Hc // R), -(-Wc // R)
    L = R + w + 1  # band side: the cells a block of output cells' covering patches reach
    padded_cells = cells_last(F.pad(cells, (0, R + 1, 0, R + 1)))
    # weights padded with one empty patch before and enough after, so cell a's covering
    # patches a-1 and a are always addressable (the missing ones weigh nothing)
    wp = weights if padded else F.pad(weights, (0, 0, 1, nbc * R - nw + 1, 1, nbr * R - nh + 1))
    count = covering_count(nh, nw, cells)  # small integers: exact in any order

    b0 = torch.arange(nbc, device=dev) * R  # output-cell block column starts
    c0 = sc[(b0 - 1).clamp(0, nw - 1)]  # candidate band column starts
    C = D // (s * s)
    # written straight in pixel layout (cell rows x s, cell columns x s): no pixel_shuffle pass
    if into is None:
        out = cells.new_empty(B, k, C, nbr * R * s, nbc * R * s)
    else:
        dst, x, top, left = into
        H, W = dst.shape[-2:]
        buf = cells.new_empty(B, k, C, R * s, nbc * R * s)  # one block row, reused
    inv = F.pad(1.0 / count, (0, nbc * R - Wc, 0, nbr * R - Hc), value=1.0)
    inv = inv.view(nbr * R, 1, nbc, R, 1)
    grad = torch.is_grad_enabled() and (weights.requires_grad or cells.requires_grad)
    bl = torch.arange(R, device=dev)
    kw = torch.arange(w, device=dev)
    # offset of each output cell's row in the dense (cells x band) weight matrix
    cellpos = torch.arange(R * R, device=dev).repeat_interleave(ww) * (L * L)
    reuse = None
    for bi in range(nbr):
        a0 = bi * R
        r0 = window_start(max(a0 - 1, 0), nh, w)
        if grad:
            dense = cells.new_zeros(B, nbc, k, R * R, L * L)
        else:  # inference: one buffer for all block rows (no fresh pages per row)
            reuse = cells.new_zeros(B, nbc, k, R * R, L * L) if reuse is None else reuse.zero_()
            dense = reuse
        for da in (0, 1):
            prow = (a0 + bl - da).clamp(0, nh - 1)  # covering patch rows (clamped if absent)
            brow = sr[prow].unsqueeze(-1) + kw + da - r0  # (R, w) band rows
            for db in (0, 1):
                pcol = (b0.view(-1, 1) + bl - db).clamp(0, nw - 1)  # (nbc, R)
                bcol = sc[pcol].unsqueeze(-1) + kw + db - c0.view(-1, 1, 1)  # (nbc, R, w)
                idx = (brow.view(1, R, 1, w, 1) * L + bcol.view(nbc, 1, R, 1, w)).reshape(nbc, 1, R * R * ww)
                # built once per (da, db) and broadcast over batch and neighbours, never copied
                idx = (idx + cellpos).unsqueeze(0).expand(B, nbc, k, R * R * ww)
                src = wp[:, :, a0 - da + 1 : a0 - da + 1 + R, 1 - db : 1 - db + nbc * R]
                src = src.reshape(k, B, R, nbc, R, ww).permute(1, 3, 0, 2, 4, 5)
                src = src.reshape(B, nbc, k, R * R * ww)
                dense.view(B, nbc, k, -1).scatter_add_(-1, idx, src)
        band = band_row(padded_cells, r0, L, c0)  # (B, nbc, L*L, D)
        y = torch.matmul(dense.view(B, nbc, k * R * R, L * L), band)
        # (B, k, C, R, s, nbc, R, s): cell row, pixel row, block column, cell column, pixel column
        y = y.view(B, nbc, k, R, R, C, s, s).permute(0, 2, 5, 3, 6, 1, 4, 7)
        if into is not None:
            torch.mul(y, inv[a0 : a0 + R], out=buf.view(B, k, C, R, s, nbc, R, s))
            lo, hi = max(a0 * s, top), min((a0 + R) * s, top + H)  # this block's rows in the crop
            if hi > lo:
                torch.sub(buf[..., lo - a0 * s : hi - a0 * s, left : left + W], x[:, None, :, lo - top : hi - top],
                          out=dst[:, :, :, lo - top : hi - top])
            continue
        rows = out[:, :, :, a0 * s : (a0 + R) * s].view(B, k, C, R, s, nbc, R, s)
        if grad:
            rows[...] = y * inv[a0 : a0 + R]
        else:
            torch.mul(y, inv[a0 : a0 + R], out=rows)
    if into is not None:
        return None
    return out[..., : Hc * s, : Wc * s].reshape(B, k * C, Hc * s, Wc * s)
