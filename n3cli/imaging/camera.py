"""A camera's image pipeline in torch, batched ``(n, C, H, W)`` and on any device: sRGB taken back
to the sensor ("unprocessing", Brooks et al., CVPR 2019) and developed again (demosaicing, white
balance, colour matrix, gamma and tone curve, sharpening, JPEG).

The random draws come from a caller's ``torch.Generator`` in a fixed order, so a batch is a pure
function of the generator's seed. :mod:`.raw_noise` is the NumPy twin of the unprocessing used
by the raw file tools.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from .bayer import MHC_KERNELS


def _camera_basis(device: torch.device) -> tuple[Tensor, Tensor]:
    from .raw_noise import _RGB2XYZ, _XYZ2CAMS

    return (torch.tensor(_XYZ2CAMS, dtype=torch.float32, device=device),
            torch.tensor(_RGB2XYZ, dtype=torch.float32, device=device))


def sample_camera(n: int, g: torch.Generator, device: torch.device) -> tuple[Tensor, Tensor]:
    """A random sRGB -> camera matrix ``(n, 3, 3)`` (rows summing to 1) and the inverse
    white-balance and brightness gains ``(n, 3)`` of ``n`` cameras (Brooks et al.'s ranges)."""
    u = lambda *shape: torch.rand(shape, generator=g, device=device)  # noqa: E731
    xyz2cams, rgb2xyz = _camera_basis(device)
    w = 1e-8 + (1e8 - 1e-8) * u(n, len(xyz2cams))
    ccm = torch.einsum("nc,cij->nij", w / w.sum(1, keepdim=True), xyz2cams) @ rgb2xyz
    ccm = ccm / ccm.sum(2, keepdim=True)
    brightness = 0.8 + 0.1 * torch.randn(n, generator=g, device=device)
    red, blue = 1.9 + 0.5 * u(n), 1.5 + 0.4 * u(n)
    gains = torch.stack([1.0 / red, torch.ones_like(red), 1.0 / blue], 1) * brightness.view(-1, 1)
    return ccm, gains


def unprocess(srgb: Tensor, ccm: Tensor, gains: Tensor) -> Tensor:
    """sRGB ``(n, 3, H, W)`` in [0, 1] -> linear camera RGB in [0, 1]: inverse tone curve, inverse
    gamma, the camera matrix, and the inverse gains (faded out towards white, so that highlights
    are not dimmed)."""
    x = srgb.clamp(0.0, 1.0)
    x = 0.5 - torch.sin(torch.asin(1.0 - 2.0 * x) / 3.0)  # inverse smoothstep tone curve
    x = x.clamp_min(1e-8) ** 2.2
    x = torch.einsum("nij,njhw->nihw", ccm, x)
    g = gains.view(-1, 3, 1, 1)
    gray = x.mean(1, keepdim=True)
    mask = ((gray - 0.9).clamp_min(0.0) / 0.1) ** 2
    return (x * torch.maximum(mask + (1 - mask) * g, g)).clamp(0.0, 1.0)


def develop(cam: Tensor, ccm: Tensor, gains: Tensor) -> Tensor:
    """Linear camera RGB -> sRGB in [0, 1], the inverse of :func:`unprocess` (up to clipping):
    white balance, camera -> sRGB matrix, clip at white, gamma, smoothstep tone curve."""
    x = cam / gains.view(-1, 3, 1, 1)
    x = torch.einsum("nij,njhw->nihw", torch.linalg.inv(ccm), x).clamp(0.0, 1.0)
    x = x.clamp_min(1e-8) ** (1.0 / 2.2)
    return (3.0 * x * x - 2.0 * x * x * x).clamp(0.0, 1.0)


def mosaic(rgb: Tensor) -> Tensor:
    """RGGB Bayer mosaic ``(n, 1, H, W)`` of ``(n, 3, H, W)`` (even H, W)."""
    m = rgb[:, 1:2].clone()
    m[:, :, 0::2, 0::2] = rgb[:, 0:1, 0::2, 0::2]
    m[:, :, 1::2, 1::2] = rgb[:, 2:3, 1::2, 1::2]
    return m


def _sites(shape: tuple[int, ...], device: torch.device) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Masks ``(1, 1, H, W)`` of the R, G-in-red-rows, G-in-blue-rows and B sites of RGGB."""
    H, W = shape[-2:]
    r = (torch.arange(H, device=device) % 2).view(-1, 1)
    c = (torch.arange(W, device=device) % 2).view(1, -1)
    return tuple(((r == i) & (c == j)).view(1, 1, H, W).float() for i, j in ((0, 0), (0, 1), (1, 0), (1, 1)))


def _conv(m: Tensor, k: list[list[float]]) -> Tensor:
    kt = torch.tensor(k, dtype=m.dtype, device=m.device)
    p = kt.shape[-1] // 2
    return F.conv2d(F.pad(m, (p, p, p, p), mode="reflect"), kt.view(1, 1, *kt.shape))


def demosaic_bilinear(m: Tensor) -> Tensor:
    """Bilinear demosaicing of an RGGB mosaic ``(n, 1, H, W)`` -> ``(n, 3, H, W)``."""
    R, G1, G2, B = _sites(m.shape, m.device)
    g = _conv(m * (G1 + G2), [[0, 0.25, 0], [0.25, 1, 0.25], [0, 0.25, 0]])
    rb = [[0.25, 0.5, 0.25], [0.5, 1, 0.5], [0.25, 0.5, 0.25]]
    return torch.cat([_conv(m * R, rb), g, _conv(m * B, rb)], 1)


def demosaic_mhc(m: Tensor) -> Tensor:
    """Malvar-He-Cutler demosaicing (gradient-corrected linear, 5x5) of an RGGB mosaic; the
    NumPy twin is :func:`n3cli.imaging.bayer.demosaic_mhc`."""
    R, G1, G2, B = _sites(m.shape, m.device)
    k = {name: _conv(m, [[v / 8.0 for v in row] for row in kern]) for name, kern in MHC_KERNELS.items()}
    red = m * R + k["row"] * G1 + k["col"] * G2 + k["diag"] * B
    green = m * (G1 + G2) + k["g"] * (R + B)
    blue = m * B + k["row"] * G2 + k["col"] * G1 + k["diag"] * R
    return torch.cat([red, green, blue], 1)


def gaussian_blur(x: Tensor, sigma: float = 1.0) -> Tensor:
    """Separable Gaussian blur per channel (reflected borders)."""
    r = max(1, int(math.ceil(3 * sigma)))
    t = torch.arange(-r, r + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = k / k.sum()
    C = x.shape[1]
    y = F.conv2d(F.pad(x, (r, r, 0, 0), mode="reflect"), k.view(1, 1, 1, -1).expand(C, 1, 1, -1), groups=C)
    return F.conv2d(F.pad(y, (0, 0, r, r), mode="reflect"), k.view(1, 1, -1, 1).expand(C, 1, -1, 1), groups=C)


def sharpen(x: Tensor, amount: Tensor, sigma: float = 1.0) -> Tensor:
    """Unsharp masking, ``x + amount * (x - blur(x))`` with ``amount`` per image ``(n,)``."""
    return x + amount.view(-1, 1, 1, 1) * (x - gaussian_blur(x, sigma))


# -- JPEG (ITU-T T.81 / JFIF): YCbCr, 4:2:0 chroma, 8x8 DCT quantised with the Annex K tables --------
_LUMA_Q = [16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
           14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
           49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99]
_CHROMA_Q = [17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99, 24, 26, 56, 99, 99, 99, 99, 99,
             47, 66, 99, 99, 99, 99, 99, 99] + [99] * 32
_RGB2YCC = [[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]]


def quant_tables(quality: Tensor) -> tuple[Tensor, Tensor]:
    """The luma and chroma quantisation tables ``(n, 8, 8)`` at each JPEG quality 1-100 (the IJG
    scaling that libjpeg and Pillow use)."""
    q = quality.clamp(1, 100).view(-1, 1, 1)
    scale = torch.where(q < 50, torch.floor(5000.0 / q), 200.0 - 2.0 * q)
    out = []
    for base in (_LUMA_Q, _CHROMA_Q):
        t = torch.tensor(base, dtype=torch.float32, device=quality.device).view(1, 8, 8)
        out.append(torch.floor((t * scale + 50.0) / 100.0).clamp(1, 255))
    return out[0], out[1]


def _dct_matrix(device: torch.device) -> Tensor:
    k = torch.arange(8, dtype=torch.float64, device=device).view(-1, 1)
    i = torch.arange(8, dtype=torch.float64, device=device).view(1, -1)
    d = torch.cos((2 * i + 1) * k * math.pi / 16) * math.sqrt(2 / 8)
    d[0] /= math.sqrt(2)
    return d.float()


def _quantise(plane: Tensor, table: Tensor) -> Tensor:
    """Each 8x8 block of ``plane`` ``(n, H, W)`` (0-255, H and W multiples of 8) through the DCT,
    quantised with ``table`` ``(n, 8, 8)``, and back."""
    n, H, W = plane.shape
    d = _dct_matrix(plane.device)
    b = (plane - 128.0).reshape(n, H // 8, 8, W // 8, 8).permute(0, 1, 3, 2, 4)
    c = d @ b @ d.T
    t = table.view(n, 1, 1, 8, 8)
    c = torch.round(c / t) * t
    return (d.T @ c @ d).permute(0, 1, 3, 2, 4).reshape(n, H, W) + 128.0


def jpeg(x: Tensor, quality: Tensor) -> Tensor:
    """``x`` ``(n, 3, H, W)`` in [0, 1] (H, W multiples of 16) through baseline JPEG at ``quality``
    ``(n,)`` with 4:2:0 chroma, as Pillow writes and libjpeg reads it (within rounding of the
    integer DCT); 8-bit values as floats in [0, 1]."""
    n, _, H, W = x.shape
    if H % 16 or W % 16:
        raise ValueError(f"JPEG simulation needs sizes that are multiples of 16, got {H}x{W}")
    m = torch.tensor(_RGB2YCC, dtype=x.dtype, device=x.device)
    ycc = torch.einsum("ij,njhw->nihw", m, torch.round(x.clamp(0, 1) * 255.0))
    ycc[:, 1:] += 128.0
    lq, cq = quant_tables(quality)
    y = _quantise(ycc[:, 0], lq)
    chroma = F.avg_pool2d(ycc[:, 1:], 2)
    chroma = torch.stack([_quantise(chroma[:, i], cq) for i in range(2)], 1)
    chroma = F.interpolate(chroma, scale_factor=2, mode="bilinear", align_corners=False)  # libjpeg's fancy upsampling
    ycc = torch.cat([y[:, None], chroma - 128.0], 1)
    rgb = torch.einsum("ij,njhw->nihw", torch.linalg.inv(m), ycc)
    return torch.round(rgb).clamp(0, 255) / 255.0
