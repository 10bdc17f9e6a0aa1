"""`n3 denoise --burst` on camera raw files: hand-held Bayer frames merged on their mosaics, each
colour plane resampled from its own photosites, and the RAW model told how much noise is left."""
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from test_raw_denoise import ROOT, mosaic

from n3cli.cli.main import cli
from n3cli.eval.metrics import psnr
from n3cli.imaging.raw_noise import add_poisson_gaussian, unprocess
from n3cli.io.images import read_image
from n3cli.io.raw import RawImage, read_raw, write_dng

A, B = 1.6e-2, 8e-5  # a high ISO, where bursts are taken (at 4e-3 the model's own error leaves 0.6 dB to win)
SHAKES = [(0.0, 0.0, 0.0), (0.3, 3.0, -2.0), (-0.25, -2.5, 1.5), (0.15, 1.5, 3.0)]


def raw_burst(folder: Path, pattern: str = "GRBG", shakes=SHAKES) -> tuple[list[Path], np.ndarray]:
    """Bayer DNGs of the astronaut in linear camera RGB, the camera moved before each exposure;
    and the first frame's clean mosaic."""
    lin, _ = unprocess(read_image(ROOT / "examples" / "astronaut_clean.png").pixels, np.random.default_rng(0))
    lin = lin.astype(np.float32)
    h, w = lin.shape[:2]
    paths, first = [], None
    for i, (angle, dx, dy) in enumerate(shakes):
        M = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
        M[:, 2] += (dx, dy)
        clean = mosaic(cv2.warpAffine(lin, M, (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT), pattern)
        noisy = add_poisson_gaussian(clean, A, B, np.random.default_rng(10 + i))
        raw = RawImage(noisy, pattern, np.full((2, 2), 64.0), 4095.0, wb=[2.1, 1.0, 1.7], make="Testcam", model="N1")
        paths.append(folder / f"DSC_{i:04d}.dng")
        write_dng(paths[-1], raw)
        first = clean if first is None else first
    return paths, first


def run(*args):
    return CliRunner().invoke(cli, ["denoise", "-q", *map(str, args)])


@pytest.mark.parametrize("pattern", ["GRBG", "RGGB"])
def test_a_raw_burst_is_cleaner_than_its_first_frame_alone(tmp_path, pattern):
    frames, clean = raw_burst(tmp_path, pattern)
    res = run("--burst", *frames, "-o", tmp_path / "merged.dng", "--noise", f"{A},{B}", "--json")
    assert res.exit_code == 0, res.output
    rec = json.loads(res.stdout.strip())
    assert rec["frames"] == 4 and rec["merged"] == 4 and rec["model"] == "n3net-raw"
    assert rec["noise"]["a"] == pytest.approx(A)
    assert run(frames[0], "-o", tmp_path / "alone.dng", "--noise", f"{A},{B}").exit_code == 0
    merged, alone = read_raw(tmp_path / "merged.dng"), read_raw(tmp_path / "alone.dng")
    assert merged.pattern == pattern and merged.mosaic.shape == clean.shape
    m = np.s_[8:-8, 8:-8]
    gain = psnr(np.clip(merged.mosaic, 0, 1)[m], clean[m]) - psnr(np.clip(alone.mosaic, 0, 1)[m], clean[m])
    assert gain > 1.0, gain


def test_a_raw_burst_can_be_written_developed_and_refuses_mixed_or_mismatched_frames(tmp_path):
    frames, _ = raw_burst(tmp_path, shakes=SHAKES[:2])
    res = run("--burst", *frames, "-o", tmp_path / "merged.tif", "--noise", f"{A},{B}")
    assert res.exit_code == 0, res.output
    assert read_image(tmp_path / "merged.tif").dtype == np.uint16
    other = tmp_path / "other.dng"
    write_dng(other, RawImage(np.random.default_rng(0).random((64, 64), np.float32), "RGGB", np.zeros((2, 2)), 1023.0))
    res = run("--burst", *frames, other, "-o", tmp_path / "bad.dng")
    assert res.exit_code == 1 and f"{other}: a 64x64 RGGB mosaic" in res.stderr
    photo = tmp_path / "photo.png"
    cv2.imwrite(str(photo), np.zeros((32, 32, 3), np.uint8))
    res = run("--burst", *frames, photo, "-o", tmp_path / "bad.dng")
    assert res.exit_code == 1 and "all raw files or all photos" in res.stderr
    assert not (tmp_path / "bad.dng").exists()


def test_the_noise_factor_map_turns_with_the_mosaic_under_tta():
    """A map that halves the noise on the left half only: with the eight views, each half comes
    out as with that level everywhere (the map turned with each view, not left as it was)."""
    from n3cli.api import load_raw_denoiser
    from n3cli.pipelines.raw import NoiseParams, denoise_mosaic

    rng = np.random.default_rng(0)
    clean = mosaic(unprocess(read_image(ROOT / "examples" / "astronaut_clean.png").pixels[:96, :128],
                             rng)[0].astype(np.float32), "GRBG")
    raw = RawImage(add_poisson_gaussian(clean, A, B, rng), "GRBG", np.zeros((2, 2)), 1.0)
    model = load_raw_denoiser()
    factor = np.ones(clean.shape, np.float32)
    factor[:, :64] = 0.5
    out = denoise_mosaic(model, raw, NoiseParams(A, B, "given"), tta=True, factor=factor)
    low = denoise_mosaic(model, raw, NoiseParams(A / 4, B / 4, "given"), tta=True)
    high = denoise_mosaic(model, raw, NoiseParams(A, B, "given"), tta=True)
    left, right = np.s_[:, :32], np.s_[:, 96:]  # away from where the level changes
    gap = [np.abs(low[s] - high[s]).mean() for s in (left, right)]
    off = [np.abs(out[left] - low[left]).mean(), np.abs(out[right] - high[right]).mean()]
    assert off[0] < 0.2 * gap[0] and off[1] < 0.2 * gap[1], (off, gap)


def test_temporal_on_a_raw_file_is_said_not_to_apply_and_the_file_is_denoised(tmp_path):
    frames, _ = raw_burst(tmp_path, shakes=SHAKES[:1])
    res = run(frames[0], "-o", tmp_path / "out.dng", "--temporal", "1")
    assert res.exit_code == 0 and "not a time series" in res.stderr
    assert (tmp_path / "out.dng").is_file()
