"""The N³ block by its definition (N3NET-FACTS §2), one patch and one candidate at a time: slow,
plain, and what every fast form of :class:`~n3cli.models.n3.N3Block2d` is tested against
(in float64, where the forms agree to ~1e-7)."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .cells import window_starts


def n3_direct(x, emb, tlog, bn, k, p=10, s=5, w=15):
    """The N³ block by definition: every patch, every window candidate, one at a time.

    ``bn`` = (running_mean, running_var, weight, bias, eps) of the distance BatchNorm (eval mode).
    """
    B, C, H, W = x.shape
    ph, pw = (-(H - p)) % s, (-(W - p)) % s
    pads = (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2)
    px, pe, pt = (F.unfold(F.pad(t, pads), p, stride=s) for t in (x, emb, tlog))
    Hp, Wp = H + ph, W + pw
    nh, nw = (Hp - p) // s + 1, (Wp - p) // s + 1
    sr, sc = window_starts(nh, w), window_starts(nw, w)
    rm, rv, bw, bb, eps = bn
    out = torch.zeros(B, k, C * p * p, nh * nw, dtype=x.dtype)
    for b in range(B):
        for i in range(nh):
            for j in range(nw):
                q = i * nw + j
                cands = [r * nw + c for r in range(sr[i], sr[i] + w) for c in range(sc[j], sc[j] + w)
                         if (r, c) != (i, j)]
                d = ((pe[b, :, [q]] - pe[b, :, cands]) ** 2).sum(0)
                a = (-d - rm) / torch.sqrt(rv + eps) * bw + bb
                a = a / torch.exp(pt[b, :, q].mean() + math.log(0.1))
                for n in range(k):
                    wgt = torch.softmax(a, 0)
                    out[b, n, :, q] = (px[b][:, cands] * wgt).sum(1)
                    a = a + torch.log1p(-wgt)
    ones = F.fold(torch.ones(1, C * p * p, nh * nw, dtype=x.dtype), (Hp, Wp), p, stride=s)
    res = [x]
    for n in range(k):
        img = F.fold(out[:, n], (Hp, Wp), p, stride=s) / ones
        res.append(img[..., pads[2]:pads[2] + H, pads[0]:pads[0] + W] - x)
    return torch.cat(res, 1)


def bn_params(module):
    return (module.running_mean, module.running_var, module.weight, module.bias, module.eps)
