"""The N³ block on images (Plötz & Roth 2018), computed on 5x5 cells.

Patches of size ``2*s`` with stride ``s`` tile the zero-padded feature map so that every
``s x s`` *cell* lies in exactly four patches. Both halves of the block work on cells:

* distances: a patch's embedding is its 2x2 cells, so patch inner products are sums of four
  cell inner products. Those come from one small matrix product per block of ``R x R`` query
  patches against the band of cells its windows can reach.
* aggregation: an output cell is the average, over the patches covering it, of the matching
  cell of each neighbour patch. Averaging the four patches' weights first turns that into one
  matrix product per block of output cells against the same kind of band.

Nothing of size (patches x window x patch features) is ever built; the largest intermediates are
(patches x window) weights and one block row of bands. Candidates are the ``w x w`` patches
around each query (window shifted, not cut, at the border), minus the query itself.
"""
from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .knn import knn_weights
from .layers import conv_stack, run_stack
from .n3fused import neighbour_residuals

BATCHED_BLOCK = 8  # query patches per block side in the batched (graph) form
FORMS = ("auto", "fused", "blocked", "batched")  # see N3Block2d.set_form


@contextlib.contextmanager
def block_form(net: nn.Module, form: str) -> Iterator[nn.Module]:
    """Every N³ block of ``net`` computed in ``form`` for the ``with`` block (see
    :meth:`N3Block2d.set_form`), then back to what each was."""
    blocks = [m for m in net.modules() if isinstance(m, N3Block2d)]
    before = [b.form for b in blocks]
    try:
        for b in blocks:
            b.set_form(form)
        yield net
    finally:
        for b, f in zip(blocks, before):
            b.form = f


