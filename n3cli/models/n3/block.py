"""The N³ block on images (Plötz & Roth 2018; N3NET-FACTS §2), computed on cells (:mod:`.cells`).

One module, four ways to compute it, all equal up to float rounding and all tested against the
per-patch definition (:mod:`.reference`):

* differentiable: training, the blocked products (:mod:`.blocked`) with autograd;
* ``fused``: inference on CPUs, relaxation and aggregation in one pass per cell row (:mod:`.fused`);
* ``blocked``: inference on GPUs, the blocked products writing straight into the output;
* ``batched``: every block in one batch, no data-dependent Python (ONNX export, :mod:`.batched`).
"""
from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

import torch
from torch import Tensor, nn

from ..knn import knn_weights
from ..layers import conv_stack, run_stack
from . import batched, blocked, dense
from .cells import box2, frame_padding, self_index, to_cells
from .fused import neighbour_residuals

FORMS = ("auto", "fused", "blocked", "batched")  # see N3Block2d.set_form

# f_T starts out near zero, so the temperature starts near 0.1, where the relaxation is already
# close to hard kNN; f_T learns a per-patch factor around it (the authors' initial temperature)
LOG_INITIAL_TEMPERATURE = math.log(0.1)


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

    def set_form(self, form: str) -> "N3Block2d":
        """Choose how inference is computed (training always takes the differentiable form).

        * ``auto``: ``fused`` on CPUs, ``blocked`` on GPUs, ``batched`` while being exported;
        * ``fused``: relaxation and aggregation in one pass per cell row, the fastest on CPUs;
        * ``blocked``: a loop over blocks of query patches, a few large kernels (GPUs);
        * ``batched``: all blocks in one batch of matrix products, which traces to a graph with
          dynamic height and width (ONNX export).
        """
        if form not in FORMS:
            raise ValueError(f"unknown N3 block form {form!r} (one of {', '.join(FORMS)})")
        self.form = form
        return self

    def forward(self, x: Tensor) -> Tensor:
        H, W = x.shape[-2:]
        if min(H, W) < self.min_size:
            raise ValueError(f"N3Block2d needs at least {self.min_size} px per side, got {H}x{W}")
        if torch.is_autocast_enabled(x.device.type):
            # the whole block in float32, its two CNNs included: the distances between embeddings
            # (|a|^2 + |b|^2 - 2ab) and the temperature-scaled relaxation turn bfloat16's rounding
            # of the embedding into different neighbours (bench_train.py --numerics)
            with torch.autocast(x.device.type, enabled=False):
                x = x.float()
                return self._core(x, run_stack(self.embedcnn, x), run_stack(self.tempcnn, x))
        return self._core(x, run_stack(self.embedcnn, x), run_stack(self.tempcnn, x))

    def _core(self, x: Tensor, embedding: Tensor, temp_logits: Tensor) -> Tensor:
        """Everything after the two CNNs: distances, BatchNorm, temperature, relaxation, aggregation."""
        B, C, H, W = x.shape
        stride, patch = self.stride, self.patch
        pads = frame_padding(H, W, patch, stride)
        temp_cells = to_cells(temp_logits, pads, stride)
        nh, nw = temp_cells.grid
        if min(nh, nw) < self.window:
            raise ValueError(f"N3Block2d: patch grid {nh}x{nw} is smaller than the window {self.window}")
        # one temperature per query patch: the mean of f_T over its pixels, exponentiated
        temp = torch.exp(box2(temp_cells.values.sum(1)) / (patch * patch) + LOG_INITIAL_TEMPERATURE)  # (B, nh, nw)

        path = self._path(x)
        cells = to_cells(x, pads, stride)
        emb_cells = to_cells(embedding, pads, stride).values
        if path == "differentiable" and dense.fits(nh, nw, self.window):
            return self._train_dense(x, emb_cells, temp, cells)
        if path == "fused":
            return self._infer_fused(x, emb_cells, temp, cells)
        dist = (batched.distances(emb_cells, self.window) if path == "batched"
                else blocked.distances(emb_cells, self.window, self._block_size(x, nh, nw)))
        own = self_index(nh, nw, self.window, x.device).view(1, nh, nw, 1).expand(B, -1, -1, -1)
        is_self = torch.zeros_like(dist, dtype=torch.bool).scatter_(-1, own, True)
        logits = self._normalise(-dist, is_self)
        if path == "blocked":
            return self._infer_blocked(x, logits, temp, is_self, cells)

        weights = self._relax(logits, temp, is_self, chunked=path != "batched")  # (k, B, nh, nw, w*w)
        if path == "batched":
            nbrs = batched.aggregate(weights, cells.values, self.window, stride)
        else:
            nbrs = blocked.aggregate(weights, cells.values, self.window, stride, self._block_size(x, nh, nw))
        nbrs = nbrs[..., cells.top : cells.top + H, cells.left : cells.left + W]  # (B, k*C, H, W)
        return torch.cat([x, (nbrs.reshape(B, self.k, C, H, W) - x.unsqueeze(1)).view(B, -1, H, W)], 1)

    def _train_dense(self, x: Tensor, emb_cells: Tensor, temp: Tensor, cells) -> Tensor:
        """The differentiable block on small crops, as all-pairs products over cells (:mod:`.dense`)."""
        B, C, H, W = x.shape
        nh, nw = cells.grid
        skip = dense.excluded(nh, nw, self.window, x.device)  # (P, P): outside the window, or self
        logits = self._normalise(-dense.patch_distances(emb_cells), skip.expand(B, -1, -1))
        # -inf only after the division: inf * 0 in the temperature's gradient would give nan
        logits = (logits / temp.reshape(B, -1, 1)).masked_fill(skip, float("-inf"))
        nbrs = dense.neighbours(knn_weights(logits, self.k), cells.values, self.stride)
        nbrs = nbrs[..., cells.top : cells.top + H, cells.left : cells.left + W].reshape(B, self.k, C, H, W)
        return torch.cat([x, (nbrs - x.unsqueeze(1)).view(B, -1, H, W)], 1)

    # -- which computation -------------------------------------------------------------------
    def _path(self, x: Tensor) -> str:
        """``batched`` (the graph form), ``differentiable`` (autograd through the blocked form),
        or an inference path: ``fused`` or ``blocked``."""
        if self.form == "batched" or torch.compiler.is_exporting():
            return "batched"
        if torch.is_grad_enabled() and (x.requires_grad or any(q.requires_grad for q in self.parameters())):
            return "differentiable"
        if self.training:  # batch statistics without gradients: the fused form has none
            return "blocked"
        return "fused" if self.form == "fused" or (self.form == "auto" and not x.is_cuda) else "blocked"

    def _block_size(self, x: Tensor, nh: int, nw: int) -> int:
        return min(self.block or (16 if x.is_cuda else 6), nh, nw)

    # -- the steps ---------------------------------------------------------------------------
    def _normalise(self, neg_dist: Tensor, skip: Tensor) -> Tensor:
        """The BatchNorm on negated distances: batch statistics over the real candidates (not the
        query itself) when training, running statistics otherwise."""
        bn = self.bn
        if not self.training:
            scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
            return (neg_dist - bn.running_mean) * scale + bn.bias
        # written out rather than F.batch_norm: with a single channel, BN kernels reduce millions
        # of values in one thread block on GPUs
        vals = neg_dist[~skip]
        mean, var = vals.mean(), vals.var(unbiased=False)
        with torch.no_grad():
            m, n = bn.momentum, vals.numel()
            bn.running_mean.mul_(1 - m).add_(m * mean.detach())
            bn.running_var.mul_(1 - m).add_(m * var.detach() * n / max(n - 1, 1))
            bn.num_batches_tracked += 1
        return (neg_dist - mean) * (bn.weight / torch.sqrt(var + bn.eps)) + bn.bias

    def _relax(self, logits: Tensor, temp: Tensor, is_self: Tensor, chunked: bool = True,
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

    def _output(self, x: Tensor) -> Tensor:
        """The block's output ``(B, k+1, C, H, W)`` with ``x`` in place 0, in ``x``'s memory format
        (channels-last inputs feed channels-last convolutions, several times faster on CPUs)."""
        B, C, H, W = x.shape
        channels_last = x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        out = torch.empty(B, (self.k + 1) * C, H, W, dtype=x.dtype, device=x.device, memory_format=fmt)
        out = out.view(B, self.k + 1, C, H, W)
        out[:, 0] = x
        return out

    def _infer_fused(self, x: Tensor, emb_cells: Tensor, temp: Tensor, cells) -> Tensor:
        bn = self.bn
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        shift = bn.bias - bn.running_mean * scale
        out = self._output(x)
        neighbour_residuals(emb_cells, temp, scale, shift, cells.values, self.k, self.window, x,
                            cells.top, cells.left, out[:, 1:])
        return out.view(x.shape[0], -1, *x.shape[2:])

    def _infer_blocked(self, x: Tensor, logits: Tensor, temp: Tensor, is_self: Tensor, cells) -> Tensor:
        """The weights go straight into the zero-bordered buffer the aggregation reads, and
        ``[x, N1 - x, ..., Nk - x]`` is written block row by block row into the output, the largest
        tensor of the block: no concatenation, padding or separate neighbour image."""
        B, C, H, W = x.shape
        nh, nw = cells.grid
        R = self._block_size(x, nh, nw)
        hp, wp = -(-(nh + 1) // R) * R + 2, -(-(nw + 1) // R) * R + 2
        wbuf = logits.new_empty(self.k, B, hp, wp, self.window**2)
        for border in (wbuf[:, :, :1], wbuf[:, :, 1 + nh :], wbuf[:, :, :, :1], wbuf[:, :, :, 1 + nw :]):
            border.zero_()
        self._relax(logits, temp, is_self, out=wbuf[:, :, 1 : 1 + nh, 1 : 1 + nw])
        out = torch.empty(B, self.k + 1, C, H, W, dtype=x.dtype, device=x.device)
        out[:, 0] = x
        blocked.aggregate(wbuf, cells.values, self.window, self.stride, R,
                          into=(out[:, 1:], x, cells.top, cells.left), padded=True)
        return out.view(B, -1, H, W)
