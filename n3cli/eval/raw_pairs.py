"""Real-noise sRGB test pairs from single real raw files: a clean reference made from one exposure.

Each colour plane of the mosaic is cut into 3x3 blocks of same-colour photosites; the noisy
mosaic takes each block's centre photosite (real sensor noise, untouched), the clean mosaic the
mean of the 8 around it (the same centroid, independent noise of 1/sqrt(8) the level). Both small
mosaics are developed alike by n3's camera pipeline (:mod:`n3cli.imaging.camera`): MHC
demosaicing, which correlates the noise across channels and neighbours as a camera does, the
file's as-shot white balance and colour matrix, gamma and tone curve, 8 bits. Each ``push``
also develops the pair that many times brighter (an underexposed shot brightened, where real noise
is strongest), clipped alike.

What it is not: a camera's own development (no in-camera sharpening or JPEG), and the clean image
is a little softer than the noisy one (an 8-photosite mean against one photosite), which favours
smoothing slightly and alike for every method.
"""
from __future__ import annotations

from typing import Any

import numpy as np

PUSHES = (1.0, 4.0)


def split_blocks(planes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(centre, mean of the other 8) of each 3x3 block of each plane ``(4, h, w)``: two
    ``(4, h // 3, w // 3)`` arrays with the same centroid and independent noise."""
    c, h, w = planes.shape
    blocks = planes[:, : h // 3 * 3, : w // 3 * 3].reshape(c, h // 3, 3, w // 3, 3).astype(np.float64)
    centre = blocks[:, :, 1, :, 1]
    ring = (blocks.sum((2, 4)) - centre) / 8.0
    return centre.astype(np.float32), ring.astype(np.float32)


def to_mosaic(planes: np.ndarray) -> np.ndarray:
    """RGGB mosaic ``(2h, 2w)`` of 4 planes ``(4, h, w)``."""
    _, h, w = planes.shape
    m = np.empty((2 * h, 2 * w), np.float32)
    m[0::2, 0::2], m[0::2, 1::2], m[1::2, 0::2], m[1::2, 1::2] = planes
    return m


def develop_pair(noisy: np.ndarray, clean: np.ndarray, wb: list[float], xyz2cam: np.ndarray | None,
                 push: float) -> tuple[np.ndarray, np.ndarray]:
    """Both RGGB mosaics developed alike to 8-bit sRGB ``(H, W, 3)`` uint8."""
    import torch

    from ..imaging.camera import demosaic_mhc, develop
    from ..imaging.raw_noise import _RGB2XYZ

    rgb2cam = np.eye(3) if xyz2cam is None else xyz2cam @ _RGB2XYZ
    rgb2cam = rgb2cam / rgb2cam.sum(1, keepdims=True)
    gains = 1.0 / (np.asarray(wb[:3], np.float64) / wb[1])
    ccm = torch.tensor(rgb2cam, dtype=torch.float32)[None]
    g = torch.tensor(gains, dtype=torch.float32)[None]
    out = []
    for m in (noisy, clean):
        x = torch.from_numpy(np.ascontiguousarray(m * push))[None, None]
        srgb = develop(demosaic_mhc(x).clamp(0.0, 1.0), ccm, g)
        out.append((srgb[0].permute(1, 2, 0).numpy() * 255.0).round().clip(0, 255).astype(np.uint8))
    return out[0], out[1]


def raw_pairs(name: str, raw: Any, pushes: tuple[float, ...] = PUSHES) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, noisy, clean) pairs of the raw image ``raw`` (a :class:`~n3cli.io.raw.RawImage`), one
    per push, named ``<stem>_x<push>``: float32 RGB in [0, 1] on 8-bit steps, as
    :func:`n3cli.eval.protocols.evaluate_real` scores them."""
    from ..imaging.bayer import pack

    planes, _ = pack(raw.mosaic, raw.pattern)
    centre, ring = split_blocks(planes)
    stem = name.rsplit(".", 1)[0]
    out = []
    for push in pushes:
        noisy, clean = develop_pair(to_mosaic(centre), to_mosaic(ring), raw.wb, raw.color_matrix, push)
        out.append((f"{stem}_x{push:g}", noisy.astype(np.float32) / 255.0, clean.astype(np.float32) / 255.0))
    return out
