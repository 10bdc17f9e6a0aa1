"""MATLAB-compatible bicubic resizing and the SR protocol's Y-PSNR."""
import numpy as np
import pytest

from n3cli.imaging.resize import (
    contributions,
    imresize,
    make_lr,
    modcrop,
    psnr_y,
    resize_to,
    rgb_to_y,
)


def test_weights_partition_unity_and_stay_inside_the_image():
    for n, m, s in [(10, 5, 0.5), (9, 27, 3.0), (17, 5, 1 / 3), (8, 32, 4.0), (12, 3, 0.25)]:
        src, w = contributions(n, m, s)
        assert src.shape == w.shape and src.shape[0] == m
        assert np.allclose(w.sum(1), 1.0)
        assert src.min() >= 0 and src.max() < n


def test_constant_and_linear_images():
    flat = np.full((20, 30, 3), 77.0)
    for s in (0.5, 1 / 3, 2.0, 4.0):
        assert np.allclose(imresize(flat, s), 77.0)
    # a linear ramp stays linear away from the border, sampled at the new pixel centres
    ramp = np.tile(np.arange(40, dtype=np.float64), (8, 1))
    up = imresize(ramp, 2.0)
    centres = (np.arange(80) + 0.5) / 2 - 0.5
    assert np.allclose(up[:, 4:-4], centres[4:-4])
    down = imresize(ramp, 0.5)
    assert down.shape == (4, 20)
    assert np.allclose(down[:, 4:-4], ((np.arange(20) + 0.5) * 2 - 0.5)[4:-4])


def test_output_size_is_ceil_and_y_matches_bt601():
    assert imresize(np.zeros((7, 9)), 0.5).shape == (4, 5)
    assert imresize(np.zeros((7, 9)), 3).shape == (21, 27)
    assert rgb_to_y(np.array([0.0, 0, 0])) == pytest.approx(16.0)
    assert rgb_to_y(np.array([255.0, 255, 255])) == pytest.approx(235.0)


@pytest.mark.parametrize("scale,expected", [(2, 33.66), (3, 30.39), (4, 28.42)])
def test_set5_bicubic_baseline_reproduces_the_published_numbers(datasets, scale, expected):
    """LR and bicubic images rounded to 8 bits, Y rounded to integers: MATLAB's uint8 pipeline."""
    import imageio.v3 as iio

    vals = []
    for f in sorted((datasets / "Set5").glob("*.png")):
        hr = iio.imread(f).astype(np.float64)
        hr = modcrop(np.stack([hr] * 3, -1) if hr.ndim == 2 else hr[..., :3], scale)
        up = np.clip(np.rint(imresize(make_lr(hr, scale), scale)), 0, 255)
        vals.append(psnr_y(np.rint(rgb_to_y(up)), np.rint(rgb_to_y(hr)), scale))
    assert len(vals) == 5
    assert abs(np.mean(vals) - expected) <= 0.03


@pytest.mark.parametrize("shape,height,width", [((300, 400, 3), 225, 300), ((64, 80), 96, 120), ((60, 50, 1), 120, 100)])
def test_resize_to_a_size_in_strips_equals_imresize_and_a_region_equals_its_part(shape, height, width):
    x = np.random.default_rng(0).random(shape).astype(np.float32)
    whole = imresize(x, height / shape[0])  # the ratios here are the same on both axes
    strips = resize_to(x, height, width, rows=37)
    assert strips.dtype == np.float32 and strips.shape == whole.shape
    assert np.abs(strips - whole).max() < 1e-6
    part = resize_to(x, height, width, rows=16, region=(10, 50, 7, 33))
    assert np.array_equal(part, strips[10:50, 7:33])
