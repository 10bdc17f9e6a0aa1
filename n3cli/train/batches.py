"""Training batches made where the network trains: the images are loaded onto the device once,
and each batch (crops, rotations, flips, noise, downscaling, unprocessing) is drawn there by a
torch generator seeded from (seed, step).

A batch is a pure function of the seed and the step, so a resumed run sees exactly the batches
the uninterrupted run would have seen (on the same kind of device), and there are no data loader
processes to feed: on a GPU the whole step stays on the GPU.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from ..errors import ImageError
from ..imaging.noise import mixed_seed


def step_generator(seed: int, step: int, device: torch.device) -> torch.Generator:
    """The generator of one step's random draws, seeded from (seed, step) by :func:`mixed_seed`."""
    g = torch.Generator(device=device)
    g.manual_seed(mixed_seed(seed, step))
    return g


class ImageBank:
    """Training images on the device, padded into one ``(N, C, H, W)`` tensor (8-bit where every
    image is exactly 8-bit, a quarter of the memory), and random square crops of them."""

    def __init__(self, images: list[np.ndarray], device: torch.device) -> None:
        if not images:
            raise ImageError("no training images")
        self.device = torch.device(device)
        self.sizes = torch.tensor([im.shape[:2] for im in images], device=self.device)
        H, W = (int(v) for v in self.sizes.max(0).values)
        C = images[0].shape[2]
        exact8 = all(np.array_equal(np.rint(im * 255.0), im * 255.0) for im in images)
        dtype = torch.uint8 if exact8 else torch.float32
        bank = torch.zeros(len(images), H, W, C, dtype=dtype)
        for i, im in enumerate(images):
            px = np.rint(im * 255.0).astype(np.uint8) if exact8 else im.astype(np.float32)
            bank[i, : im.shape[0], : im.shape[1]] = torch.from_numpy(px)
        self.bank = bank.to(self.device)  # (N, H, W, C): a crop's gather then reads whole pixels
        self.scale = 1.0 / 255.0 if exact8 else 1.0

    @property
    def smallest(self) -> int:
        return int(self.sizes.min())

    def crops(self, n: int, size: int, g: torch.Generator, rot90: bool = True, flip: bool = True) -> Tensor:
        """``n`` crops ``(n, C, size, size)`` float32 in [0, 1]: image, position and one of the
        rotations/flips allowed drawn from ``g``. One gather: the rotation or flip is folded into
        the crop's pixel index."""
        if size > self.smallest:
            raise ImageError(f"a training image is smaller ({self.smallest} px) than the crop size {size}")
        dev = self.device
        img = torch.randint(len(self.sizes), (n,), generator=g, device=dev)
        room = self.sizes[img] - size + 1  # (n, 2) positions per axis
        top = (torch.rand(n, generator=g, device=dev) * room[:, 0]).long()
        left = (torch.rand(n, generator=g, device=dev) * room[:, 1]).long()
        kinds = [t for t in range(8) if (rot90 or t % 4 == 0) and (flip or t < 4)]
        t = torch.tensor(kinds, device=dev)[torch.randint(len(kinds), (n,), generator=g, device=dev)]
        rows, cols = _dihedral_grids(size, dev)
        r = top.view(-1, 1, 1) + rows[t]
        c = left.view(-1, 1, 1) + cols[t]
        out = self.bank[img.view(-1, 1, 1), r, c]  # (n, size, size, C)
        return out.permute(0, 3, 1, 2).float().mul_(self.scale).contiguous()


def _dihedral_grids(size: int, device: torch.device) -> tuple[Tensor, Tensor]:
    """Source row and column of every crop pixel for the 8 rotations (t % 4 quarter turns, as
    ``np.rot90``) and flips (t >= 4: mirrored left-right first), ``(8, size, size)`` each."""
    i = torch.arange(size, device=device).view(-1, 1).expand(size, size)
    j = torch.arange(size, device=device).view(1, -1).expand(size, size)
    rows, cols = [], []
    for t in range(8):
        r, c = i, j
        if t >= 4:
            c = size - 1 - c
        for _ in range(t % 4):  # np.rot90: out[i, j] = in[j, n-1-i]
            r, c = r[j, size - 1 - i], c[j, size - 1 - i]
        rows.append(r)
        cols.append(c)
    return torch.stack(rows), torch.stack(cols)


