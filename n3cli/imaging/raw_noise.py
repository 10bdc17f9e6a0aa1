"""RAW noise and synthetic raw data (FACTS §6).

Noise on linear raw values in [0, 1]: ``y = x + n``, ``n ~ N(0, a*x + b)`` (Poisson-Gaussian).
Training data comes from sRGB photos made linear by "unprocessing" (Brooks et al., CVPR 2019):
inverse tone curve, inverse gamma, a random sRGB -> camera matrix, inverse white-balance and
brightness gains, then a Bayer mosaic. Everything is NumPy and seeded by the caller's generator.
"""
from __future__ import annotations

import numpy as np

# XYZ -> camera matrices of a few real cameras (as LibRaw/rawpy report them, D65), the basis of
# the random colour transforms (Brooks et al. use the same idea)
_XYZ2CAMS = np.array([
    [[1.0234, -0.2969, -0.2266], [-0.5625, 1.6328, -0.0469], [-0.0703, 0.2188, 0.6328]],
    [[0.4913, -0.0541, -0.0202], [-0.6130, 1.3513, 0.2906], [-0.1564, 0.2151, 0.7183]],
    [[0.8380, -0.2630, -0.0639], [-0.2887, 1.0725, 0.2496], [-0.0627, 0.1427, 0.5438]],
    [[0.6596, -0.2079, -0.0562], [-0.4782, 1.3016, 0.1933], [-0.0970, 0.1581, 0.5181]],
])
_RGB2XYZ = np.array([[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750],
                     [0.0193339, 0.1191920, 0.9503041]])


# The training range of the RAW models: log10 a ~ U(A_LOG_RANGE), log10 (b/a) ~ U(B_OVER_A_LOG_RANGE).
# The paper's range was log10 a in [-4, -1] and log10 (b/a) in [-3.6, -1]. Real files fell outside it
# (issue 25, benchmarks/raw_noise_left.py): a Blackmagic Pocket 4K DNG reads a = 1.2e-5, a Kodak
# DC120 b/a = 2.2 (read noise above shot noise everywhere below white). Widened to cover both.
A_LOG_RANGE = (-5.0, -1.0)
B_OVER_A_LOG_RANGE = (-3.6, 0.6)


def sample_noise_params(rng: np.random.Generator) -> tuple[float, float]:
    """(a, b) drawn over the RAW models' training range (:data:`A_LOG_RANGE`, :data:`B_OVER_A_LOG_RANGE`)."""
    la = rng.uniform(*A_LOG_RANGE)
    lb = la + rng.uniform(*B_OVER_A_LOG_RANGE)
    return float(10**la), float(10**lb)


def add_poisson_gaussian(x: np.ndarray, a: float, b: float, rng: np.random.Generator) -> np.ndarray:
    """``x + N(0, a*x + b)`` (variance clipped at 0), float32, not clipped."""
    var = np.maximum(a * x + b, 0.0)
    return (x + np.sqrt(var) * rng.standard_normal(x.shape)).astype(np.float32)


def random_ccm(rng: np.random.Generator) -> np.ndarray:
    """A random sRGB -> camera matrix: a convex combination of real cameras' XYZ -> camera matrices
    times sRGB -> XYZ, rows normalised to sum 1."""
    w = rng.uniform(1e-8, 1e8, len(_XYZ2CAMS))
    xyz2cam = np.tensordot(w / w.sum(), _XYZ2CAMS, axes=1)
    m = xyz2cam @ _RGB2XYZ
    return m / m.sum(1, keepdims=True)


