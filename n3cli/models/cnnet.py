"""Context Normalization Network (Yi et al. 2018) for correspondence classification, and its
N³ variant (Plötz & Roth 2018): one N³ block at the middle layer, candidates = the other matches."""
from __future__ import annotations

import torch
from torch import Tensor, nn

from .knn import neighbours_set


def context_norm(x: Tensor, eps: float = 1e-3) -> Tensor:
    """Normalise each channel over the matches of its pair: ``(B, C, N)``."""
    mean = x.mean(dim=2, keepdim=True)
    var = x.var(dim=2, keepdim=True, unbiased=False)
    return (x - mean) / torch.sqrt(var + eps)


class ResBlock(nn.Module):
    """2 x [1x1 conv, context norm, batch norm, ReLU] with an identity skip."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.c1, self.c2 = nn.Conv1d(channels, channels, 1), nn.Conv1d(channels, channels, 1)
        self.b1, self.b2 = nn.BatchNorm1d(channels), nn.BatchNorm1d(channels)

    def forward(self, x: Tensor) -> Tensor:
        y = torch.relu(self.b1(context_norm(self.c1(x))))
        y = torch.relu(self.b2(context_norm(self.c2(y))))
        return x + y


class MatchN3(nn.Module):
    """The set-form N³ block over the matches of each pair: ``(B, C, N) -> (B, C, N)``.

    Embeddings and temperatures come from 1x1 convs; the k continuous neighbours of each match
    among the others (self excluded) are combined as ``[x, N1 - x, ..., Nk - x]`` and mapped back
    to C channels.
    """

    def __init__(self, channels: int, k: int = 3, embed: int = 32) -> None:
        super().__init__()
        self.k = k
        self.embed = nn.Sequential(nn.Conv1d(channels, channels, 1), nn.ReLU(inplace=True), nn.Conv1d(channels, embed, 1))
        self.temp = nn.Conv1d(channels, 1, 1)
        self.out = nn.Conv1d((k + 1) * channels, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        e = self.embed(x).transpose(1, 2)  # (B, N, E)
        t = torch.exp(self.temp(x)[:, 0].clamp(-10, 10))  # (B, N) positive temperatures
        v = x.transpose(1, 2)  # (B, N, C)
        nb = neighbours_set(e, e, v, self.k, temperature=t, exclude_self=True)  # (B, N, k, C)
        diff = (nb - v.unsqueeze(2)).permute(0, 2, 3, 1).reshape(x.shape[0], -1, x.shape[2])
        return self.out(torch.cat([x, diff], 1))


class CNNet(nn.Module):
    """Per-match network: input ``(B, 4, N)`` normalised (x1, y1, x2, y2); output ``(B, N)`` logits.

    ``n3=True`` inserts a :class:`MatchN3` block after the middle residual block (N³Net).
    Also returns the last hidden features when asked (for a kNN datastore).
    """

    def __init__(self, channels: int = 128, blocks: int = 12, n3: bool = False, k: int = 3, embed: int = 32) -> None:
        super().__init__()
        self.inp = nn.Conv1d(4, channels, 1)
        self.blocks = nn.ModuleList(ResBlock(channels) for _ in range(blocks))
        self.n3 = MatchN3(channels, k, embed) if n3 else None
        self.mid = blocks // 2
        self.head = nn.Conv1d(channels, 1, 1)

    def forward(self, x: Tensor, return_features: bool = False):
        y = self.inp(x)
        for i, blk in enumerate(self.blocks):
            if i == self.mid and self.n3 is not None:
                y = self.n3(y)
            y = blk(y)
        logits = self.head(y)[:, 0]
        return (logits, y) if return_features else logits