# -- what each task makes of clean crops ---------------------------------------------------------
def gaussian_noise(clean: Tensor, kind: str, sigma: float, sigma_range: list[float], takes_map: bool,
                   g: torch.Generator) -> tuple[Tensor, Tensor]:
    """(network input, target) for Gaussian denoising: ``clean + N(0, sigma/255)``, sigma fixed or
    uniform per crop; the sigma/255 map channel appended for noise-aware models."""
    n = clean.shape[0]
    if kind == "fixed":
        s = torch.full((n,), float(sigma), device=clean.device)
    else:
        lo, hi = sigma_range
        s = lo + (hi - lo) * torch.rand(n, generator=g, device=clean.device)
    noisy = clean + torch.randn(clean.shape, generator=g, device=clean.device) * (s / 255.0).view(-1, 1, 1, 1)
    if not takes_map:
        return noisy, clean
    smap = (s / 255.0).view(-1, 1, 1, 1).expand(-1, 1, *clean.shape[2:])
    return torch.cat([noisy, smap], 1), clean


class Downscaler:
    """The SR protocol's degradation of crops as matrix products: MATLAB bicubic downscaling of
    the 8-bit crop, rounded and clipped to 8 bits, then bicubic upscaling (not rounded)."""

    def __init__(self, size: int, scales: list[int], device: torch.device) -> None:
        from ..imaging.resize import resize_matrix

        self.mats = {}
        for s in scales:
            down = resize_matrix(size, math.ceil(size / s), 1.0 / s)
            up = resize_matrix(down.shape[0], size, float(s))
            self.mats[s] = tuple(torch.tensor(m, dtype=torch.float32, device=device) for m in (down, up))
        self.scales = list(scales)

    def __call__(self, clean_y: Tensor, g: torch.Generator) -> tuple[Tensor, Tensor]:
        """(bicubic-upscaled LR input, 8-bit-rounded HR target), one scale drawn per crop."""
        n = clean_y.shape[0]
        pick = torch.randint(len(self.scales), (n,), generator=g, device=clean_y.device)
        hr = torch.round(clean_y * 255.0)
        inp = torch.empty_like(hr)
        for i, s in enumerate(self.scales):
            sel = (pick == i).nonzero().view(-1)
            if len(sel):
                down, up = self.mats[s]
                with torch.autocast(hr.device.type, enabled=False):  # 8-bit rounding needs fp32
                    lr = torch.round(down @ hr[sel] @ down.T).clamp_(0, 255)
                    inp[sel] = up @ lr @ up.T
        return inp / 255.0, hr / 255.0


def raw_noise(srgb: Tensor, g: torch.Generator, a_log_range: Sequence[float] | None = None,
              b_over_a_log_range: Sequence[float] | None = None, correlated_fraction: float = 0.0,
              max_correlation: float = 0.3) -> tuple[Tensor, Tensor]:
    """(network input ``(n, 6, h, w)``, clean RGGB planes ``(n, 4, h, w)``) from sRGB crops
    ``(n, 3, 2h, 2w)``: unprocessed to linear camera RGB with a random colour matrix and gains
    (FACTS §6, as :func:`n3cli.imaging.raw_noise.unprocess`), mosaicked RGGB, Poisson-Gaussian noise
    with log10 a ~ U(``a_log_range``) and log10 (b/a) ~ U(``b_over_a_log_range``) [default: the
    training range of :mod:`n3cli.imaging.raw_noise`, wider than the paper's], and the sqrt(a),
    sqrt(b) maps.

    ``correlated_fraction`` of the crops get noise correlated between neighbours (lag-1
    correlation along rows and along columns, each uniform over [0, ``max_correlation``]) and
    between planes (a common share, the same range), as some real files hold
    (:mod:`n3cli.imaging.correlated_noise`). Their maps carry what the single-image fit reads of
    such noise, the variance times the share its Laplacian sees, so that the model learns to
    remove the whole of it when ``n3 denoise`` gives it the fit's reading."""
    from ..imaging.camera import sample_camera, unprocess
    from ..imaging.correlated_noise import correlated_normal, laplacian_share, side_tap
    from ..imaging.raw_noise import A_LOG_RANGE, B_OVER_A_LOG_RANGE

    n, dev = srgb.shape[0], srgb.device
    u = lambda *shape: torch.rand(shape, generator=g, device=dev)  # noqa: E731
    ccm, gains = sample_camera(n, g, dev)
    x = unprocess(srgb, ccm, gains)
    clean = torch.stack([x[:, 0, 0::2, 0::2], x[:, 1, 0::2, 1::2], x[:, 1, 1::2, 0::2], x[:, 2, 1::2, 1::2]], 1)
    (a0, a1), (r0, r1) = a_log_range or A_LOG_RANGE, b_over_a_log_range or B_OVER_A_LOG_RANGE
    log_a = a0 + (a1 - a0) * u(n)
    log_b = log_a + r0 + (r1 - r0) * u(n)
    a, b = (10.0**log_a).view(-1, 1, 1, 1), (10.0**log_b).view(-1, 1, 1, 1)
    if correlated_fraction > 0:
        pick = (u(n) < correlated_fraction).float()
        rho_row, rho_col, share = (pick * max_correlation * u(n) for _ in range(3))
        z = correlated_normal(tuple(clean.shape), rho_row, rho_col, share, g, dev)
        read = (laplacian_share(side_tap(rho_row)) * laplacian_share(side_tap(rho_col))).view(-1, 1, 1, 1)
    else:  # the draws of the configs that came before correlated noise, unchanged
        z, read = torch.randn(clean.shape, generator=g, device=dev), torch.ones_like(a)
    noisy = clean + torch.sqrt((a * clean + b).clamp_min(0.0)) * z
    maps = torch.cat([(a * read).sqrt(), (b * read).sqrt()], 1).expand(-1, -1, *clean.shape[2:])
    return torch.cat([noisy, maps], 1), clean


