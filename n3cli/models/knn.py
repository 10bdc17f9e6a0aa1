"""Continuous nearest neighbours (N³ relaxation), set form.

The relaxation replaces hard k-nearest-neighbour selection by k successive softmaxes over
negative distances; each step removes (softly) the mass already taken by earlier steps.
These functions know nothing about images: the 2D block in :mod:`n3cli.models.n3`
and the correspondence network build on them.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

_LOG2 = math.log(2.0)


def log1mexp(x: Tensor) -> Tensor:
    """Stable ``log(1 - exp(x))`` for ``x <= 0``; ``-inf`` maps to 0 and 0 maps to ``-inf``.

    Gradients stay finite everywhere, also at ``x = 0`` (a weight of exactly 1), where the
    value is ``-inf`` and whatever comes after it passes back a zero gradient.
    """
    # Two branches (Maechler 2012): log1p(-exp) is accurate for very negative x, log(-expm1)
    # near 0. Each branch only ever sees inputs where it is finite, since torch.where still
    # multiplies the unused branch's gradient by 0 and 0 * inf = nan.
    x = x.clamp(max=0.0)
    far = x < -_LOG2
    safe = torch.full_like(x, -1.0)
    x_far = torch.where(far, x, safe)
    x_near = torch.where(far, safe, x)
    x_grad = x_near.clamp(max=-torch.finfo(x.dtype).eps)
    near = torch.log(-torch.expm1(x_grad))
    # value exact (-inf at 0), gradient taken just below 0
    near = near + (torch.log(-torch.expm1(x_near)) - near).detach()
    return torch.where(far, torch.log1p(-torch.exp(x_far)), near)


def knn_weights(logits: Tensor, k: int, dim: int = -1, out: Tensor | None = None) -> Tensor:
    """Weights of the k continuous nearest neighbours.

    ``logits`` are negative distances already divided by the temperature; entries set to
    ``-inf`` are never selected. Returns a tensor of shape ``(k, *logits.shape)`` whose
    slices each sum to 1 over ``dim``. As the temperature goes to 0, slice j becomes the
    one-hot indicator of the j-th nearest candidate. ``out`` (inference only) receives the result
    in place of a new tensor.
    """
    ws = []
    a = logits
    fast = not (torch.is_grad_enabled() and logits.requires_grad)
    if out is not None and not fast:
        raise ValueError("knn_weights(out=...) is for inference: it cannot carry gradients")
    if out is not None and not torch.compiler.is_exporting():
        return _knn_weights_products(logits, k, dim, out)
    for j in range(k):
        log_w = torch.log_softmax(a, dim=dim)
        w = log_w.exp() if out is None else torch.exp(log_w, out=out[j])
        ws.append(w)
        if j == k - 1:  # nothing is taken away after the last step
            break
        if fast:
            a = a + _log1mexp_inference(log_w, w)
        else:
            a = a + log1mexp(log_w)
    return torch.stack(ws, 0) if out is None else out


# a step that keeps less than this share of the unnormalised mass sends its row to the log-space
# form: below it, 1 - w of the weight that took the mass has lost digits (at 0.2 the float32
# results are as close to float64 ones as the log-space form's)
_MASS_KEPT = 0.2


def _knn_weights_products(logits: Tensor, k: int, dim: int, out: Tensor) -> Tensor:
    """:func:`knn_weights` into ``out``, in probability space: one exp, then per step a sum, a scale
    and ``u <- u * (1 - w)``, the same recursion as ``a <- a + log(1 - w)`` on ``u = exp(a - max)``.

    Three passes a step instead of the log-space form's transcendental ones (3x faster on CPUs).
    It is exact in exact arithmetic; in floating point ``1 - w`` loses digits when one candidate
    takes nearly all the mass, so rows where a step keeps less than ``_MASS_KEPT`` of it (about
    2% of the rows with the shipped denoisers) are redone in log space.
    """
    u = torch.sub(logits, logits.amax(dim, keepdim=True))
    u.exp_()
    s = u.sum(dim, keepdim=True)
    redo = None
    for j in range(k):
        w = torch.mul(u, s.reciprocal(), out=out[j])
        if j == k - 1:
            break
        u.addcmul_(u, w, value=-1.0)
        s_next = u.sum(dim, keepdim=True)
        low = s_next < _MASS_KEPT * s
        redo = low if redo is None else redo.logical_or_(low)
        s = s_next
    if redo is not None and bool(redo.any()):
        rows = redo.squeeze(dim)
        lg = logits.movedim(dim, -1)[rows]  # (n, candidates)
        ws = knn_weights(lg, k)  # log space (no out)
        o = out.movedim(dim if dim < 0 else dim + 1, -1)
        o[:, rows] = ws
    return out


def _log1mexp_inference(log_w: Tensor, w: Tensor) -> Tensor:
    """``log(1 - w)`` without autograd: log1p(-w) everywhere, redone with log(-expm1) for the
    few weights above 1/2 where log1p loses digits. A handful of passes instead of log1mexp's ~20."""
    out = torch.log1p(-w)
    big = log_w > -_LOG2
    if torch.compiler.is_exporting():  # no data-dependent branch in a graph
        return torch.where(big, torch.log(-torch.expm1(log_w.clamp(min=-_LOG2))), out)
    if bool(big.any()):
        out[big] = torch.log(-torch.expm1(log_w[big]))
    return out


