"""Noise left in real photos without a reference (n3cli.eval.flat), the camera JPEGs it is run on
(n3cli.io.camera_jpeg) and `n3 eval flat`."""
import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image
from shared_paths import RAW_SAMPLES

from n3cli import api
from n3cli.cli.main import cli
from n3cli.errors import ImageError
from n3cli.eval.flat import WINDOW, evaluate_flat, flat_windows, noise_left
from n3cli.io.camera_jpeg import camera_jpeg, parse_crop


def half_flat(seed=0, size=192, sigma=0.03):
    """Left half a flat grey wall, right half fine stripes, a black band at the top; noise everywhere."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    clean = np.full((size, size, 3), 0.5, np.float32)
    clean[:, size // 2 :] = (0.5 + 0.35 * np.sin(xx[:, size // 2 :] * 1.3))[..., None]
    clean[:48] = 0.0
    noisy = clean + rng.normal(0, sigma, clean.shape).astype(np.float32)
    return noisy, clean


def test_flat_windows_lie_on_the_flat_wall_and_read_the_noise_left():
    noisy, clean = half_flat()
    wins = flat_windows(noisy)
    assert wins and all(x + WINDOW <= 96 and y >= 48 for y, x in wins)  # not the stripes, not the black band
    assert noise_left(noisy, noisy, wins) == pytest.approx(1.0)
    assert noise_left(noisy, clean, wins) < 0.01
    assert noise_left(noisy, 0.25 + 0.5 * noisy, wins) == pytest.approx(0.5, abs=1e-4)  # std scales with the gain
    assert flat_windows(np.zeros((96, 96, 3), np.float32)) == []  # nothing away from black


def test_a_denoiser_scores_between_flat_and_untouched_and_a_blank_photo_is_left_out():
    model = api.load_denoiser("n3net-color-real", device="cpu")
    noisy, _ = half_flat(sigma=10 / 255)
    rep = evaluate_flat(model, [("wall.png", noisy), ("black.png", np.zeros((64, 64, 3), np.float32))])
    res = rep["results"][0]
    wall, black = res["per_image"]
    assert res["photos"] == 1 and res["mean_noise_left"] == wall["noise_left"]
    assert 0.0 < wall["noise_left"] < 0.3  # the shipped model takes most of sigma 10 off a flat wall
    assert wall["input_noise"] == pytest.approx(10, rel=0.15) and wall["sigma_estimated"] == pytest.approx(10, rel=0.25)
    assert black["windows"] == 0 and "noise_left" not in black


def test_crops_are_read_as_width_by_height():
    assert parse_crop("1000x800") == (1000, 800) and parse_crop(None) is None
    for bad in ("1000", "10x10", "axb", "1000x800x3"):
        with pytest.raises(ValueError):
            parse_crop(bad)


@pytest.fixture
def samples():
    if not RAW_SAMPLES.is_dir():
        pytest.skip(f"real raw files not found at {RAW_SAMPLES} (../shared beside the checkout)")
    return RAW_SAMPLES


def test_raw_files_are_developed_to_camera_jpegs_and_other_raw_files_left_out(samples):
    kdc = samples / "kodak_dc120.kdc"
    px = camera_jpeg(kdc, 92, (200, 160))
    assert px.shape == (160, 200, 3) and px.dtype == np.float32
    assert np.array_equal(px, np.rint(px * 255) / 255)  # 8-bit, as a camera saves
    assert 0.05 < px.mean() < 0.95  # developed and brightened, not a linear mosaic
    assert np.abs(camera_jpeg(kdc, 40, (200, 160)) - px).mean() > 1 / 255  # the quality is applied

    photos, skipped = api.read_photos(samples, (200, 160))
    assert [n for n, _ in photos] == ["blackmagic_pocket4k.dng", "canon_powershot_g2.crw", "kodak_dc120.kdc"]
    assert len(skipped) == 2 and all("not a Bayer mosaic" in s for s in skipped)
    with pytest.raises(ImageError, match="nonbayer_nikon_coolscan.nef: not supported"):
        api.read_photos(samples / "nonbayer_nikon_coolscan.nef")


def test_the_command_measures_photos_and_answers_bad_input_in_one_line(tmp_path, samples):
    noisy, _ = half_flat(sigma=8 / 255, size=128)
    Image.fromarray(np.rint(np.clip(noisy, 0, 1) * 255).astype(np.uint8)).save(tmp_path / "wall.png")
    res = CliRunner().invoke(cli, ["eval", "flat", "--data", str(tmp_path), "--json", "--device", "cpu",
                                   "--save", str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    rep = json.loads(res.output)
    assert rep["task"] == "flat" and rep["model"] == "n3net-color-real"
    assert 0 < rep["results"][0]["mean_noise_left"] < 0.5
    assert (tmp_path / "out" / "wall.png").is_file()

    res = CliRunner().invoke(cli, ["eval", "flat", "--data", str(tmp_path), "--crop", "big"])
    assert res.exit_code == 2 and "--crop" in res.output
    res = CliRunner().invoke(cli, ["eval", "flat", "--data", str(samples / "nonbayer_linear_canon_6d.dng")])
    assert res.exit_code != 0 and len(res.output.strip().splitlines()) == 1
    assert "nonbayer_linear_canon_6d.dng: not supported" in res.output


def test_a_raw_model_is_measured_on_the_mosaics_with_the_noise_each_file_reads(samples, tmp_path):
    from n3cli.pipelines.raw import noise_params

    kdc = samples / "kodak_dc120.kdc"
    (name, raw, noise), = api.read_mosaics(kdc, (300, 200))[0]
    full = api.read_mosaics(kdc)[0][0]
    assert raw.mosaic.shape == (200, 300) and raw.pattern == full[1].pattern  # even offsets: the CFA phase stays
    assert (noise.a, noise.b) == (full[2].a, full[2].b) == (noise_params(full[1]).a, noise_params(full[1]).b)

    rep = api.evaluate_flat_noise("n3net-raw", kdc, (400, 400), device="cpu")
    r = rep["results"][0]["per_image"][0]
    assert rep["mosaic"] and r["windows"] > 0 and 0.2 < r["noise_left"] < 0.95
    assert r["a"] == pytest.approx(noise.a) and r["noise_source"] == noise.source

    res = CliRunner().invoke(cli, ["eval", "flat", "-m", "n3net-raw", "--data", str(kdc), "--sigma", "5"])
    assert res.exit_code != 0 and "no --sigma" in res.output
    Image.fromarray(np.zeros((64, 64), np.uint8)).save(tmp_path / "a.png")
    res = CliRunner().invoke(cli, ["eval", "flat", "-m", "n3net-raw", "--data", str(tmp_path / "a.png")])
    assert res.exit_code != 0 and "a.png: not a camera raw file" in res.output