RAW_REF_VAR = 1e-4  # noise sigma 0.01 of full scale weighs 1
RAW_MIN_VAR = 1e-6  # below sigma 0.001 (a quarter of an 8-bit level) the weight stops growing


def raw_loss_weight(inp: Tensor, clean: Tensor, power: float = 1.0) -> Tensor:
    """Per-crop weights ``(RAW_REF_VAR / var) ** power`` for :func:`raw_noise`'s batches, var =
    a*mean(x) + b the crop's mean noise variance (a, b read back from the input's sqrt maps). The
    plain MSE of a crop scales with its noise variance, 1e-6 to 1e-1 over the training range:
    unweighted, the low levels that real files sit at hardly count; ``power`` 1 makes every level
    count alike (the mean log-MSE), 0.5 goes half-way (weights over sigma)."""
    a = inp[:, 4].flatten(1).mean(1).square()
    b = inp[:, 5].flatten(1).mean(1).square()
    var = a * clean.flatten(1).mean(1) + b
    return (RAW_REF_VAR / var.clamp_min(RAW_MIN_VAR)) ** power


def camera_noise(srgb: Tensor, g: torch.Generator, gaussian_fraction: float = 0.0,
                 sigma_range: tuple[float, float] = (0.0, 55.0)) -> tuple[Tensor, Tensor]:
    """(network input ``(n, 4, h, w)``, clean target) for realistic camera noise
    (:mod:`n3cli.imaging.camera_noise`): the noisy photo plus a map of the noise level the
    estimator reads on it, what ``n3 denoise`` gives the model when no ``--sigma`` is set.

    ``gaussian_fraction`` of the crops get white Gaussian noise instead (sigma uniform over
    ``sigma_range``; target the crop itself), so that a model that learns the estimator's
    under-reading of camera noise does not over-smooth noise the estimator reads right."""
    from ..imaging.camera_noise import camera_noise as synthesize
    from ..imaging.estimate import estimate_sigma_batch

    noisy, clean, _ = synthesize(srgb, g)
    if gaussian_fraction > 0:
        n = srgb.shape[0]
        pick = torch.rand(n, generator=g, device=srgb.device) < gaussian_fraction
        lo, hi = sigma_range
        s = (lo + (hi - lo) * torch.rand(n, generator=g, device=srgb.device)) / 255.0
        white = srgb + torch.randn(srgb.shape, generator=g, device=srgb.device) * s.view(-1, 1, 1, 1)
        sel = pick.view(-1, 1, 1, 1)
        noisy, clean = torch.where(sel, white, noisy), torch.where(sel, srgb, clean)
    s = estimate_sigma_batch(noisy) / 255.0
    return torch.cat([noisy, s.view(-1, 1, 1, 1).expand(-1, 1, *noisy.shape[2:])], 1), clean
