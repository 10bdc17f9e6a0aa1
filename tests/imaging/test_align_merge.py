"""Burst registration and merging (n3cli.imaging.align, n3cli.imaging.merge) on the shipped
astronaut photo moved by known hand shakes."""
from pathlib import Path

import cv2
import numpy as np
import pytest

from n3cli.imaging.align import Registrar, resampled_variance, warp
from n3cli.imaging.merge import Merge
from n3cli.io.images import read_image

ASTRONAUT = Path(__file__).resolve().parents[2] / "examples" / "astronaut_clean.png"


def shake(img, angle, dx, dy):
    """``img`` turned by ``angle`` degrees about its centre and shifted; the true 3x3 map from
    the original's pixel coordinates to the moved image's."""
    h, w = img.shape[:2]
    M = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    M[:, 2] += (dx, dy)
    moved = cv2.warpAffine(img, M, (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
    return moved.reshape(img.shape), np.vstack([M, [0, 0, 1]])


@pytest.fixture(scope="module")
def astronaut():
    return read_image(ASTRONAUT).pixels


@pytest.mark.parametrize("angle,dx,dy,side", [(0.0, 3.0, -2.0, 1600), (0.4, -4.5, 2.25, 1600), (-0.5, 1.5, 5.5, 1600),
                                              (0.4, -4.5, 2.25, 160)])  # 160: matched at 0.625 scale
def test_registration_finds_the_shake_to_a_sixth_of_a_pixel_through_noise(astronaut, angle, dx, dy, side):
    rng = np.random.default_rng(0)
    moved, truth = shake(astronaut, angle, dx, dy)
    noisy = lambda x: (x + rng.normal(0, 25 / 255, x.shape)).astype(np.float32)  # noqa: E731
    H, matches = Registrar(noisy(astronaut), match_side=side).register(noisy(moved))
    assert H is not None and matches >= 12
    corners = np.float64([[16, 16, 1], [240, 16, 1], [16, 240, 1], [240, 240, 1]]).T
    found, true = H @ corners, truth @ corners
    err = np.abs(found[:2] / found[2] - true[:2] / true[2]).max()
    assert err < 0.16, err  # the keypoints' homography alone: 0.45-3 px on these


def test_an_unrelated_frame_is_not_registered(astronaut):
    rng = np.random.default_rng(1)
    other = rng.random(astronaut.shape).astype(np.float32)
    H, _ = Registrar(astronaut).register(other)
    assert H is None


def test_resampled_variance_is_what_warping_white_noise_leaves():
    rng = np.random.default_rng(2)
    noise = rng.normal(0, 1, (200, 200, 1)).astype(np.float32)
    assert np.allclose(resampled_variance(np.eye(3), (8, 8)), 1.0)
    for fx, fy in [(0.5, 0.5), (0.25, 0.0), (0.3, 0.7)]:
        H = np.float64([[1, 0, 10 + fx], [0, 1, 10 + fy], [0, 0, 1]])
        out, valid, share = warp(noise, H, (200, 200))
        assert valid[:150, :150].all() and not valid[-5:, -5:].any()
        measured = out[:150, :150].var()
        assert abs(measured - share[:150, :150].mean()) < 0.03, (fx, fy, measured, share.mean())
    assert abs(resampled_variance(np.float64([[1, 0, 0.5], [0, 1, 0.5], [0, 0, 1]]), (4, 4)).mean() - 0.7227 ** 2) < 1e-3


def test_resampled_variance_read_on_a_coarse_grid_is_the_pixelwise_one(monkeypatch):
    import n3cli.imaging.align as align

    turn = np.radians(0.6)
    H = np.float64([[np.cos(turn), -np.sin(turn), 3.3], [np.sin(turn), np.cos(turn), -1.7], [1e-6, 2e-6, 1]])
    coarse = resampled_variance(H, (301, 403))
    monkeypatch.setattr(align, "STEP", 1)
    exact = resampled_variance(H, (301, 403))
    assert exact.std() > 0.05  # the phase drifts across the frame
    assert np.abs(coarse - exact).max() < 0.01


def test_still_frames_average_their_noise_and_a_moving_square_is_not_ghosted(astronaut):
    rng = np.random.default_rng(3)
    sigma, n = 0.1, 6
    frames = []
    for i in range(n):
        clean = astronaut.copy()
        clean[100:140, 20 + 30 * i : 60 + 30 * i] = 0.9  # a subject walking across
        frames.append((clean + rng.normal(0, sigma, clean.shape)).astype(np.float32))
    merge = Merge(frames[0])
    shares = [merge.add(f) for f in frames[1:]]
    merged, factor = merge.result()
    assert all(0.8 < s < 0.97 for s in shares), shares
    still = np.s_[160:250, 10:250]
    residual = (merged - astronaut)[still]
    assert abs(residual.std() - sigma / np.sqrt(n)) < 0.15 * sigma / np.sqrt(n)
    assert (np.abs(factor[still] - 1 / np.sqrt(n)) > 0.02).mean() < 0.02  # noise alone rarely rejects
    subject = np.s_[105:135, 25:45]  # where only the first frame has the subject: that frame alone
    # (the white suit behind it matches the square's grey here and there: merged there, rightly)
    assert np.abs(merged[subject] - frames[0][subject]).mean() < 0.005
    assert (factor[subject] > 0.9).mean() > 0.9
    # the square's later places hold the scene from the frames where it was not
    later = np.s_[105:135, 145:175]
    assert np.abs(merged[later] - astronaut[later]).mean() < 2 * sigma / np.sqrt(n - 2)


def test_a_textured_subject_on_a_plain_ground_is_not_averaged_away(astronaut):
    """Its local mean is the ground's: only the change's energy shows it moved."""
    scene = astronaut.copy()
    scene[90:150] = 0.5
    yy, xx = np.mgrid[0:40, 0:40]
    checker = np.where((yy // 2 + xx // 2) % 2 == 0, 0.3, 0.7)[:, :, None]
    rng = np.random.default_rng(4)
    frames = []
    for i in range(6):
        clean = scene.copy()
        clean[100:140, 20 + 30 * i : 60 + 30 * i] = checker
        frames.append((clean + rng.normal(0, 0.05, clean.shape)).astype(np.float32))
    merge = Merge(frames[0])
    for f in frames[1:]:
        merge.add(f)
    merged, factor = merge.result()
    subject = np.s_[105:135, 25:55]
    assert np.abs(merged[subject] - frames[0][subject]).mean() < 1e-3
    assert np.allclose(factor[subject], 1.0)


def test_a_subject_moving_across_a_small_frame_does_not_pull_the_registration_off(astronaut):
    """ECC aligns every pixel's brightness, the walker's too: it went 4-5 px off the scene here,
    and the keypoints' answer (under 0.6 px) must stand instead."""
    scene = np.ascontiguousarray(astronaut[16:208, 16:208])
    rng = np.random.default_rng(0)
    first = scene.copy()
    first[100:140, 20:60] = 0.9
    moved, truth = shake(scene, 0.1, 1.5, -1.0)
    moved[100:140, 50:90] = 0.9
    noisy = lambda x: (x + rng.normal(0, 25 / 255, x.shape)).astype(np.float32)  # noqa: E731
    H, _ = Registrar(noisy(first)).register(noisy(moved))
    corners = np.float64([[8, 8, 1], [184, 8, 1], [8, 184, 1], [184, 184, 1]]).T
    found, true = H @ corners, truth @ corners
    assert np.abs(found[:2] / found[2] - true[:2] / true[2]).max() < 0.8