def window_starts(n: int, window: int, device: torch.device | None = None) -> Tensor:
    """First grid index of each position's window of ``window`` candidates (clamped inside)."""
    i = torch.arange(n, device=device)
    return (i - window // 2).clamp(0, n - window)


class N3Block2d(nn.Module):
    """Neural nearest neighbours block for feature maps.

    Input ``(B, C, H, W)`` with ``H, W >= (window + 1) * stride``; output
    ``(B, (k + 1) * C, H, W)`` = ``[x, N1 - x, ..., Nk - x]``.
    """

    def __init__(
        self,
        channels: int,
        k: int = 7,
        patch: int = 10,
        stride: int = 5,
        window: int = 15,
        embed_channels: int = 8,
        embed_features: int = 64,
        embed_depth: int = 3,
        block: int | None = None,
    ) -> None:
        super().__init__()
        if patch != 2 * stride:
            raise ValueError(f"patch size must be twice the stride (got patch={patch}, stride={stride})")
        if window < 3 or window % 2 == 0:
            raise ValueError(f"window must be odd and >= 3 (got {window})")
        self.channels, self.k, self.patch, self.stride, self.window = channels, k, patch, stride, window
        # query patches per side of one matrix-product block: a speed knob only (small blocks waste
        # fewer flops on CPU; on GPUs fewer, larger blocks mean fewer kernel launches)
        self.block = block
        self.form = "auto"  # how inference is computed: see FORMS and set_form
        self.embedcnn = conv_stack(channels, embed_channels, embed_features, embed_depth)
        self.tempcnn = conv_stack(channels, 1, embed_features, embed_depth)
        self.bn = nn.BatchNorm1d(1)  # on the negated distances

    @property
    def min_size(self) -> int:
        return (self.window + 1) * self.stride

    @property
    def out_channels(self) -> int:
        return (self.k + 1) * self.channels

    def forward(self, x: Tensor) -> Tensor:
        B, C, H, W = x.shape
        s, p, w = self.stride, self.patch, self.window
        if min(H, W) < self.min_size:
            raise ValueError(f"N3Block2d needs at least {self.min_size} px per side, got {H}x{W}")
        emb, tlog = run_stack(self.embedcnn, x), run_stack(self.tempcnn, x)
        ph, pw = (-(H - p)) % s, (-(W - p)) % s
        pads = (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2)
        cells_x = F.pixel_unshuffle(F.pad(x, pads), s)  # (B, C*s*s, Hc, Wc)
        cells_e = F.pixel_unshuffle(F.pad(emb, pads), s)
        cells_t = F.pixel_unshuffle(F.pad(tlog, pads), s).sum(1)  # (B, Hc, Wc)
        Hc, Wc = cells_x.shape[-2:]
        nh, nw = Hc - 1, Wc - 1  # patch grid
        if min(nh, nw) < w:
            raise ValueError(f"N3Block2d: patch grid {nh}x{nw} is smaller than the window {w}")

        temp = torch.exp(_box2(cells_t) / (p * p) + math.log(0.1))  # (B, nh, nw)
        batched = self.form == "batched" or torch.compiler.is_exporting()
        grad = torch.is_grad_enabled() and (x.requires_grad or any(q.requires_grad for q in self.parameters()))
        if not (batched or grad or self.training) and self._fused(x):
            scale = self.bn.weight / torch.sqrt(self.bn.running_var + self.bn.eps)
            shift = self.bn.bias - self.bn.running_mean * scale
            # the output keeps the input's memory format (channels-last inputs feed channels-last
            # convolutions, several times faster on CPUs)
            fmt = torch.channels_last if x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last) \
                and not x.is_contiguous() else torch.contiguous_format
            out = torch.empty(B, (self.k + 1) * C, H, W, dtype=x.dtype, device=x.device, memory_format=fmt)
            out = out.view(B, self.k + 1, C, H, W)
            out[:, 0] = x
            neighbour_residuals(cells_e, temp, scale, shift, cells_x, self.k, w, x, pads[2], pads[0], out[:, 1:])
            return out.view(B, -1, H, W)
        neg_dist = -(self._distances_batched if batched else self._distances)(cells_e, nh, nw)  # (B, nh, nw, w*w)
        own = _self_index(nh, nw, w, x.device).view(1, nh, nw, 1).expand(B, -1, -1, -1)
        is_self = torch.zeros_like(neg_dist, dtype=torch.bool).scatter_(-1, own, True)
        if self.training:
            # batch statistics over the real candidates only (not the query itself). Written out
            # rather than F.batch_norm: with a single channel, BN kernels reduce millions of values
            # in one thread block on GPUs.
            vals = neg_dist[~is_self]
            mean, var = vals.mean(), vals.var(unbiased=False)
            with torch.no_grad():
                m, n = self.bn.momentum, vals.numel()
                self.bn.running_mean.mul_(1 - m).add_(m * mean.detach())
                self.bn.running_var.mul_(1 - m).add_(m * var.detach() * n / max(n - 1, 1))
                self.bn.num_batches_tracked += 1
            logits = (neg_dist - mean) * (self.bn.weight / torch.sqrt(var + self.bn.eps)) + self.bn.bias
        else:
            scale = self.bn.weight / torch.sqrt(self.bn.running_var + self.bn.eps)
            logits = (neg_dist - self.bn.running_mean) * scale + self.bn.bias
        grad = torch.is_grad_enabled() and (logits.requires_grad or temp.requires_grad or cells_x.requires_grad)
        if not (batched or grad):
            # inference: the weights go straight into the zero-bordered buffer the aggregation
            # reads, and [x, N1 - x, ..., Nk - x] is written block row by block row straight into
            # the output, the largest tensor of the block: no concatenation, padding or separate
            # neighbour image
            R = self._block_size(cells_x, nh, nw)
            hp, wpd = -(-(nh + 1) // R) * R + 2, -(-(nw + 1) // R) * R + 2
            wbuf = logits.new_empty(self.k, B, hp, wpd, w * w)
            for border in (wbuf[:, :, :1], wbuf[:, :, 1 + nh :], wbuf[:, :, :, :1], wbuf[:, :, :, 1 + nw :]):
                border.zero_()
            self._weights(logits, temp, is_self, out=wbuf[:, :, 1 : 1 + nh, 1 : 1 + nw])
            out = torch.empty(B, self.k + 1, C, H, W, dtype=x.dtype, device=x.device)
            out[:, 0] = x
            self._aggregate(wbuf, cells_x, nh, nw, into=(out[:, 1:], x, pads[2], pads[0]), padded=True)
            return out.view(B, -1, H, W)
        weights = self._weights(logits, temp, is_self, chunked=not batched)  # (k, B, nh, nw, w*w)
        # (B, k*C, Hc*s, Wc*s), overlap-averaged
        nbrs = (self._aggregate_batched if batched else self._aggregate)(weights, cells_x, nh, nw)
        nbrs = nbrs[..., pads[2] : pads[2] + H, pads[0] : pads[0] + W]
        return torch.cat([x, (nbrs.reshape(B, self.k, C, H, W) - x.unsqueeze(1)).view(B, -1, H, W)], 1)

    def _weights(self, logits: Tensor, temp: Tensor, is_self: Tensor, chunked: bool = True,
                 out: Tensor | None = None) -> Tensor:
        """Temperature, self-exclusion and the k-step relaxation, a few patch rows at a time.

        Each query is independent here; chunks keep the dozen temporaries per step in cache
        instead of allocating (and page-faulting) patches x window tensors for each.
        """
        rows = max(1, (1 << 18) // max(1, logits.shape[0] * logits.shape[2] * logits.shape[3]))
        if not chunked:  # one step: a chunk count that depends on the size cannot be traced
            rows = logits.shape[1]
        chunks = []
        for r0 in range(0, logits.shape[1], rows):
            sl = slice(r0, r0 + rows)
            # -inf only after the division: inf * 0 in the temperature's gradient would give nan
            lg = (logits[:, sl] / temp[:, sl].unsqueeze(-1)).masked_fill(is_self[:, sl], float("-inf"))
            chunks.append(knn_weights(lg, self.k, out=None if out is None else out[:, :, sl]))
        if out is not None:
            return out
        return chunks[0] if len(chunks) == 1 else torch.cat(chunks, 2)

    def set_form(self, form: str) -> "N3Block2d":
        """Choose how inference is computed (training always takes the differentiable form); every
        form gives the same result up to float rounding, tested against the per-patch definition.

        * ``auto``: ``fused`` on CPUs, ``blocked`` on GPUs, ``batched`` while being exported;
        * ``fused``: relaxation and aggregation in one pass per cell row (:mod:`.n3fused`), the
          fastest on CPUs;
        * ``blocked``: a loop over blocks of query patches, a few large kernels (GPUs);
        * ``batched``: all blocks in one batch of matrix products, no data-dependent Python, so it
          traces to a graph with dynamic height and width (ONNX export).
        """
        if form not in FORMS:
            raise ValueError(f"unknown N3 block form {form!r} (one of {', '.join(FORMS)})")
        self.form = form
        return self

    def _fused(self, x: Tensor) -> bool:
        """Whether inference takes the fused relaxation + aggregation (:mod:`.n3fused`)."""
        return self.form == "fused" or (self.form == "auto" and not x.is_cuda)

    def _block_size(self, t: Tensor, nh: int, nw: int) -> int:
        R = self.block or (16 if t.is_cuda else 6)
        return min(R, nh, nw)

    # -- distances ---------------------------------------------------------------------------
    def _distances(self, cells: Tensor, nh: int, nw: int) -> Tensor:
        """Squared distances of each patch to its window's candidates (self included), ``(B, nh, nw, w*w)``."""
        B, D = cells.shape[:2]
        w, R = self.window, self._block_size(cells, nh, nw)
        dev = cells.device
        sr, sc = window_starts(nh, w, dev), window_starts(nw, w, dev)
        norms = _box2((cells * cells).sum(1))  # (B, nh, nw) squared patch norms
        cand_norms = norms[:, sr.unsqueeze(1) + torch.arange(w, device=dev)]  # (B, nh, w, nw)
        cand_norms = cand_norms[..., sc.unsqueeze(1) + torch.arange(w, device=dev)]  # (B,nh,w,nw,w)
        cand_norms = cand_norms.permute(0, 1, 3, 2, 4).reshape(B, nh, nw, w * w)

        nbr, nbc = -(-nh // R), -(-nw // R)
        cp = _channels_last(F.pad(cells, (0, R + 1, 0, R + 1)))
        Lq, Lk = R + 1, R + w
        q0 = torch.arange(nbc, device=dev) * R  # block column starts (query cells)
        k0 = sc[q0]  # candidate band column starts
        # column part of the gather index into G (depends on block column only)
        qj = torch.arange(R, device=dev)
        jj = (q0.view(-1, 1) + qj).clamp(max=nw - 1)  # (nbc, R) query patch columns
        ccol = sc[jj].unsqueeze(-1) - k0.view(-1, 1, 1) + torch.arange(w, device=dev)  # (nbc,R,w)
        ip = cells.new_empty(B, nbr * R, nbc * R, w * w)
        for bi in range(nbr):
            i0 = bi * R
            r0 = _window_start(i0, nh, w)
            qb = _band(cp, i0, Lq, q0)  # (B, nbc, Lq*Lq, D)
            kb = _band(cp, r0, Lk, k0)  # (B, nbc, Lk*Lk, D)
            g = torch.matmul(qb, kb.transpose(-1, -2)).view(B, nbc, Lq * Lq * Lk * Lk)
            ii = (i0 + torch.arange(R, device=dev)).clamp(max=nh - 1)
            crow = sr[ii].unsqueeze(-1) - r0 + torch.arange(w, device=dev)  # (R, w)
            acc = None
            for da in (0, 1):
                for db in (0, 1):
                    qidx = (torch.arange(R, device=dev) + da).view(R, 1) * Lq + (qj + db).view(1, R)
                    kidx = (crow + da).view(1, R, 1, w, 1) * Lk + (ccol + db).view(nbc, 1, R, 1, w)
                    idx = qidx.view(1, R, R, 1, 1) * (Lk * Lk) + kidx  # (nbc, R, R, w, w)
                    t = torch.gather(g, 2, idx.reshape(1, nbc, -1).expand(B, -1, -1))
                    acc = t if acc is None else acc + t
            acc = acc.view(B, nbc, R, R, w * w).permute(0, 2, 1, 3, 4)
            ip[:, i0 : i0 + R] = acc.reshape(B, R, nbc * R, w * w)
        ip = ip[:, :nh, :nw]
        return norms.unsqueeze(-1) + cand_norms - 2.0 * ip

    def _distances_batched(self, cells: Tensor, nh: int, nw: int) -> Tensor:
        """:meth:`_distances` with every block in one batch (same result, more memory)."""
        B = cells.shape[0]
        w, R = self.window, BATCHED_BLOCK
        dev = cells.device
        ar = functools.partial(torch.arange, device=dev)
        sr, sc = window_starts(nh, w, dev), window_starts(nw, w, dev)
        norms = _box2((cells * cells).sum(1))
        cand_norms = norms[:, sr.unsqueeze(1) + ar(w)][..., sc.unsqueeze(1) + ar(w)]  # (B,nh,w,nw,w)
        cand_norms = cand_norms.permute(0, 1, 3, 2, 4).reshape(B, nh, nw, w * w)

        nbr, nbc = (nh + R - 1) // R, (nw + R - 1) // R
        cp = _channels_last(F.pad(cells, (0, R + 1, 0, R + 1)))
        Lq, Lk = R + 1, R + w
        q0r, q0c = ar(nbr) * R, ar(nbc) * R  # block starts (query patches)
        k0r, k0c = sr[q0r], sc[q0c]  # their candidate bands' starts
        g = torch.matmul(_bands(cp, q0r, q0c, Lq), _bands(cp, k0r, k0c, Lk).transpose(-1, -2))
        g = g.reshape(B, nbr, nbc, Lq * Lq * Lk * Lk)
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
                t = torch.gather(g, 3, idx.reshape(1, nbr, nbc, -1).expand(B, -1, -1, -1))
                acc = t if acc is None else acc + t
        ip = acc.view(B, nbr, nbc, R, R, w * w).permute(0, 1, 3, 2, 4, 5)
        ip = ip.reshape(B, nbr * R, nbc * R, w * w)[:, :nh, :nw]
        return norms.unsqueeze(-1) + cand_norms - 2.0 * ip

    # -- aggregation -------------------------------------------------------------------------
    def _aggregate(self, weights: Tensor, cells: Tensor, nh: int, nw: int,
                   into: tuple[Tensor, Tensor, int, int] | None = None, padded: bool = False) -> Tensor | None:
        """Neighbour images ``(B, k*C, Hc*s, Wc*s)``: overlap-averaged weighted sums of candidate cells.

        With ``into = (dst, x, top, left)`` (inference), writes ``N_j - x`` cropped at ``(top, left)``
        to ``dst`` ``(B, k, C, H, W)`` instead, one block row at a time, and returns None.
        ``padded``: ``weights`` already carry the zero border this method would add.
        """
        k, B, _, _, ww = weights.shape
        D, Hc, Wc = cells.shape[1:]
        w, R = self.window, self._block_size(cells, nh, nw)
        dev = cells.device
        sr, sc = window_starts(nh, w, dev), window_starts(nw, w, dev)
        nbr, nbc = -(-Hc // R), -(-Wc // R)
        L = R + w + 1
        cp = _channels_last(F.pad(cells, (0, R + 1, 0, R + 1)))
        # weights padded with one empty patch before and enough after, so cell a's covering
        # patches a-1 and a are always addressable (the missing ones weigh nothing)
        wp = weights if padded else F.pad(weights, (0, 0, 1, nbc * R - nw + 1, 1, nbr * R - nh + 1))
        ones = torch.ones(1, 1, nh, nw, device=dev, dtype=cells.dtype)
        count = F.pad(ones, (1, 1, 1, 1))
        count = (count[..., 1:, 1:] + count[..., :-1, 1:] + count[..., 1:, :-1] + count[..., :-1, :-1])[0, 0]

        b0 = torch.arange(nbc, device=dev) * R  # output-cell block column starts
        c0 = sc[(b0 - 1).clamp(0, nw - 1)]  # candidate band column starts
        s = self.stride
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
            r0 = _window_start(max(a0 - 1, 0), nh, w)
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
            band = _band(cp, r0, L, c0)  # (B, nbc, L*L, D)
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

    def _aggregate_batched(self, weights: Tensor, cells: Tensor, nh: int, nw: int) -> Tensor:
        """:meth:`_aggregate` with every block in one batch (same result, more memory).

        The dense (cells x band) weight matrices, one neighbour at a time, are filled by pushing
        each (patch, window position) weight, as one row of its B values, to the four cells the
        patch covers: four ``index_add`` over rows, whose index never repeats per image.
        """
        k, B, _, _, ww = weights.shape
        D, Hc, Wc = cells.shape[1:]
        w, R = self.window, BATCHED_BLOCK
        dev = cells.device
        ar = functools.partial(torch.arange, device=dev)
        sr, sc = window_starts(nh, w, dev), window_starts(nw, w, dev)
        nbr, nbc = (Hc + R - 1) // R, (Wc + R - 1) // R
        L = R + w + 1
        a0, b0 = ar(nbr) * R, ar(nbc) * R  # output-cell block starts
        r0, c0 = sr[(a0 - 1).clamp(0, nh - 1)], sc[(b0 - 1).clamp(0, nw - 1)]  # band starts
        band = _bands(_channels_last(F.pad(cells, (0, R + 1, 0, R + 1))), r0, c0, L)  # (B,nbr,nbc,L*L,D)
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
        ones = F.pad(torch.ones(1, 1, nh, nw, device=dev, dtype=cells.dtype), (1, 1, 1, 1))
        count = _box2(ones)[0, 0]  # covering patches per cell (1, 2 or 4)
        y = y[..., :Hc, :Wc] / count
        return F.pixel_shuffle(y.reshape(B, k * D, Hc, Wc), self.stride)


def _window_start(i: int, n: int, window: int) -> int:
    """:func:`window_starts` for one position, as a Python int (shape arithmetic only, so the
    block loops trace to a static graph)."""
    return max(0, min(i - window // 2, n - window))


def _box2(t: Tensor) -> Tensor:
    """Sum over 2x2 neighbouring cells: cell map (.., Hc, Wc) -> patch map (.., Hc-1, Wc-1)."""
    return t[..., :-1, :-1] + t[..., 1:, :-1] + t[..., :-1, 1:] + t[..., 1:, 1:]


def _channels_last(cells: Tensor) -> Tensor:
    """(B, D, H, W) -> (B, H, W, D): each cell's D values contiguous, so band gathers copy whole cells."""
    return cells.permute(0, 2, 3, 1).contiguous()


def _bands(cells: Tensor, row_starts: Tensor, col_starts: Tensor, L: int) -> Tensor:
    """Every ``L x L`` band of a (padded, channels-last) cell map whose top-left corners are the
    grid ``row_starts x col_starts``. Returns ``(B, n_rows, n_cols, L*L, D)``."""
    B, _, Wp, D = cells.shape
    nr, nc = row_starts.shape[0], col_starts.shape[0]
    rows = (row_starts.view(-1, 1) + torch.arange(L, device=cells.device)).reshape(-1)
    cols = (col_starts.view(-1, 1) + torch.arange(L, device=cells.device)).reshape(-1)
    b = cells.index_select(1, rows).index_select(2, cols).view(B, nr, L, nc, L, D)
    return b.permute(0, 1, 3, 2, 4, 5).reshape(B, nr, nc, L * L, D)


def _band(cells: Tensor, r0: int, L: int, col_starts: Tensor) -> Tensor:
    """Square ``L x L`` bands of a (padded, channels-last) cell map: rows ``r0..r0+L``, one band per
    column start. Returns ``(B, n_bands, L*L, D)``."""
    B, _, Wp, D = cells.shape
    ar = torch.arange(L, device=cells.device)
    # one index_select of whole D-vectors, already in band order: advanced indexing plus a
    # permuted copy cost several times more on CPUs
    idx = ((r0 + ar).view(1, L, 1) * Wp + col_starts.view(-1, 1, 1) + ar.view(1, 1, L)).reshape(-1)
    return cells.reshape(B, -1, D).index_select(1, idx).view(B, col_starts.shape[0], L * L, D)


def _self_index(nh: int, nw: int, w: int, device: torch.device) -> Tensor:
    """Window position (row-major in w x w) of each patch itself."""
    ki = torch.arange(nh, device=device) - window_starts(nh, w, device)
    kj = torch.arange(nw, device=device) - window_starts(nw, w, device)
    return ki.view(-1, 1) * w + kj.view(1, -1)