def neighbours_set(
    query: Tensor,
    database: Tensor,
    values: Tensor,
    k: int,
    temperature: Tensor | float = 1.0,
    candidates: Tensor | None = None,
    exclude_self: bool = False,
) -> Tensor:
    """Continuous kNN of each query among database items (set form).

    Args:
        query: ``(B, N, E)`` query embeddings.
        database: ``(B, M, E)`` database embeddings.
        values: ``(B, M, F)`` what is averaged (may differ from the embeddings).
        k: number of neighbours.
        temperature: scalar or ``(B, N)`` positive temperatures.
        candidates: optional ``(B, N, K)`` or ``(N, K)`` index into the database; when
            absent, every database item is a candidate.
        exclude_self: when query i and database item i are the same item (N == M), never
            pick an item as its own neighbour.

    Returns:
        ``(B, N, k, F)``: the k neighbour values of each query.
    """
    B, N, _ = query.shape
    if not torch.is_tensor(temperature):
        temperature = torch.full((B, N), float(temperature), dtype=query.dtype, device=query.device)
    if candidates is None:
        # |q|^2 + |d|^2 - 2 q.d: one matrix product, never a (B, N, M, E) difference tensor
        d = (query.pow(2).sum(-1).unsqueeze(2) + database.pow(2).sum(-1).unsqueeze(1)
             - 2.0 * query @ database.transpose(1, 2)).clamp(min=0.0)  # (B, N, M)
        logits = -d / temperature.unsqueeze(-1)
        if exclude_self:  # -inf only after the division: inf * 0 in the temperature's gradient is nan
            logits = logits.masked_fill(torch.eye(N, dtype=torch.bool, device=query.device), float("-inf"))
        w = knn_weights(logits, k)  # (k, B, N, M)
        return torch.einsum("jbnm,bmf->bnjf", w, values)
    if candidates.dim() == 2:
        candidates = candidates.unsqueeze(0).expand(B, -1, -1)
    K = candidates.shape[-1]
    flat = candidates.reshape(B, N * K)
    cand_e = torch.gather(database, 1, flat.unsqueeze(-1).expand(-1, -1, database.shape[-1]))
    d = (query.unsqueeze(2) - cand_e.view(B, N, K, -1)).pow(2).sum(-1)  # (B, N, K)
    logits = -d / temperature.unsqueeze(-1)
    if exclude_self:
        own = torch.arange(N, device=query.device).view(1, N, 1)
        logits = logits.masked_fill(candidates == own, float("-inf"))
    w = knn_weights(logits, k)  # (k, B, N, K)
    cand_v = torch.gather(values, 1, flat.unsqueeze(-1).expand(-1, -1, values.shape[-1]))
    return torch.einsum("jbnk,bnkf->bnjf", w, cand_v.view(B, N, K, -1))
