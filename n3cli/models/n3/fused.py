"""Inference path of the N³ block: the k-step relaxation and the aggregation, fused a few cell rows
at a time.

Patches of size ``2s`` with stride ``s`` cover each ``s x s`` cell ``a`` (per axis) with patches
``a - 1`` and ``a``. Away from the borders a patch's window starts ``h = w // 2`` patches before it,
so candidate ``(u, v)`` of *either* covering patch brings the same neighbour cell
``a - h + (u, v)`` to cell ``a``: the four covering patches' weights add up to one ``w x w`` kernel
per cell, and the neighbour image is

    N_j(a) = 1/4 * sum_(u, v) Wbar_j(a, u, v) * cells(a - h + (u, v))

For each cell row, the cell rows its windows reach (``w``; ``w + 1`` for the clamped top and
bottom rows) are copied once into a column-major strip, where every cell's window is one
contiguous block, consecutive cells' blocks one strip column apart. Four consecutive cells then
share one ``(4k x K) @ (K x D)`` product over the span of their windows, each cell's kernel at its
own offset and zeros elsewhere (one product per cell, with ``k`` rows, runs far below BLAS peak).
The side columns of a row all share one window: one product per side.

Near the borders the windows are clamped: the two covering patches' windows start at the same
patch, so their neighbour cells are one cell apart. There each cell gets a ``(w+1) x (w+1)``
kernel whose window start stops moving at the edge (top/left: 0, bottom/right: n - w).

Weights exist for one chunk of patch rows at a time (plus the row shared with the next chunk), so
memory does not hold the (patches x window x k) weights the unfused form keeps.
"""
from __future__ import annotations

import functools

import torch
from torch import Tensor

from ..knn import knn_weights


def neighbour_residuals(cells_e: Tensor, temp: Tensor, scale: Tensor, shift: Tensor, cells: Tensor, k: int,
                        window: int, x: Tensor, top: int, left: int, dst: Tensor, rows: int = 4) -> None:
    """Write ``N_j - x`` for ``j = 1..k`` into ``dst`` ``(B, k, C, H, W)``.

    ``cells_e``: ``(B, E*s*s, nh+1, nw+1)`` cells of the embedding; ``temp``: ``(B, nh, nw)``;
    ``scale``, ``shift``: the frozen BatchNorm on negative distances (``logit = -scale*d + shift``);
    ``cells``: ``(B, C*s*s, nh+1, nw+1)`` cells of the zero-padded input; ``x``: ``(B, C, H, W)``
    the input, which sits at ``(top, left)`` in the padded frame. ``rows``: cell rows per chunk.
    """
    nh, nw = cells.shape[-2] - 1, cells.shape[-1] - 1
    w = window
    own = _own_positions(nh, nw, w, cells.device)
    for b in range(cells.shape[0]):
        logits = cell_logits(cells_e[b], w, scale, shift).view(nh * nw, w * w)
        logits.scatter_(1, own, float("-inf"))  # a patch is not its own neighbour
        _Image(logits.view(nh, nw, w * w), temp[b], cells[b], x.shape[1], k, w, rows).run(x[b], top, left, dst[b])


