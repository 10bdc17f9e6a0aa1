"""Realistic noise for sRGB photos: what a camera or phone makes of sensor noise.

A clean sRGB image is taken back to the sensor (:func:`.camera.unprocess`), mosaicked, given
Poisson-Gaussian noise ``var = a*x + b`` at a camera-like level, demosaiced (bilinear or
Malvar-He-Cutler), developed (white balance, colour matrix, gamma, tone curve), optionally
sharpened, rounded to 8 bits and optionally JPEG-compressed. The noise that comes out depends on
brightness, is correlated across channels and neighbours, and is shaped by the tone curve,
sharpening and JPEG blocks, as in real photos. The clean target is the same development of the
noise-free mosaic (demosaiced and sharpened alike, not quantised), as the clean images of
real-noise benchmarks are: the denoiser is asked to remove noise, not to undo demosaicing.

Every parameter is drawn per image from the caller's generator, in a fixed order.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from . import camera

# log10 a ~ U(A_LOG_RANGE); log10 b = log10 a - 2.3 + U(-1.3, 1.3) (the raw training range's
# shape). Developed, a = 1e-4 is a clean base-ISO photo (sRGB sigma about 2) and a = 10^-1.7 a
# high-ISO phone shot (sigma about 25-40 in the shadows).
A_LOG_RANGE = (-4.0, -1.7)
JPEG_FRACTION = 0.75  # the rest are developed to PNG/TIFF (raw developers)
JPEG_QUALITY = (70.0, 97.0)
SHARPEN_FRACTION = 0.5
SHARPEN_AMOUNT = (0.2, 1.0)


@dataclass
class CameraNoise:
    """The draws behind a batch, one value (or matrix) per image."""

    ccm: Tensor  # (n, 3, 3) sRGB -> camera
    gains: Tensor  # (n, 3) inverse white balance and brightness
    a: Tensor  # (n,)
    b: Tensor  # (n,)
    mhc: Tensor  # (n,) bool: Malvar-He-Cutler demosaicing, else bilinear
    sharpen: Tensor  # (n,) unsharp-mask amount, 0 for none
    quality: Tensor  # (n,) JPEG quality, 0 for none


def sample(n: int, g: torch.Generator, device: torch.device) -> CameraNoise:
    """Draw the parameters of ``n`` images."""
    ccm, gains = camera.sample_camera(n, g, device)
    u = lambda: torch.rand(n, generator=g, device=device)  # noqa: E731
    log_a = A_LOG_RANGE[0] + (A_LOG_RANGE[1] - A_LOG_RANGE[0]) * u()
    log_b = log_a - 2.3 + 2.6 * u() - 1.3
    mhc = u() < 0.5
    sharpen = torch.where(u() < SHARPEN_FRACTION, SHARPEN_AMOUNT[0] + (SHARPEN_AMOUNT[1] - SHARPEN_AMOUNT[0]) * u(),
                          torch.zeros(n, device=device))
    use_jpeg = u() < JPEG_FRACTION
    quality = torch.where(use_jpeg, torch.round(JPEG_QUALITY[0] + (JPEG_QUALITY[1] - JPEG_QUALITY[0]) * u()),
                          torch.zeros(n, device=device))
    return CameraNoise(ccm, gains, 10.0**log_a, 10.0**log_b, mhc, sharpen, quality)


def synthesize(srgb: Tensor, p: CameraNoise, g: torch.Generator) -> tuple[Tensor, Tensor]:
    """(noisy photo, clean target) ``(n, 3, H, W)`` in [0, 1] from clean sRGB ``srgb`` (H, W
    multiples of 16) with the parameters ``p``; the sensor noise is drawn from ``g``."""
    clean_m = camera.mosaic(camera.unprocess(srgb, p.ccm, p.gains))
    var = (p.a.view(-1, 1, 1, 1) * clean_m + p.b.view(-1, 1, 1, 1)).clamp_min(0.0)
    noisy_m = clean_m + var.sqrt() * torch.randn(clean_m.shape, generator=g, device=clean_m.device)

    def develop(m: Tensor) -> Tensor:
        rgb = torch.where(p.mhc.view(-1, 1, 1, 1), camera.demosaic_mhc(m), camera.demosaic_bilinear(m))
        return camera.sharpen(camera.develop(rgb, p.ccm, p.gains), p.sharpen).clamp(0, 1)

    noisy, clean = develop(noisy_m), develop(clean_m)
    noisy = torch.round(noisy * 255.0) / 255.0
    jpg = p.quality > 0
    if bool(jpg.any()):
        idx = jpg.nonzero().view(-1)
        noisy = noisy.index_copy(0, idx, camera.jpeg(noisy[idx], p.quality[idx]))
    return noisy, clean


def camera_noise(srgb: Tensor, g: torch.Generator) -> tuple[Tensor, Tensor, CameraNoise]:
    """(noisy, clean, parameters): :func:`sample` then :func:`synthesize`."""
    p = sample(srgb.shape[0], g, srgb.device)
    noisy, clean = synthesize(srgb, p, g)
    return noisy, clean, p


def pad16(x: Tensor) -> tuple[Tensor, tuple[int, int]]:
    """``x`` reflected up to multiples of 16 (JPEG's 4:2:0 blocks), and its original size."""
    H, W = x.shape[-2:]
    ph, pw = -H % 16, -W % 16
    if ph or pw:
        x = torch.nn.functional.pad(x, (0, pw, 0, ph), mode="replicate")
    return x, (H, W)
