"""Noise correlated between neighbouring photosites and between colour planes (issue 25).

Poisson-Gaussian noise, which the RAW models were first trained on, is white: every photosite's
noise is its own. Real files are not all like that (``benchmarks/raw_noise_structure.py``, flattest
windows of the packed planes): a Blackmagic Pocket 4K DNG's noise correlates 0.19 with the
same-colour photosite to the right, 0.17 below and 0.21 between planes, a Kodak DC120's 0.12 along
rows. The single-image fit (:func:`n3cli.imaging.raw_noise.estimate_noise_params`) reads the
finest scale, which correlated noise partly hides from it, so those files read low; a model that
only saw white noise at the level it is told then leaves part of the real noise.

This module draws unit-variance normal fields with a chosen lag-1 correlation along rows and
columns (a separable 3-tap filter ``[t, 1, t]``) and a chosen share common to all planes, and says
which share of their variance Immerkær's Laplacian, the fit's filter, sees.
"""
from __future__ import annotations

import torch
from torch import Tensor

MAX_CORRELATION = 0.5
"""The largest lag-1 correlation :func:`side_tap` takes (a 3-tap filter reaches 0.71)."""


def side_tap(rho: Tensor) -> Tensor:
    """The side tap ``t`` of the filter ``[t, 1, t]`` whose output has lag-1 correlation ``rho``.

    The filtered white noise's autocorrelation is ``(1 + 2t^2, 2t, t^2)`` at lags 0, 1, 2, so
    ``rho = 2t / (1 + 2t^2)``; the smaller root is taken (``t`` 0 at ``rho`` 0)."""
    rho = rho.clamp(0.0, MAX_CORRELATION)
    return rho / (1 + torch.sqrt(1 - 2 * rho * rho))  # (1 - sqrt(1 - 2 rho^2)) / (2 rho), stable at 0


def laplacian_share(t: Tensor) -> Tensor:
    """The share of the noise variance that the 1-D filter ``[1, -2, 1]`` sees after ``[t, 1, t]``,
    against white noise of the same variance: ``(14t^2 - 16t + 6) / (6 (1 + 2t^2))``. Immerkær's
    Laplacian is that filter along rows times along columns, so for a separable field the fit
    reads the variance times the product of the two shares."""
    return (14 * t * t - 16 * t + 6) / (6 * (1 + 2 * t * t))


def _filter_3tap(x: Tensor, t: Tensor, dim: int) -> Tensor:
    """``[t, 1, t]`` along ``dim`` (valid part: 2 shorter), ``t`` per sample ``(n, 1, 1, 1)``."""
    n = x.shape[dim]
    return t * x.narrow(dim, 0, n - 2) + x.narrow(dim, 1, n - 2) + t * x.narrow(dim, 2, n - 2)


def correlated_normal(shape: tuple[int, int, int, int], rho_row: Tensor, rho_col: Tensor,
                      plane_share: Tensor, g: torch.Generator, device: torch.device | str = "cpu") -> Tensor:
    """A normal field ``(n, c, h, w)`` of unit variance whose sample ``i`` has lag-1 correlation
    ``rho_row[i]`` along rows (each value with the next to its right), ``rho_col[i]`` along
    columns, and correlation ``plane_share[i]`` between any two of its ``c`` planes.

    Rows and columns are filtered separately, so the field's correlation two cells away is small
    (``t^2 / (1 + 2t^2)``, 0.024 at ``rho`` 0.3). The field is drawn with a 1-cell margin that the
    filter uses up, so its borders are as correlated as its middle."""
    n, c, h, w = shape
    view = lambda v: v.to(device=device, dtype=torch.float32).view(-1, 1, 1, 1)  # noqa: E731
    share = view(plane_share).clamp(0.0, 1.0)
    z = torch.randn((n, c, h + 2, w + 2), generator=g, device=device)
    common = torch.randn((n, 1, h + 2, w + 2), generator=g, device=device)
    z = torch.sqrt(1 - share) * z + torch.sqrt(share) * common
    th, tv = side_tap(view(rho_row)), side_tap(view(rho_col))
    z = _filter_3tap(_filter_3tap(z, th, 3), tv, 2)
    return z / torch.sqrt((1 + 2 * th * th) * (1 + 2 * tv * tv))