def unprocess(srgb: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """H x W x 3 sRGB in [0, 1] -> linear camera RGB in [0, 1] and the sampled metadata."""
    x = np.clip(srgb.astype(np.float64), 0.0, 1.0)
    x = 0.5 - np.sin(np.arcsin(1.0 - 2.0 * x) / 3.0)  # inverse smoothstep tone curve
    x = np.maximum(x, 1e-8) ** 2.2  # inverse gamma
    ccm = random_ccm(rng)
    x = x @ ccm.T
    gain = 1.0 / rng.normal(0.8, 0.1)
    red, blue = rng.uniform(1.9, 2.4), rng.uniform(1.5, 1.9)
    gains = np.array([1.0 / red, 1.0, 1.0 / blue]) / gain
    # fade the division out towards white so that highlights are not dimmed
    gray = x.mean(-1, keepdims=True)
    inflection = 0.9
    mask = (np.maximum(gray - inflection, 0.0) / (1.0 - inflection)) ** 2
    safe = np.maximum(mask + (1 - mask) * gains, gains)
    x = np.clip(x * safe, 0.0, 1.0)
    return x.astype(np.float32), {"ccm": ccm, "red_gain": red, "blue_gain": blue, "brightness": gain}


def mosaic_rggb(rgb: np.ndarray) -> np.ndarray:
    """H x W x 3 (even H, W) -> RGGB mosaic H x W."""
    m = np.empty(rgb.shape[:2], dtype=rgb.dtype)
    m[0::2, 0::2] = rgb[0::2, 0::2, 0]
    m[0::2, 1::2] = rgb[0::2, 1::2, 1]
    m[1::2, 0::2] = rgb[1::2, 0::2, 1]
    m[1::2, 1::2] = rgb[1::2, 1::2, 2]
    return m


def raw_noise_maps(a: float, b: float) -> tuple[float, float]:
    """The values of the two constant maps a RAW model sees after its 4 noisy planes: sqrt(a) and
    sqrt(b) (:func:`n3cli.runtime.runner.run_image`'s ``constants``).

    The authors feed a and b themselves; their square roots are standard deviations in pixel
    units (0.01-0.3 for a, 1e-4-0.1 for b over the training range), so the maps are on the
    scale of the signal and b is not drowned out by a.
    """
    return float(np.sqrt(a)), float(np.sqrt(b))


_QUANTILE = 0.1


def _block_stats(p: np.ndarray, block: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-block mean of ``p`` and variance of its Laplacian residual / 36 (noise variance where flat)."""
    # Immerkær's filter is the outer product of two second differences: applied as two passes, it
    # takes two plane-sized arrays, where the 3 x 3 windows times the filter took nine (24 MP: 410 MB)
    t = p[:, :-2] - 2.0 * p[:, 1:-1] + p[:, 2:]
    r = t[:-2] - 2.0 * t[1:-1] + t[2:]
    del t
    q = p[1:-1, 1:-1]
    h, w = r.shape[0] // block * block, r.shape[1] // block * block
    r = r[:h, :w].reshape(h // block, block, w // block, block)
    q = q[:h, :w].reshape(h // block, block, w // block, block)
    return q.mean((1, 3)).ravel(), (r.var((1, 3)) / 36.0).ravel()


MIN_READABLE_BLOCKS = 20  # fewer, and the estimator falls back to a fixed guess
_DARKEST, _BRIGHTEST = 0.002, 0.9  # block levels the fit uses: above black, below clipping


def _readable(planes: np.ndarray, block: int) -> tuple[np.ndarray, np.ndarray]:
    """Block means and residual variances of the blocks whose level the fit can use (above black,
    below clipping)."""
    xs, vs = [np.zeros(0)], [np.zeros(0)]
    for p in planes:
        if min(p.shape) < 3:  # no Laplacian fits
            continue
        x, v = _block_stats(p.astype(np.float64), block)
        xs.append(x)
        vs.append(v)
    x, v = np.concatenate(xs), np.concatenate(vs)
    ok = (x > _DARKEST) & (x < _BRIGHTEST)
    return x[ok], v[ok]


def readable_blocks(planes: np.ndarray, block: int = 8) -> int:
    """How many blocks :func:`estimate_noise_params` can read: fewer than ``MIN_READABLE_BLOCKS``
    (a black frame, a blown-out one, a tiny crop) and its (a, b) is a fixed guess, not a reading."""
    n = 0
    for p in planes:  # the same blocks as _block_stats, means only (cheap on a 24 MP file)
        q = p[1:-1, 1:-1]
        h, w = q.shape[0] // block * block, q.shape[1] // block * block
        m = q[:h, :w].reshape(h // block, block, w // block, block).mean((1, 3), dtype=np.float64)
        n += int(((m > _DARKEST) & (m < _BRIGHTEST)).sum())
    return n


def _calibration(block: int) -> float:
    """E[low quantile of block variances] / true variance, for pure white noise (fixed seed)."""
    noise = np.random.default_rng(0).standard_normal((block * 40 + 2, block * 40 + 2))
    _, v = _block_stats(noise, block)
    return float(np.quantile(v, _QUANTILE))


def estimate_noise_params(planes: np.ndarray, block: int = 8, b: float | None = None) -> tuple[float, float]:
    """(a, b) of ``var = a*x + b`` from packed Bayer planes ``(4, h, w)`` in [0, 1].

    Immerkær's Laplacian residual cancels smooth signal; per block its variance estimates the
    noise variance at the block's mean brightness. Texture only adds variance, so in each of ten
    brightness bins the low 10% quantile is taken (corrected by the same quantile on pure noise)
    and a line is fitted through the bins, weighted by their counts. A known ``b`` (the read noise,
    e.g. from the sensor's optical black) fixes the line's intercept: only ``a`` is fitted.
    """
    x, v = _readable(planes, block)
    if len(x) < MIN_READABLE_BLOCKS:
        return 1e-4, 1e-6 if b is None else b
    c = _calibration(block)
    edges = np.unique(np.quantile(x, np.linspace(0, 1, 11)))
    bx, bv, bw = [], [], []
    for lo, hi in zip(edges[:-1], edges[1:]):
        idx = (x >= lo) & (x <= hi)
        if idx.sum() >= 5:
            bx.append(np.median(x[idx]))
            bv.append(np.quantile(v[idx], _QUANTILE) / c)
            bw.append(np.sqrt(idx.sum()))
    bx, bv, bw = map(np.asarray, (bx, bv, bw))
    fa, fb = _fit_line(bx, bv, bw, b)
    # bins whose noise reaches white (mean + 2 sigma > 1) lose variance to clipping: fit without them
    keep = bx + 2 * np.sqrt(np.maximum(fa * bx + fb, 0)) < 1.0
    if keep.sum() >= (1 if b is not None else 2) and not keep.all():
        fa, fb = _fit_line(bx[keep], bv[keep], bw[keep], b)
    return fa, fb


def _fit_line(bx: np.ndarray, bv: np.ndarray, bw: np.ndarray, b: float | None) -> tuple[float, float]:
    """Weighted least-squares ``v = a*x + b`` through the bins (``b`` given: the slope alone)."""
    if b is not None:
        if len(bx) == 0:
            return 1e-4, b
        w2 = bw**2
        a = float(np.sum(w2 * bx * (bv - b)) / max(float(np.sum(w2 * bx * bx)), 1e-30))
        return max(a, 1e-6), b
    if len(bx) < 2:
        return 1e-4, float(max(np.mean(bv), 1e-8)) if len(bv) else 1e-6
    A = np.stack([bx, np.ones_like(bx)], 1) * bw[:, None]
    a, b = np.linalg.lstsq(A, bv * bw, rcond=None)[0]
    return float(max(a, 1e-6)), float(max(b, 1e-8))
