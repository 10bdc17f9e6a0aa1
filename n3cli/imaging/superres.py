"""Multi-frame super-resolution: the large image that best explains every frame of a burst.

Each frame of a hand-held burst samples the scene on a grid shifted by a fraction of a pixel, so
detail that one frame aliases away is seen, at other phases, by the others. Given where each
frame lies on the reference (:class:`~n3cli.imaging.align.Registrar`), a candidate enlargement
``x`` predicts every frame: warp ``x`` onto the frame's grid at the large scale, then shrink it
as the super-resolution models were trained to undo (MATLAB's bicubic ``imresize``). The result
is the ``x`` whose predictions fit the frames best, weighted per pixel (0 where a frame showed
something that moved), held near a single-image enlargement ``x0`` (the prior), by ``lam``:

    minimise  sum_k || w_k (D W_k x - y_k) ||^2  +  lam || x - x0 ||^2

a linear least-squares problem, solved by conjugate gradients on one window at a time (the
normal equations' transposes come from autograd). Pixels no frame constrains keep ``x0``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

ITERATIONS = 30
"""Conjugate-gradient steps per window. 15 gave 36.95 dB against 30's 37.01 (x2, 4 frames, Set5;
`benchmarks/burst_sr.py --frames 4`) in half the refinement's time."""


def downscale_taps(scale: int) -> tuple[int, np.ndarray]:
    """MATLAB's bicubic 1/``scale`` downscaling as one kernel: (the offset of its first tap from
    ``scale * q`` for output pixel ``q``, the taps). The same for every output pixel away from
    the image border."""
    from .resize import resize_matrix

    row = resize_matrix(16 * scale, 16, 1.0 / scale)[8]
    nz = np.flatnonzero(row)
    return int(nz[0] - 8 * scale), row[nz[0]: nz[-1] + 1].astype(np.float32)


@dataclass
class Frame:
    """One frame as the reconstruction sees it: its pixels (h x w x C, any dtype; float in [0, 1]
    or uint8/uint16), the homography taking the reference's pixel coordinates to the frame's
    (identity for the reference) and how much each of its pixels counts (h x w, 0 to 1)."""

    pixels: np.ndarray
    homography: np.ndarray
    weight: np.ndarray


