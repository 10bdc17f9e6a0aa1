"""The noise-level estimator on generated noisy images."""
import numpy as np
import pytest

from n3cli.imaging.estimate import estimate_sigma


def textured_scene(h=192, w=192, c=3, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    chans = []
    for _ in range(c):
        f = rng.uniform(3, 12, 4)
        chans.append(0.5 + 0.2 * np.sin(f[0] * xx + f[1] * yy) + 0.15 * np.sign(np.sin(f[2] * xx)) * np.cos(f[3] * yy))
    img = np.stack(chans, -1)
    img[h // 3 : h // 2, w // 4 : w // 2] = 0.8  # a flat patch and hard edges
    return img.astype(np.float32)


@pytest.mark.parametrize("sigma", [15, 50])
@pytest.mark.parametrize("c", [1, 3])
def test_estimate_within_ten_percent(sigma, c):
    clean = textured_scene(c=c)
    noisy = clean + np.random.default_rng(1).normal(0, sigma / 255, clean.shape).astype(np.float32)
    est = estimate_sigma(noisy)
    assert abs(est - sigma) <= 0.1 * sigma, est


def test_clean_image_reads_near_zero_and_tiny_image_is_refused():
    assert estimate_sigma(textured_scene(c=1)) < 2.0
    with pytest.raises(ValueError):
        estimate_sigma(np.zeros((4, 4, 1), np.float32))


def test_estimate_memory_does_not_grow_with_the_image():
    """Only the sampled patches are copied: a 12 MP colour photo took 5 GB (every 7x7 patch in
    float64) before. Here a 1500 x 1500 image, whose every patch would need 880 MB."""
    import tracemalloc

    img = np.random.default_rng(0).normal(0.5, 0.05, (1500, 1500, 1)).astype(np.float32)
    tracemalloc.start()
    try:
        est = estimate_sigma(img)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert abs(est - 0.05 * 255) < 0.5
    assert peak < 120e6, f"estimate_sigma peaked at {peak / 1e6:.0f} MB"
