"""--strength and --chroma-strength: the luminance and colour parts of a denoiser's change kept apart."""
import numpy as np

from n3cli.imaging.color import LUMA
from n3cli.imaging.strength import blend

RNG = np.random.default_rng(0)
NOISY = RNG.uniform(0.2, 0.8, (16, 16, 3)).astype(np.float32)
CLEAN = (NOISY + RNG.normal(0, 0.05, NOISY.shape)).astype(np.float32)


def luma(x):
    return x @ np.asarray(LUMA, np.float32)


def test_one_strength_is_the_plain_blend_and_its_ends_give_clean_and_noisy():
    np.testing.assert_array_equal(blend(NOISY, CLEAN, 1.0), CLEAN)
    np.testing.assert_array_equal(blend(NOISY, CLEAN, 0.0), NOISY)
    np.testing.assert_allclose(blend(NOISY, CLEAN, 0.3), NOISY + 0.3 * (CLEAN - NOISY), atol=1e-6)
    np.testing.assert_allclose(blend(NOISY, CLEAN, 0.3, 0.3), blend(NOISY, CLEAN, 0.3), atol=1e-6)
    np.testing.assert_allclose(blend(NOISY, CLEAN, 1.0, 1.0), CLEAN, atol=1e-6)
    np.testing.assert_allclose(blend(NOISY, CLEAN, 0.0, 0.0), NOISY, atol=1e-6)


def test_luminance_and_colour_parts_are_kept_by_their_own_strengths():
    d = CLEAN - NOISY
    out = blend(NOISY, CLEAN, 0.25, 0.9)
    # the luma of the change is kept by the luminance strength...
    np.testing.assert_allclose(luma(out - NOISY), 0.25 * luma(d), atol=1e-6)
    # ...and what is left of it, the colour part, by the chroma strength
    chroma = lambda x: x - luma(x)[..., None]  # noqa: E731
    np.testing.assert_allclose(chroma(out - NOISY), 0.9 * chroma(d), atol=1e-6)
    # strength 0, chroma 1: the luminance is the input's, the colour the denoised result's
    keep_grain = blend(NOISY, CLEAN, 0.0, 1.0)
    np.testing.assert_allclose(luma(keep_grain), luma(NOISY), atol=1e-6)
    np.testing.assert_allclose(chroma(keep_grain), chroma(CLEAN), atol=1e-6)


def test_a_gray_change_never_shifts_the_hue():
    gray = NOISY + np.float32(0.1)
    out = blend(NOISY, gray, 0.5, 0.0)  # all of a gray change is luminance: kept by 0.5
    np.testing.assert_allclose(out - NOISY, 0.05, atol=1e-6)


def test_gray_images_take_the_luminance_strength_alone():
    g, c = NOISY[..., :1], CLEAN[..., :1]
    np.testing.assert_allclose(blend(g, c, 0.4, 1.0), g + 0.4 * (c - g), atol=1e-6)
