"""Images that span a fraction of black-to-white (12-bit data in a 16-bit file) are brightened to
white for the Gaussian-noise models, and nothing else changes."""
from pathlib import Path

import numpy as np
import pytest

from n3cli import api
from n3cli.io.images import read_image, write_image

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "astronaut_clean.png"


def _psnr(a, b, peak):
    return 10 * np.log10(peak**2 / np.mean((a.astype(np.float64) - b) ** 2))


@pytest.fixture(scope="module")
def gray():
    return api.load_denoiser(None, "gray", "cpu")


def test_twelve_bit_data_in_a_sixteen_bit_file_is_denoised_as_well_as_full_range_data(gray, tmp_path):
    clean = read_image(EXAMPLE).pixels[:160, :160].mean(2, keepdims=True)
    counts = np.rint(clean * 4095)  # a 12-bit camera's counts, stored as 16-bit values
    noisy = counts + np.random.default_rng(0).normal(0, 15 * 4095 / 255, counts.shape)
    src = tmp_path / "cell.tif"
    write_image(src, api_image(np.clip(noisy, 0, 4095) / 65535))
    out = tmp_path / "clean.tif"
    used = api.denoise_file(src, out, model=api.ModelCache("n3net-gray", "cpu"))
    assert used["stretch"] == 16.0  # reported (`--json`, the log line)
    got = read_image(out)
    assert got.dtype == np.uint16
    truth = counts / 65535
    peak = 4095 / 65535
    pixels = read_image(src).pixels
    assert _psnr(got.pixels, truth, peak) > _psnr(pixels, truth, peak) + 6  # noisy: about 24.7 dB
    plain = api.denoise(gray, pixels, stretch=False)
    assert _psnr(got.pixels, truth, peak) > _psnr(plain, truth, peak) + 1.5
    assert api.stretch_gain(gray.info, pixels, None)[0] == pytest.approx(min(1 / pixels.max(), 16.0))


def api_image(pixels):
    from n3cli.io.images import Image

    return Image(pixels.astype(np.float32), np.dtype(np.uint16))


def test_full_range_images_and_the_real_noise_model_are_left_as_they_are(gray, tmp_path):
    img = read_image(EXAMPLE).pixels[:96, :96]
    used = api.denoise_file(EXAMPLE.parent / "astronaut_noisy.png", tmp_path / "a.png", model=api.ModelCache(None, "cpu"))
    assert "stretch" not in used
    assert api.stretch_gain(gray.info, img, None) == (1.0, None)
    np.testing.assert_array_equal(api.denoise(gray, img[:, :, :1], sigma=10), api.denoise(gray, img[:, :, :1], sigma=10,
                                                                                         stretch=False))
    real = api.load_denoiser("n3net-color-real", None, "cpu")
    assert api.stretch_gain(real.info, img * 0.1, 5.0) == (1.0, 5.0)


def test_the_gain_keeps_the_noise_within_the_models_range(gray):
    dark = read_image(EXAMPLE).pixels[:96, :96, :1] * np.float32(0.05)  # would take x16 (the most)
    assert api.stretch_gain(gray.info, dark, 1.0)[0] == pytest.approx(16.0)
    top = gray.info.noise["sigma_range"][1]  # 75 for n3net-gray
    assert api.stretch_gain(gray.info, dark, 10.0)[0] == pytest.approx(top / 10.0)  # 7.5, not 16
    assert api.stretch_gain(gray.info, dark, 70.0)[0] == 1.0  # too noisy to brighten at all


def test_a_dark_image_is_enlarged_as_well_as_a_full_range_one():
    """At 1/16 of the range vdsr-sr fell below bicubic; brightened first, it keeps its lead."""
    from n3cli.imaging.resize import resize_to

    up = api.load_upscaler(None, 2, "cpu")
    hr = read_image(EXAMPLE).pixels[:128, :128] * np.float32(1 / 16)
    lr = resize_to(hr, 64, 64)
    peak = 1 / 16
    bicubic = _psnr(resize_to(lr, 128, 128), hr, peak)
    plain = _psnr(api.upscale(up, lr, 2, stretch=False), hr, peak)
    got = api.upscale(up, lr, 2)
    assert got.dtype == np.float32 and got.max() < 0.1  # the input's range, not brightened
    assert _psnr(got, hr, peak) > max(plain, bicubic) + 0.5
    full = api.upscale(up, lr * 16, 2)
    np.testing.assert_allclose(got * 16, full, atol=2e-6)  # as a full-range image
