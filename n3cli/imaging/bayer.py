"""Bayer mosaics as arrays: any of the four 2x2 layouts aligned to RGGB (dropping at most one
leading row and column) and packed into 4 half-resolution planes, and back exactly; and linear
(Malvar-He-Cutler) demosaicing."""
from __future__ import annotations

import numpy as np


def rggb_offset(pattern: str) -> tuple[int, int]:
    """(dy, dx) at which the 2x2 pattern starting at (0, 0) reads RGGB."""
    grid = [pattern[0:2], pattern[2:4]]
    for dy in (0, 1):
        for dx in (0, 1):
            p = "".join(grid[(dy + i) % 2][(dx + j) % 2] for i in range(2) for j in range(2))
            if p == "RGGB":
                return dy, dx
    raise ValueError(f"{pattern} is not a Bayer pattern")


def pack(mosaic: np.ndarray, pattern: str) -> tuple[np.ndarray, tuple[int, int]]:
    """4 half-resolution planes R, G1, G2, B ``(4, h, w)`` and the (dy, dx) crop that aligned them."""
    dy, dx = rggb_offset(pattern)
    m = mosaic[dy:, dx:]
    h, w = m.shape[0] // 2 * 2, m.shape[1] // 2 * 2
    m = m[:h, :w]
    return np.stack([m[0::2, 0::2], m[0::2, 1::2], m[1::2, 0::2], m[1::2, 1::2]]), (dy, dx)


def unpack(planes: np.ndarray, offset: tuple[int, int], like: np.ndarray) -> np.ndarray:
    """The mosaic of ``like``'s shape with the planes put back; pixels outside the packed area
    (at most one row/column per side) keep ``like``'s values."""
    dy, dx = offset
    out = np.array(like, dtype=np.float32, copy=True)
    _, h, w = planes.shape
    sub = out[dy : dy + 2 * h, dx : dx + 2 * w]
    sub[0::2, 0::2], sub[0::2, 1::2], sub[1::2, 0::2], sub[1::2, 1::2] = planes
    return out


# Malvar, He & Cutler (ICASSP 2004): bilinear plus a gradient correction from the site's own colour;
# each kernel is divided by 8. "g": green at red and blue sites; "row" / "col": red or blue at a
# green site whose row / column holds that colour; "diag": red at blue sites and blue at red ones.
_MHC_ROW = [[0, 0, 0.5, 0, 0], [0, -1, 0, -1, 0], [-1, 4, 5, 4, -1], [0, -1, 0, -1, 0], [0, 0, 0.5, 0, 0]]
MHC_KERNELS = {
    "g": [[0, 0, -1, 0, 0], [0, 0, 2, 0, 0], [-1, 2, 4, 2, -1], [0, 0, 2, 0, 0], [0, 0, -1, 0, 0]],
    "row": _MHC_ROW,
    "col": [list(r) for r in zip(*_MHC_ROW)],
    "diag": [[0, 0, -1.5, 0, 0], [0, 2, 0, 2, 0], [-1.5, 0, 6, 0, -1.5], [0, 2, 0, 2, 0], [0, 0, -1.5, 0, 0]],
}


def demosaic_mhc(mosaic: np.ndarray, rows: tuple[int, int] | None = None) -> np.ndarray:
    """Malvar-He-Cutler demosaicing of an RGGB ``mosaic`` (H x W, any size) -> H x W x 3 float32,
    mirror-padded at the borders as :func:`n3cli.imaging.camera.demosaic_mhc` (the torch twin).
    ``rows=(r0, r1)``: only those output rows (r0 even), reading the 2 rows around them, so that a
    large mosaic can be taken in strips."""
    m = np.asarray(mosaic, dtype=np.float32)
    H, W = m.shape
    r0, r1 = rows or (0, H)
    lo, hi = max(0, r0 - 2), min(H, r1 + 2)
    part = m[lo:hi]
    # rows beyond the mosaic mirror it; rows inside come from the mosaic itself
    part = np.pad(part, ((2 - (r0 - lo), 2 - (hi - r1)), (2, 2)), mode="reflect" if min(H, W) > 2 else "edge")
    h = r1 - r0
    k = {}
    for name, kern in MHC_KERNELS.items():
        acc = np.zeros((h, W), np.float32)
        for i, row in enumerate(kern):
            for j, v in enumerate(row):
                if v:
                    acc += np.float32(v / 8.0) * part[i : i + h, j : j + W]
        k[name] = acc
    red_row = (np.arange(r0, r1) % 2 == 0)[:, None]
    even_col = (np.arange(W) % 2 == 0)[None, :]
    R, B = red_row & even_col, ~red_row & ~even_col
    G1, G2 = red_row & ~even_col, ~red_row & even_col
    own = m[r0:r1]
    red = np.where(R, own, np.where(G1, k["row"], np.where(G2, k["col"], k["diag"])))
    green = np.where(G1 | G2, own, k["g"])
    blue = np.where(B, own, np.where(G2, k["row"], np.where(G1, k["col"], k["diag"])))
    return np.stack([red, green, blue], -1)
