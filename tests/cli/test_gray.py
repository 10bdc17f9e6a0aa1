"""Gray photos: the default model follows the photo's noise level, weak or strong."""

import numpy as np
from click.testing import CliRunner
from PIL import Image as PILImage
from shared_paths import REPO

from n3cli.cli.main import cli
from n3cli.eval.metrics import psnr
from n3cli.io.images import read_image

CLEAN = read_image(REPO / "examples" / "astronaut_clean.png").pixels[:160, 48:208, :3].mean(axis=2)


def test_a_gray_photo_comes_out_cleaner_than_it_went_in_at_weak_and_strong_noise(tmp_path):
    """The fixed-sigma gray model left sigma-5 photos worse than it found them; the default must not."""
    clean8 = np.rint(CLEAN * 255) / 255
    for sigma in (5, 15, 50):
        noisy = np.rint(np.clip(CLEAN + np.random.default_rng(sigma).normal(0, sigma / 255, CLEAN.shape), 0, 1) * 255)
        src, dst = tmp_path / f"g{sigma}.png", tmp_path / f"o{sigma}.png"
        PILImage.fromarray(noisy.astype(np.uint8)).save(src)
        res = CliRunner().invoke(cli, ["denoise", str(src), "-o", str(dst)])
        assert res.exit_code == 0 and "with n3net-gray (sigma" in res.output, res.output
        before, after = psnr(noisy / 255, clean8), psnr(read_image(dst).pixels[:, :, 0], clean8)
        assert after > before + {5: 1.0, 15: 4.0, 50: 8.0}[sigma], (sigma, before, after)


def test_sigma_steers_the_gray_model(tmp_path):
    noisy = np.rint(np.clip(CLEAN + np.random.default_rng(0).normal(0, 15 / 255, CLEAN.shape), 0, 1) * 255)
    src = tmp_path / "g.png"
    PILImage.fromarray(noisy.astype(np.uint8)).save(src)
    change = []
    for s in (5, 15, 40):
        dst = tmp_path / f"o{s}.png"
        res = CliRunner().invoke(cli, ["denoise", str(src), "-o", str(dst), "--sigma", str(s)])
        assert res.exit_code == 0 and f"(sigma {s}.0)" in res.output, res.output
        change.append(float(np.abs(read_image(dst).pixels[:, :, 0] - noisy / 255).mean()))
    assert change[0] < change[1] < change[2], change  # a larger sigma smooths more
