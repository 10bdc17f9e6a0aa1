"""The batched form of the N³ block's two halves: the blocked form's products with every block in
one batch. More memory, but no data-dependent Python, so it traces to a graph with dynamic height
and width (ONNX export)."""
from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import Tensor

from .cells import bands, box2, cells_last, covering_count, window_norms, window_starts

BLOCK = 8  # query patches per block side


def distances(cells: Tensor, window: int) -> Tensor:
    """:func:`.blocked.distances` with every block in one batch (same result)."""
    B = cells.shape[0]
    nh, nw = cells.shape[-2] - 1, cells.shape[-1] - 1
    w, R = window, BLOCK
    dev = cells.device
    ar = functools.partial(torch.arange, device=dev)
    sr, sc = window_starts(nh, w, dev), window_starts(nw, w, dev)
    norms = box2((cells * cells).sum(1))
    cand_norms = window_norms(norms, w)

    nbr, nbc = (nh + R - 1) // R, (nw + R - 1) // R
    padded = cells_last(F.pad(cells, (0, R + 1, 0, R + 1)))
    Lq, Lk = R + 1, R + w
    q0r, q0c = ar(nbr) * R, ar(nbc) * R  # block starts (query patches)
    k0r, k0c = sr[q0r], sc[q0c]  # their candidate bands' starts
    gram = torch.matmul(bands(padded, q0r, q0c, Lq), bands(padded, k0r, k0c, Lk).transpose(-1, -2))
    gram = gram.reshape(B, nbr, nbc, Lq * Lq * Lk * Lk)
    qi = ar(R)
    crow = sr[(q0r.view(-1, 1) + qi).clamp(max=nh - 1)].unsqueeze(-1) - k0r.view(-1, 1, 1) + ar(w)
    ccol = sc[(q0c.view(-1, 1) + qi).clamp(max=nw - 1)].unsqueeze(-1) - k0c.view(-1, 1, 1) + ar(w)
    acc = None
    for da in (0, 1):
        for db in (0, 1):
            # flat index into a block's Gram matrix: row part + column part
            rows = (qi + da).view(1, R, 1) * (Lq * Lk * Lk) + (crow + da) * Lk  # (nbr, R, w)
            cols = (qi + db).view(1, R, 1) * (Lk * Lk) + (ccol + db)  # (nbc, R, w)
            idx = rows.view(nbr, 1, R, 1, w, 1) + cols.view(1, nbc, 1, R, 1, w)
            t = torch.gather(gram, 3, idx.reshape(1, nbr, nbc, -1).expand(B, -1, -1, -1))
            acc = t if acc is None else acc + t
    inner = acc.view(B, nbr, nbc, R, R, w * w).permute(0, 1, 3, 2, 4, 5)
    inner = inner.reshape(B, nbr * R, nbc * R, w * w)[:, :nh, :nw]
    return norms.unsqueeze(-1) + cand_norms - 2.0 * inner


def aggregate(weights: Tensor, cells: Tensor, window: int, stride: int) -> Tensor:
    """:func:`.blocked.aggregate` with every block in one batch (same result).

    The dense (cells x band) weight matrices, one neighbour at a time, are filled by pushing each
    (patch, window position) weight, as one row of its B values, to the four cells the patch
    covers: four ``index_add`` over rows, whose index never repeats per image.
    """
    k, B, _, _, ww = weights.shape
    D, Hc, Wc = cells.shape[1:]
    nh, nw = Hc - 1, Wc - 1
    w, R = window, BLOCK
    dev = cells.device
    ar = functools.partial(torch.arange, device=dev)
    sr, sc = window_starts(nh, w, dev), window_starts(nw, w, dev)
    nbr, nbc = (Hc + R - 1) // R, (Wc + R - 1) // R
    L = R + w + 1
    a0, b0 = ar(nbr) * R, ar(nbc) * R  # output-cell block starts
    r0, c0 = sr[(a0 - 1).clamp(0, nh - 1)], sc[(b0 - 1).clamp(0, nw - 1)]  # band starts
    band = bands(cells_last(F.pad(cells, (0, R + 1, 0, R + 1))), r0, c0, L)  # (B,nbr,nbc,L*L,D)
    kw = ar(w)
    idxs = []
    for da in (0, 1):
        cr = ar(nh) + da  # the output cell row this patch row covers
        u = sr.unsqueeze(-1) + kw + da - r0[cr // R].unsqueeze(-1)  # (nh, w) row in the band
        rows = (cr // R * (nbc * R * R * L * L) + cr % R * (R * L * L)).unsqueeze(-1) + u * L
        for db in (0, 1):
            cc = ar(nw) + db
            v = sc.unsqueeze(-1) + kw + db - c0[cc // R].unsqueeze(-1)  # (nw, w)
            cols = (cc // R * (R * R * L * L) + cc % R * (L * L)).unsqueeze(-1) + v
            idxs.append((rows.view(nh, 1, w, 1) + cols.view(1, nw, 1, w)).reshape(-1))  # like src's rows
    # float16 models accumulate in float32: onnxruntime's CPU ScatterND cannot add float16
    acc = torch.float32 if weights.dtype in (torch.float16, torch.bfloat16) else weights.dtype
    ys = []
    for j in range(k):  # one neighbour at a time: the dense matrices are the largest tensors here
        src = weights[j].permute(1, 2, 3, 0).reshape(nh * nw * ww, B).to(acc)
        dense = torch.zeros(nbr * nbc * R * R * L * L, B, device=dev, dtype=acc)
        for idx in idxs:
            dense = dense.index_add(0, idx, src)
        dense = dense.to(cells.dtype)
        if B == 1:  # no transpose needed (the usual inference case)
            dense = dense.view(1, nbr, nbc, R * R, L * L)
        else:
            dense = dense.view(nbr, nbc, R * R, L * L, B).permute(4, 0, 1, 2, 3)
        ys.append(torch.matmul(dense, band))  # (B, nbr, nbc, R*R, D)
    y = torch.stack(ys, 1).view(B, k, nbr, nbc, R, R, D).permute(0, 1, 6, 2, 4, 3, 5)
    y = y.reshape(B, k, D, nbr * R, nbc * R)
    y = y[..., :Hc, :Wc] / covering_count(nh, nw, cells)
    return F.pixel_shuffle(y.reshape(B, k * D, Hc, Wc), stride)
