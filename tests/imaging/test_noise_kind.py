"""The noise-kind reading that `--noise auto` picks a colour photo's model by: white Gaussian noise
against noise correlated between neighbours or channels, as a camera's is."""
import numpy as np
import pytest
from shared_paths import REPO

from n3cli.eval.protocols import camera_pairs
from n3cli.imaging.noise_kind import (
    WHITE_CHANNEL_CORRELATION,
    WHITE_STEP_RATIO,
    noise_kind,
)
from n3cli.io.images import read_image

CLEAN = read_image(REPO / "examples" / "astronaut_clean.png").pixels[:, :, :3]


def blur3(n):
    """Each pixel the mean of its 3x3 neighbourhood: noise correlated between neighbours."""
    p = np.pad(n, ((1, 1), (1, 1), (0, 0)), mode="reflect")
    return sum(p[y : y + n.shape[0], x : x + n.shape[1]] for y in range(3) for x in range(3)) / 9.0


@pytest.mark.parametrize("sigma", [10, 25, 50])
def test_white_gaussian_noise_reads_white(sigma):
    noisy = CLEAN + np.random.default_rng(sigma).normal(0, sigma / 255, CLEAN.shape)
    k = noise_kind(noisy)
    assert k.kind == "gaussian", k.reason
    assert k.step_ratio == pytest.approx(1.0, abs=0.15) and k.channel_correlation < 0.2
    assert k.windows >= 4 and "white noise" in k.reason


def test_noise_correlated_between_neighbours_or_channels_reads_as_a_camera_s():
    rng = np.random.default_rng(0)
    spread = CLEAN + blur3(rng.normal(0, 30 / 255, CLEAN.shape)) * 3  # 3x: as strong as sigma 30 again
    k = noise_kind(spread)
    assert k.kind == "real" and k.step_ratio > WHITE_STEP_RATIO, k.reason
    shared = CLEAN + rng.normal(0, 20 / 255, CLEAN.shape[:2] + (1,))  # the same noise in every channel
    k = noise_kind(shared)
    assert k.kind == "real" and k.channel_correlation > WHITE_CHANNEL_CORRELATION, k.reason
    assert k.step_ratio == pytest.approx(1.0, abs=0.15)  # white in space: the channels alone decide


def test_the_camera_noise_synthesis_reads_as_a_camera_s():
    (_, noisy, _), = camera_pairs([("astronaut", CLEAN)], seed=3)
    k = noise_kind(noisy)
    assert k.kind == "real" and "camera noise" in k.reason


def test_a_gray_image_is_judged_by_its_neighbours_alone():
    rng = np.random.default_rng(1)
    gray = CLEAN.mean(2, keepdims=True)
    assert noise_kind(gray + rng.normal(0, 20 / 255, gray.shape)).kind == "gaussian"
    assert noise_kind((gray + blur3(rng.normal(0, 60 / 255, gray.shape)))[:, :, 0]).kind == "real"


def test_a_photo_too_small_or_too_clean_to_measure_reads_as_the_default_kind():
    k = noise_kind(np.random.default_rng(0).random((10, 10, 3)))
    assert (k.kind, k.windows, k.step_ratio) == ("gaussian", 0, None) and "too small" in k.reason
    flat = np.full((64, 64, 3), 0.5)
    assert noise_kind(flat).windows == 0
