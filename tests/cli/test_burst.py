"""`n3 denoise --burst`: photos of one scene merged and denoised into one, end to end, with the
rules every output obeys."""
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import tifffile
from click.testing import CliRunner
from PIL import Image as PILImage

from n3cli.cli.main import cli
from n3cli.eval.metrics import psnr
from n3cli.io.images import read_image

ASTRONAUT = Path(__file__).resolve().parents[2] / "examples" / "astronaut_clean.png"
SHAKES = [(0.0, 0.0, 0.0), (0.3, 2.5, -1.5), (-0.4, -3.0, 2.0), (0.2, 1.0, 3.5)]


def run(*args):
    return CliRunner().invoke(cli, ["denoise", "-q", *map(str, args)])


def burst(folder: Path, sigma: float = 25, shakes=SHAKES) -> tuple[list[Path], np.ndarray]:
    """The astronaut shaken by hand, with noise, as 8-bit PNGs; and the first frame's clean image."""
    clean = read_image(ASTRONAUT).pixels
    h, w = clean.shape[:2]
    rng = np.random.default_rng(0)
    paths = []
    for i, (angle, dx, dy) in enumerate(shakes):
        M = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
        M[:, 2] += (dx, dy)
        moved = cv2.warpAffine(clean, M, (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
        noisy = np.clip(moved + rng.normal(0, sigma / 255, moved.shape), 0, 1)
        paths.append(folder / f"IMG_{i:02d}.png")
        PILImage.fromarray(np.rint(noisy * 255).astype(np.uint8)).save(paths[-1])
    return paths, clean


def error_line(res) -> str:
    lines = [line for line in res.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in res.output, res.output
    return lines[0]


def test_a_burst_comes_out_cleaner_than_its_first_frame_denoised_alone(tmp_path):
    frames, clean = burst(tmp_path)
    res = run("--burst", tmp_path / "IMG_*.png", "-o", tmp_path / "merged.png", "--json")
    assert res.exit_code == 0, res.output
    rec = json.loads(res.stdout.strip())
    assert rec["status"] == "written" and rec["frames"] == 4 and rec["merged"] == 4
    assert rec["sigma_merged"] < 0.6 * rec["sigma"]
    assert [r["input"] for r in rec["frame_records"]] == [str(f) for f in frames[1:]]
    assert run(frames[0], "-o", tmp_path / "alone.png").exit_code == 0
    m = (slice(8, -8), slice(8, -8))  # the shake moves the scene past the edges
    merged, alone = read_image(tmp_path / "merged.png").pixels, read_image(tmp_path / "alone.png").pixels
    assert merged.shape == alone.shape == clean.shape
    assert psnr(merged[m], clean[m]) > psnr(alone[m], clean[m]) + 1.0
    assert "4 of 4 frames merged" in res.stderr


def test_a_frame_of_another_scene_is_left_out_and_said(tmp_path):
    frames, _ = burst(tmp_path, shakes=SHAKES[:3])
    stranger = tmp_path / "IMG_99.png"
    PILImage.fromarray(np.random.default_rng(5).integers(0, 256, (256, 256, 3), dtype=np.uint8)).save(stranger)
    res = run("--burst", *frames, stranger, "-o", tmp_path / "out.png", "--json")
    assert res.exit_code == 0, res.output
    rec = json.loads(res.stdout.strip())
    assert rec["merged"] == 3 and rec["frames"] == 4
    assert f"note: {stranger} cannot be registered" in res.stderr


def test_a_tiff_time_series_is_a_burst(tmp_path):
    frames, clean = burst(tmp_path, shakes=[(0, 0, 0)] * 4)  # a still camera: frames differ by noise only
    stack = np.stack([np.asarray(PILImage.open(f)) for f in frames])
    tifffile.imwrite(tmp_path / "series.tif", stack, photometric="rgb", metadata={"axes": "TYXS"})
    res = run("--burst", tmp_path / "series.tif", "-o", tmp_path / "out.tif", "--json")
    assert res.exit_code == 0, res.output
    rec = json.loads(res.stdout.strip())
    assert rec["frames"] == 4 and rec["merged"] == 4
    assert [r["input"] for r in rec["frame_records"]] == [f"{tmp_path / 'series.tif'} frame {i}" for i in (2, 3, 4)]
    out = read_image(tmp_path / "out.tif")
    assert out.pixels.shape == clean.shape and out.dtype == np.uint8


def test_bad_bursts_fail_in_one_line_and_write_nothing(tmp_path):
    frames, _ = burst(tmp_path, shakes=SHAKES[:2])
    out = tmp_path / "out.png"
    small = tmp_path / "small.png"
    PILImage.fromarray(np.zeros((100, 120, 3), np.uint8)).save(small)
    res = run("--burst", *frames, small, "-o", out)
    assert res.exit_code == 1 and f"{small}: 120x100 colour, the first frame ({frames[0]}) 256x256 colour" in error_line(res)
    res = run("--burst", frames[0], "-o", out)
    assert res.exit_code == 1 and "needs two photos or more" in error_line(res)
    res = run("--burst", *frames, "-o", frames[1])
    assert res.exit_code == 1 and "overwrite an input" in error_line(res)
    (tmp_path / "shot.dng").write_bytes(b"II*\0")
    res = run("--burst", *frames, tmp_path / "shot.dng", "-o", out)
    assert res.exit_code == 1 and "all raw files or all photos" in error_line(res)
    for usage in (["-o", tmp_path], [], ["-o", out, "--print-noise"]):
        res = run("--burst", *frames, *usage)
        assert res.exit_code == 2 and "--burst" in error_line(res)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["IMG_00.png", "IMG_01.png", "small.png", "shot.dng"])


def test_an_existing_result_is_kept_unless_overwrite(tmp_path):
    frames, _ = burst(tmp_path, shakes=SHAKES[:2])
    out = tmp_path / "out.png"
    out.write_bytes(b"mine")
    res = run("--burst", *frames, "-o", out)
    assert res.exit_code == 0 and "skip" in res.stderr and out.read_bytes() == b"mine"
    res = run("--burst", *frames, "-o", out, "--overwrite", "--suffix", "_x")
    assert res.exit_code == 0, res.output
    assert read_image(out).pixels.shape == (256, 256, 3)


@pytest.mark.parametrize("suffix", ["_merged"])
def test_suffix_writes_beside_the_first_frame(tmp_path, suffix):
    frames, _ = burst(tmp_path, shakes=SHAKES[:2])
    res = run("--burst", *frames, "--suffix", suffix)
    assert res.exit_code == 0, res.output
    assert (tmp_path / f"IMG_00{suffix}.png").is_file()


def series(path: Path, frames: int = 3) -> np.ndarray:
    """A time series of the astronaut drifting by 1.5 px a frame, a grey square walking across,
    noise sigma 25, as an RGB TYXS TIFF; returns the clean frames."""
    clean = np.ascontiguousarray(read_image(ASTRONAUT).pixels[16:208, 16:208])
    h, w = clean.shape[:2]
    rng = np.random.default_rng(0)
    cleans, noisy = [], []
    for t in range(frames):
        M = cv2.getRotationMatrix2D((w / 2, h / 2), 0.1 * t, 1.0)
        M[:, 2] += (1.5 * t, -t)
        c = cv2.warpAffine(clean, M, (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
        c[100:140, 20 + 30 * t : 60 + 30 * t] = 0.9
        cleans.append(c)
        noisy.append(np.clip(c + rng.normal(0, 25 / 255, c.shape), 0, 1))
    tifffile.imwrite(path, np.rint(np.stack(noisy) * 255).astype(np.uint8), photometric="rgb",
                     metadata={"axes": "TYXS"})
    return np.stack(cleans)


def test_temporal_denoises_each_frame_of_a_series_with_its_neighbours(tmp_path):
    clean = series(tmp_path / "series.tif")
    res = run(tmp_path / "series.tif", "-o", tmp_path / "temporal.tif", "--temporal", "1", "--json")
    assert res.exit_code == 0, res.output
    rec = json.loads(res.stdout.strip())
    assert rec["frames"] == 3 and rec["frame_merged"] == [2, 3, 2] and len(rec["frame_sigmas"]) == 3
    assert run(tmp_path / "series.tif", "-o", tmp_path / "plain.tif").exit_code == 0
    temporal, plain = tifffile.imread(tmp_path / "temporal.tif"), tifffile.imread(tmp_path / "plain.tif")
    assert temporal.shape == plain.shape == (3, 192, 192, 3) and temporal.dtype == np.uint8
    m = (slice(8, -8), slice(8, -8))
    gains = [psnr(temporal[t][m] / 255.0, clean[t][m]) - psnr(plain[t][m] / 255.0, clean[t][m]) for t in range(3)]
    assert min(gains) > 0.2 and gains[1] > 0.8, gains


def test_temporal_says_where_it_does_not_apply(tmp_path):
    frames, _ = burst(tmp_path, shakes=SHAKES[:1])
    res = run(frames[0], "-o", tmp_path / "one.png", "--temporal", "1")
    assert res.exit_code == 0 and "not a time series" in res.stderr
    tifffile.imwrite(tmp_path / "channels.tif", (np.arange(3)[:, None, None] * 80 + np.zeros((3, 32, 32))).astype(np.uint8),
                     imagej=True, metadata={"axes": "CYX"})
    res = run(tmp_path / "channels.tif", "-o", tmp_path / "out.tif", "--temporal", "1")
    assert res.exit_code == 1 and "--temporal takes a time series" in error_line(res)
    assert not (tmp_path / "out.tif").exists()
    res = run(*frames, "--burst", "-o", tmp_path / "b.png", "--temporal", "1")
    assert res.exit_code == 2