class Reconstruction:
    """Solves the problem above on windows of the reference (:meth:`solve`)."""

    def __init__(self, frames: list[Frame], scale: int, lam: float, iterations: int = ITERATIONS) -> None:
        if scale != int(scale) or scale < 2:
            raise ValueError(f"multi-frame reconstruction takes whole scales of 2 or more, not {scale}")
        self.frames, self.scale, self.lam, self.iterations = frames, int(scale), float(lam), iterations
        self.first, taps = downscale_taps(self.scale)
        self.taps = taps
        s = float(self.scale)
        # large-scale pixel centres: X = s * u + (s - 1) / 2 for small-scale u
        self._up = np.float64([[s, 0, (s - 1) / 2], [0, s, (s - 1) / 2], [0, 0, 1]])

    def solve(self, x0: np.ndarray, top: int, left: int) -> np.ndarray:
        """The reconstruction of one window: ``x0`` is the prior over it (H x W x C float32, in
        large-scale pixels), whose corner lies at small-scale pixel (``top``, ``left``) of the
        reference. Returns an array like ``x0``; pixels within a few of the window's border are
        barely constrained (keep the core)."""
        import torch

        with torch.no_grad():
            prior = torch.from_numpy(np.ascontiguousarray(x0.transpose(2, 0, 1), dtype=np.float32))
        terms = [t for t in (self._term(f, prior.shape, top, left) for f in self.frames) if t is not None]
        if not terms:
            return x0
        lam = self.lam

        def normal(x: torch.Tensor) -> torch.Tensor:  # (lam + sum A^T W A) x
            with torch.enable_grad():
                v = x.detach().requires_grad_(True)
                energy = sum(0.5 * (t.mask * t.apply(v) ** 2).sum() for t in terms)
                (g,) = torch.autograd.grad(energy, v)
            return g + lam * x

        with torch.enable_grad():
            v = torch.zeros_like(prior, requires_grad=True)
            (b,) = torch.autograd.grad(sum((t.mask * t.target * t.apply(v)).sum() for t in terms), v)
        b = b + lam * prior
        x = prior.clone()
        r = b - normal(x)
        p, rr = r.clone(), float((r * r).sum())
        start = rr
        for _ in range(self.iterations):
            if rr <= 1e-12 * start or rr == 0.0:
                break
            q = normal(p)
            alpha = rr / float((p * q).sum())
            x += alpha * p
            r -= alpha * q
            rr, last = float((r * r).sum()), rr
            p = r + (rr / last) * p
        return x.numpy().transpose(1, 2, 0)

    def _term(self, frame: Frame, shape, top: int, left: int) -> _Term | None:
        """One frame's part of the problem over a window, or None where it sees none of it."""
        import torch
        import torch.nn.functional as F

        C, Hw, Ww = shape
        s, first, k = self.scale, self.first, len(self.taps)
        h, w = frame.pixels.shape[:2]
        Hinv = np.linalg.inv(frame.homography)
        # the frame's small-scale pixels whose footprint may fall in the window
        lh, lw = Hw / s, Ww / s
        corners = np.float64([[left, top, 1], [left + lw, top, 1], [left, top + lh, 1], [left + lw, top + lh, 1]]).T
        q = frame.homography @ corners
        q = q[:2] / q[2]
        a0, a1 = max(0, math.floor(q[1].min())), min(h, math.ceil(q[1].max()) + 1)
        b0, b1 = max(0, math.floor(q[0].min())), min(w, math.ceil(q[0].max()) + 1)
        if a1 - a0 < 2 or b1 - b0 < 2:
            return None
        # the large-scale samples those pixels' taps read, on the frame's grid ...
        rows = s * a0 + first + np.arange(s * (a1 - a0 - 1) + k, dtype=np.float64)
        cols = s * b0 + first + np.arange(s * (b1 - b0 - 1) + k, dtype=np.float64)
        X, Y = np.meshgrid(cols, rows)
        # ... and where they lie in the window (large-scale reference pixels)
        G = self._up @ Hinv @ np.linalg.inv(self._up)
        P = G @ np.stack([X.ravel(), Y.ravel(), np.ones(X.size)])
        px = P[0] / P[2] - s * left
        py = P[1] / P[2] - s * top
        inside = ((px >= 1) & (px <= Ww - 2) & (py >= 1) & (py <= Hw - 2)).reshape(X.shape)
        grid = np.stack([2 * px / (Ww - 1) - 1, 2 * py / (Hw - 1) - 1], -1).reshape(1, *X.shape, 2)
        kernel = torch.from_numpy(self.taps)
        outside = torch.from_numpy((~inside).astype(np.float32))[None, None]
        k2 = kernel.abs()
        reach = F.conv2d(F.conv2d(outside, k2.view(1, 1, k, 1), stride=(s, 1)), k2.view(1, 1, 1, k), stride=(1, s))[0, 0]
        target = _float(frame.pixels[a0:a1, b0:b1])
        mask = (reach < 1e-6).numpy() * frame.weight[a0:a1, b0:b1].astype(np.float32)
        if not mask.any():
            return None
        return _Term(torch.from_numpy(grid.astype(np.float32)), kernel, s,
                     torch.from_numpy(np.ascontiguousarray(target.transpose(2, 0, 1))),
                     torch.from_numpy(mask.astype(np.float32))[None])


@dataclass
class _Term:
    grid: object
    kernel: object
    scale: int
    target: object
    mask: object

    def apply(self, x):
        """``D W x`` over the frame's pixels this term covers (C x h x w)."""
        import torch.nn.functional as F

        C = x.shape[0]
        z = F.grid_sample(x[None], self.grid, mode="bicubic", padding_mode="zeros", align_corners=True)
        k, s = self.kernel.numel(), self.scale
        z = F.conv2d(z.transpose(0, 1), self.kernel.view(1, 1, k, 1), stride=(s, 1))
        z = F.conv2d(z, self.kernel.view(1, 1, 1, k), stride=(1, s))
        return z[:, 0].reshape(C, *z.shape[-2:])


def _float(pixels: np.ndarray) -> np.ndarray:
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    if pixels.dtype == np.uint8:
        return pixels.astype(np.float32) / 255.0
    if pixels.dtype == np.uint16:
        return pixels.astype(np.float32) / 65535.0
    return pixels.astype(np.float32, copy=False)