def _own_positions(nh: int, nw: int, w: int, device: torch.device) -> Tensor:
    """Window position (row-major in w x w) of each patch itself, ``(nh*nw, 1)``."""
    ar = functools.partial(torch.arange, device=device)
    ki = ar(nh) - (ar(nh) - w // 2).clamp(0, nh - w)
    kj = ar(nw) - (ar(nw) - w // 2).clamp(0, nw - w)
    return (ki.view(-1, 1) * w + kj.view(1, -1)).view(-1, 1)


class _Image:
    def __init__(self, logits: Tensor, temp: Tensor, cells: Tensor, channels: int, k: int, window: int, rows: int,
                 group: int = 4) -> None:
        D, Hc, Wc = cells.shape
        group = max(1, group)
        self.nh, self.nw = Hc - 1, Wc - 1
        self.logits, self.temp = logits, temp
        self.k, self.w, self.h = k, window, window // 2
        # (Hc, Wc, D): each cell's D values contiguous, reordered from pixel_unshuffle's (c, py, px)
        # to (py, px, c), so that the output cells' pixels go to a channels-last image in runs of C
        self.C, self.s = channels, int(round((D // channels) ** 0.5))
        self.cl = cells.view(channels, D // channels, Hc, Wc).permute(2, 3, 1, 0).reshape(Hc, Wc, D)
        self.D, self.Hc, self.Wc = D, Hc, Wc
        self.rows = rows
        R = max(rows, self.h + 1)  # buffer rows; the border strips are h + 1 rows
        w, ww = window, window * window
        new = self.cl.new_empty
        # weights of patch rows a0-1 .. a1-1 of a chunk, with a zero patch column on each side;
        # one plane per neighbour, where the relaxation writes them (several times faster than
        # writing into the interleaved layout the matrix products read)
        self.wplanes = self.cl.new_zeros(k, R + 1, self.nw + 2, ww)
        self.wrows = self.wplanes.permute(1, 2, 0, 3)  # (R+1, nw+2, k, ww)
        # one column of kernel sums per cell, and G spare zero ones: the last group of middle
        # cells (below) may reach past the row, and the products must see finite numbers there
        self.wsum = self.cl.new_zeros(R + 1, Wc + group, k, ww)
        # kernels of the unclamped middle columns, G consecutive cells per matrix: the G cells'
        # windows in a row's strip (below) overlap in all but G - 1 of their w + G columns, so one
        # (G*k x (w+G)*r) @ ((w+G)*r x D) product serves G cells (r: the strip's rows, w for inner
        # rows, w + 1 for border rows). It multiplies some zeros, but one product per cell, whose
        # M = k = 7 rows leave most of a BLAS kernel idle, is slower (docs/design.md, the fused
        # form). Each cell's kernel sits at its own column offset of the matrix; everything
        # outside the cell's window stays zero
        self.group = group
        nm = max(self.nw - 2 * self.h - 1, 0)
        self.ngroups = -(-nm // group)
        self.amid = self.cl.new_zeros(self.ngroups, group, k, (group + w) * w)
        self.aedge = self.cl.new_zeros(self.ngroups, group, k, (group + w) * (w + 1))  # border rows
        # the cell rows a cell row's windows reach, column-major (cell column, row, D): every
        # middle cell's window is then one contiguous block, consecutive cells' blocks r*D apart
        # (spare columns past the end, where the last group's spare cells reach: zeros or earlier
        # rows' values, finite either way, and multiplied only by zero kernel entries of real cells)
        self.strips = self.cl.new_zeros((Wc + group) * (w + 1) * D)
        self.asides = new(2 * R * (self.h + 1) * k * (w + 1) * (w + 1))  # side columns' kernels
        # (w+1)^2 kernels of border cells as (row, kernel row, column, j, kernel column)
        self.edge = new(R, w + 1, Wc, k, w + 1)
        self.outc = new(R, Wc + group, k, D)  # spare columns: the last group's overrun

    # -- per chunk -----------------------------------------------------------------------------
    def run(self, x: Tensor, top: int, left: int, dst: Tensor) -> None:
        h, nh, Hc = self.h, self.nh, self.Hc
        chunks = [(0, h + 1)]
        chunks += [(a, min(a + self.rows, nh - h)) for a in range(h + 1, nh - h, self.rows)]
        chunks.append((nh - h, Hc))
        prev = None
        for a0, a1 in chunks:
            self._relax(a0, a1, prev)
            prev = (a0, a1)
            if a0 == 0 or a1 == Hc:
                self._edge_rows(a0, a1)
            else:
                self._inner_rows(a0, a1)
            self._write(a0, a1, x, top, left, dst)

    def _relax(self, a0: int, a1: int, prev: tuple[int, int] | None) -> None:
        """Weights of patch rows a0-1 .. a1-1 into ``wrows`` rows 0 .. a1-a0 (zeros outside the grid)."""
        n, nh, nw = a1 - a0, self.nh, self.nw
        if prev is not None and prev[1] == a0:  # row a0-1 was the previous chunk's last
            self.wplanes[:, 0].copy_(self.wplanes[:, prev[1] - prev[0]])
            first = 1
        else:
            first = 0
        p0, p1 = a0 - 1 + first, min(a1 - 1, nh - 1) + 1  # patch rows to compute
        if p0 < 0:  # patch row -1 does not exist
            self.wplanes[:, 0].zero_()
            p0, first = 0, 1
        if p1 > p0:
            lg = self.logits[p0:p1] / self.temp[p0:p1].unsqueeze(-1)
            knn_weights(lg, self.k, out=self.wplanes[:, first : first + p1 - p0, 1 : nw + 1])
        if a1 - 1 >= nh:  # patch row nh does not exist either
            self.wplanes[:, n].zero_()

    def _inner_rows(self, a0: int, a1: int) -> None:
        """Cells of rows a0..a1 (all unclamped): w x w kernels in the middle, (w+1) kernels at the sides."""
        n, k, w, h, Wc = a1 - a0, self.k, self.w, self.h, self.Wc
        ws = self._chunk_kernels(a0, a1, clamp_rows=False)
        G, ng = self.group, self.ngroups
        mid = slice(h + 1, h + 1 + ng * G)
        ker = self._group_kernels(self.amid, w)
        strip = self._strip(w)
        for i in range(n):
            a = a0 + i
            strip[:Wc].copy_(self.cl[a - h : a + h + 1].transpose(0, 1))
            if ng > 0:
                top = ws[i, mid].view(ng, G, k, w, w).transpose(-1, -2)  # (u, v) -> (v, u)
                torch.add(top, ws[i + 1, mid].view(ng, G, k, w, w).transpose(-1, -2), out=ker)
            self._row_products(i, self.amid, 0.25, w)  # the mid kernels are sums of 4 patches' weights

    def _edge_rows(self, a0: int, a1: int) -> None:
        """Cells of the top (or bottom) h+1 rows: every window starts at row 0 (or nh-w)."""
        n, k, w, h, Wc = a1 - a0, self.k, self.w, self.h, self.Wc
        ws = self._chunk_kernels(a0, a1, clamp_rows=True)
        by = 0 if a0 == 0 else self.nh - w
        self._strip(w + 1)[:Wc].copy_(self.cl[by : by + w + 1].transpose(0, 1))  # the same rows for all
        G, ng = self.group, self.ngroups
        mid = slice(h + 1, h + 1 + ng * G)
        # unclamped columns, clamped rows: the covering patch a-1's candidates land one row
        # further (u + 1) than patch a's; v = w stays zero (outside the window)
        ker = self._group_kernels(self.aedge, w + 1)
        for i in range(n):
            a = a0 + i
            if ng > 0:
                ker[..., w].zero_()
                ker[..., :w].copy_(ws[i + 1, mid].view(ng, G, k, w, w).transpose(-1, -2))  # patch row a
                ker[..., 1:].add_(ws[i, mid].view(ng, G, k, w, w).transpose(-1, -2))  # patch row a-1
            # the outermost rows have one covering patch row, the others two (and two columns)
            self._row_products(i, self.aedge, 0.5 if a in (0, self.nh) else 0.25, w + 1)

    def _chunk_kernels(self, a0: int, a1: int, clamp_rows: bool) -> Tensor:
        """Kernels of chunk rows a0..a1 that do not change per row: the side columns' (stored) and
        the sums over each cell's two covering patch columns, returned ``(n+1, Wc+G, k, w*w)``."""
        n, w, h, nw, Wc = a1 - a0, self.w, self.h, self.nw, self.Wc
        wr, ws = self.wrows[: n + 1], self.wsum[: n + 1]
        torch.add(wr[:, :-1], wr[:, 1:], out=ws[:, :Wc])
        for side, c0 in enumerate((0, nw - h)):  # one at a time: both live in self.edge
            ker = self._edge_kernels(a0, a1, c0, c0 + h + 1, clamp_rows)
            self._side_kernels(side, ker if clamp_rows else ker[:, :w])  # unclamped rows: kernel rows 0..w-1
        return ws

    def _strip(self, r: int) -> Tensor:
        """The strip buffer as ``(Wc + G, r, D)``: cell column, window row, cell values."""
        return self.strips[: (self.Wc + self.group) * r * self.D].view(-1, r, self.D)

    def _group_kernels(self, buf: Tensor, r: int) -> Tensor:
        """The ``(ng, G, k, w, r)`` view of a group-kernel buffer (strip of ``r`` rows) where each
        cell's ``(v, u)`` kernel goes: cell gi of a group at K offset ``(gi + v) * r + u``."""
        G, k, Kg = self.group, self.k, (self.group + self.w) * r
        return _at(buf, (self.ngroups, G, k, self.w, r), (G * k * Kg, k * Kg + r, Kg, r, 1), 0)

    def _aside(self, r: int) -> Tensor:
        """Side-column kernels against a strip of ``r`` rows, ``(2, R, h+1, k, w+1, r)``, (v, u) order."""
        return self.asides[: 2 * max(self.rows, self.h + 1) * (self.h + 1) * self.k * (self.w + 1) * r].view(
            2, -1, self.h + 1, self.k, self.w + 1, r)

    def _side_kernels(self, side: int, ker: Tensor) -> None:
        """Store the kernels ``(n, u, h+1, k, v)`` of side columns 0..h (``side`` 0) or nw-h..nw (1),
        whose windows start at columns 0 and nw-w, in a strip's (v, u) order."""
        self._aside(ker.shape[1])[side, : ker.shape[0]].copy_(ker.permute(0, 2, 3, 4, 1))

    def _row_products(self, i: int, groups: Tensor, alpha: float, r: int) -> None:
        """Output cells of chunk row ``i`` from the row's strip of ``r`` rows: the middle columns with
        the group kernels ``groups`` (scaled by ``alpha``), then the side columns."""
        k, w, h, nw, D = self.k, self.w, self.h, self.nw, self.D
        G, ng, Kg, T = self.group, self.ngroups, (self.group + self.w) * r, w + 1
        strip = self._strip(r)
        if ng > 0:
            # column h+1's window starts at strip column 1, each next group's G columns later
            B = _at(strip, (ng, Kg, D), (G * r * D, D, 1), r * D)
            out = self.outc[i, h + 1 : h + 1 + ng * G].view(ng, G * k, D)
            torch.baddbmm(out, groups.view(ng, G * k, Kg), B, beta=0.0, alpha=alpha, out=out)
        # after the middle: the last group's spare cells overran into the right side's columns
        aside = self._aside(r)
        for side, (c0, bx) in enumerate(((0, 0), (nw - h, nw - w))):
            # one window for all h+1 cells of a side: one product with (h+1)*k rows
            B = strip[bx : bx + T].view(T * r, D)
            torch.mm(aside[side, i].view((h + 1) * k, T * r), B, out=self.outc[i, c0 : c0 + h + 1].view(-1, D))

    def _edge_kernels(self, a0: int, a1: int, c0: int, c1: int, clamp_rows: bool) -> Tensor:
        """(w+1) x (w+1) kernels of cells a0..a1 x c0..c1, averaged over their covering patches.

        A covering patch sits one cell before the cell on an axis (d = 1) or on it (d = 0); where
        that axis's windows are clamped its candidates land d cells further, so its weights go
        in at offset d; elsewhere at 0.
        """
        n, m, w, h, nw = a1 - a0, c1 - c0, self.w, self.h, self.nw
        ker = self.edge[:n, :, :m]
        ker.zero_()
        # column ranges with clamped windows (left, right) and the unclamped middle
        parts = [(lo, hi, clamp) for lo, hi, clamp in ((0, h + 1, True), (h + 1, nw - h, False), (nw - h, nw + 1, True))
                 if max(lo, c0) < min(hi, c1)]
        for dy in (0, 1):
            oy = dy if clamp_rows else 0
            src_rows = self.wrows[1 - dy : n + 1 - dy]  # patch rows a - dy
            for dx in (0, 1):
                for lo, hi, clamp in parts:
                    lo, hi = max(lo, c0), min(hi, c1)
                    ox = dx if clamp else 0
                    src = src_rows[:, lo - dx + 1 : hi - dx + 1].unflatten(-1, (w, w)).permute(0, 3, 1, 2, 4)
                    ker[:, oy : oy + w, lo - c0 : hi - c0, :, ox : ox + w] += src
        # divide by the number of covering patches (1 on the outermost cells, else 2 per axis)
        ar = torch.arange
        cy = torch.where((ar(a0, a1) == 0) | (ar(a0, a1) == self.nh), 1.0, 2.0)
        cx = torch.where((ar(c0, c1) == 0) | (ar(c0, c1) == nw), 1.0, 2.0)
        inv = (1.0 / (cy.view(-1, 1) * cx.view(1, -1))).to(ker)
        ker.mul_(inv.view(n, 1, m, 1, 1))
        return ker

    def _write(self, a0: int, a1: int, x: Tensor, top: int, left: int, dst: Tensor) -> None:
        """N_j - x of cell rows a0..a1, cropped to the image, into ``dst`` (k, C, H, W)."""
        C, H, W = x.shape
        s = self.s
        lo, hi = max(a0 * s, top), min(a1 * s, top + H)  # these rows' pixel rows inside the crop
        if hi <= lo:
            return
        n, k = a1 - a0, self.k
        cells = self.outc[:n, : self.Wc].unflatten(-1, (s, s, C))  # row, column, j, py, px, c
        r0, r1 = lo - a0 * s, hi - a0 * s
        cL, cR = -(-left // s), (left + W) // s  # cells wholly inside the image's columns
        if dst.stride(1) == 1 and C > 1 and r0 == 0 and r1 == n * s and cR > cL:
            # whole cell rows, channels-last output: one pass from the cells, in three column
            # pieces (the partial first and last cells, the whole ones between), without the
            # permuted copy below, which costs as much as the subtraction
            y = cells.permute(0, 3, 1, 4, 2, 5)  # (row, py, column, px, j, c)
            d = dst[:, :, lo - top : hi - top].permute(2, 3, 0, 1).unflatten(0, (n, s))  # (row, py, W, j, c)
            xv = x[:, lo - top : hi - top].permute(1, 2, 0).unsqueeze(2).unflatten(0, (n, s))
            j0, j1 = cL * s - left, cR * s - left  # image columns of the whole cells
            torch.sub(y[:, :, cL:cR], xv[:, :, j0:j1].unflatten(2, (cR - cL, s)),
                      out=d[:, :, j0:j1].unflatten(2, (cR - cL, s)))
            if j0 > 0:
                torch.sub(y[:, :, cL - 1, s - j0 :], xv[:, :, :j0], out=d[:, :, :j0])
            if j1 < W:
                torch.sub(y[:, :, cR, : W - j1], xv[:, :, j1:], out=d[:, :, j1:])
        elif dst.stride(1) == 1 and C > 1:  # channels-last output: pixels of (j, c) values
            y = cells.permute(0, 3, 1, 4, 2, 5).reshape(n * s, self.Wc * s, k, C)  # one permuted copy, in cache
            torch.sub(y[r0:r1, left : left + W], x[:, lo - top : hi - top].permute(1, 2, 0).unsqueeze(2),
                      out=dst[:, :, lo - top : hi - top].permute(2, 3, 0, 1))
        else:
            y = cells.permute(2, 5, 0, 3, 1, 4).reshape(k, C, n * s, self.Wc * s)  # j, c, row, py, col, px
            torch.sub(y[:, :, r0:r1, left : left + W], x[None, :, lo - top : hi - top],
                      out=dst[:, :, lo - top : hi - top])


def cell_logits(cells: Tensor, window: int, scale: Tensor, shift: Tensor, group: int = 8) -> Tensor:
    """Batch-normalised negative patch distances ``-scale * |e_p - e_q|^2 + shift``, ``(nh, nw, w*w)``.

    ``cells``: ``(D, nh+1, nw+1)`` cells of the embedding. A patch distance is the sum over the
    patch's four cells of cell distances to the matching cells of the candidate, so each cell's
    distances to its (w+1) x (w+1) window of cells (the window of the aggregation) are computed
    once, as inner products of ``[e, |e|^2, 1, 1]`` with ``[2 s e', -s, -s |e'|^2, shift / 4]``;
    the 2x2 box sums then give every patch's logits. ``scale`` and ``shift`` are the frozen
    BatchNorm's.

    One cell row at a time: the window rows of the row are copied once into a column-major strip
    where each cell's window is one contiguous block, as in the aggregation, so ``group``
    consecutive cells take one ``(G x K) @ (K x (G+w) * rows)`` product instead of one small
    product per window row. The box sums follow while the row is in cache.
    """
    D, Hc, Wc = cells.shape
    nh, nw = Hc - 1, Wc - 1
    w, h, T = window, window // 2, window + 1
    G = max(1, group)
    K = D + 3
    N = Hc * Wc
    X = cells.new_zeros(N + G, K)  # spare rows: the last group of a row may read past the image
    Y = cells.new_empty(N, K)
    e = cells.permute(1, 2, 0).reshape(N, D)
    n2 = e.square().sum(-1)
    X[:N, :D] = e
    X[:N, D] = n2
    X[:N, D + 1 :] = 1.0
    torch.mul(e, 2.0 * scale, out=Y[:, :D])
    Y[:, D] = -scale
    torch.mul(n2, -scale, out=Y[:, D + 1])
    Y[:, D + 2] = shift / 4
    nm = max(nw - w, 0)  # middle columns h+1 .. nw-h-1, whose windows start h cells before them
    ng = -(-nm // G)
    # spare columns where the last group reaches: zeros or another view's values, finite either way
    strip = cells.new_zeros((Wc + G + T) * T * K)
    prod = cells.new_empty(max(ng, 1) * G * (G + w) * T)
    cd = cells.new_empty(2, Wc + G, T, T)  # two cell rows: each cell's (v, t) window terms
    xs = cells.new_empty(2, nw, w, T)  # their horizontal box sums, (column, v, t)
    out = cells.new_empty(nh, nw, w, w)
    built = None
    for a in range(Hc):
        # window rows: start at 0 (top) or nh-w (bottom) where clamped, with the w+1 rows that
        # the patches above and below the cell reach; elsewhere a-h, w rows
        r0 = 0 if a <= h else nh - w if a >= nh - h else a - h
        nr = w if h < a < nh - h else T
        if built != (r0, nr):
            st = strip[: (Wc + G + T) * nr * K].view(Wc + G + T, nr, K)
            st[:Wc].copy_(Y.view(Hc, Wc, K)[r0 : r0 + nr].transpose(0, 1))
            built = (r0, nr)
        c = cd[a % 2]
        if ng > 0:
            A = _at(X, (ng, G, K), (G * K, K, 1), (a * Wc + h + 1) * K)
            n_ = (G + w) * nr
            B = _at(strip, (ng, n_, K), (G * nr * K, K, 1), nr * K)  # column h+1's window starts at 1
            g = torch.bmm(A, B.transpose(1, 2), out=prod[: ng * G * n_].view(ng, G, n_))
            # cell gi of a group: its window's T columns from column gi of the group's span
            c[h + 1 : h + 1 + ng * G, :, :nr].view(ng, G, T, nr).copy_(
                _at(g, (ng, G, T, nr), (G * n_, n_ + nr, nr, 1), 0))
        for c0, bx in ((0, 0), (nw - h, nw - w)):  # side columns: windows start at columns 0, nw-w
            A = X[a * Wc + c0 : a * Wc + c0 + h + 1]
            B = _at(strip, (T * nr, K), (K, 1), bx * nr * K)
            c[c0 : c0 + h + 1, :, :nr].copy_((A @ B.t()).view(h + 1, T, nr))
        # horizontal box sums. A patch's second cell on an axis (d = 1) sits one column further
        # into its window where that cell's windows are clamped (the first d = 0 cell never does)
        x = xs[a % 2]
        for lo, hi, o in _groups(nw, h):
            torch.add(c[lo:hi, :w], c[lo + 1 : hi + 1, o : o + w], out=x[lo:hi])
        if a == 0:
            continue
        p = a - 1  # patch row p: cell rows p and a; row a one window row further where clamped
        oy = 1 if p < h or p >= nh - h - 1 else 0
        torch.add(xs[p % 2, :, :, :w], xs[a % 2, :, :, oy : oy + w], out=out[p].transpose(-1, -2))
    return out.view(nh, nw, w * w)


def _groups(n: int, h: int) -> list[tuple[int, int, int]]:
    """Patch index ranges and the window offset of their d = 1 cell: 1 where that cell is clamped."""
    g = [(0, h, 1), (h, n - h - 1, 0), (n - h - 1, n, 1)]
    return [(lo, hi, o) for lo, hi, o in g if hi > lo]


def _at(t: Tensor, size: tuple[int, ...], stride: tuple[int, ...], offset: int) -> Tensor:
    """A strided view of ``t``'s memory starting ``offset`` elements after ``t``'s own start."""
    return t.as_strided(size, stride, t.storage_offset() + offset)
