"""`n3 upscale --burst`: photos of one scene enlarged into one, end to end, with the rules every
output obeys."""
import json
from pathlib import Path

import cv2
import numpy as np
from click.testing import CliRunner
from PIL import Image as PILImage
from test_burst import ASTRONAUT, error_line

from n3cli.cli.main import cli
from n3cli.eval.metrics import psnr
from n3cli.imaging.resize import imresize
from n3cli.io.images import read_image

SHAKES = [(0.0, 0.0, 0.0), (0.3, 2.5, -1.5), (-0.4, -3.0, 2.0), (0.2, 1.0, 3.5)]


def run(*args):
    return CliRunner().invoke(cli, ["upscale", "-q", *map(str, args)])


def small_burst(folder: Path) -> tuple[list[Path], np.ndarray]:
    """The astronaut shaken by hand (large pixels), each frame shrunk to half as the SR protocol
    shrinks, as 8-bit PNGs; and the large image the first frame came from."""
    hr = read_image(ASTRONAUT).pixels[:192, :192].astype(np.float32)
    paths = []
    for i, (angle, dx, dy) in enumerate(SHAKES):
        M = cv2.getRotationMatrix2D((96, 96), angle, 1.0)
        M[:, 2] += (dx, dy)
        moved = cv2.warpAffine(hr, M, (192, 192), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
        small = np.clip(imresize(moved.astype(np.float64), 0.5), 0, 1)
        paths.append(folder / f"IMG_{i:02d}.png")
        PILImage.fromarray(np.rint(small * 255).astype(np.uint8)).save(paths[-1])
    return paths, hr


def test_a_burst_enlarges_sharper_than_its_first_frame_alone(tmp_path):
    frames, hr = small_burst(tmp_path)
    res = run("--burst", tmp_path / "IMG_*.png", "-o", tmp_path / "big.png", "-s", 2, "--json")
    assert res.exit_code == 0, res.output
    rec = json.loads(res.stdout.strip())
    assert rec["status"] == "written" and rec["frames"] == 4 and rec["merged"] == 4 and rec["scale"] == 2
    assert "(x2, 4 of 4 frames)" in res.stderr
    assert run(frames[0], "-o", tmp_path / "alone.png", "-s", 2).exit_code == 0
    big, alone = read_image(tmp_path / "big.png").pixels, read_image(tmp_path / "alone.png").pixels
    assert big.shape == alone.shape == hr.shape
    m = (slice(12, -12), slice(12, -12))  # the shake moves the scene past the edges
    assert psnr(big[m], hr[m]) > psnr(alone[m], hr[m]) + 1.0


def test_bad_bursts_fail_in_one_line_and_write_nothing(tmp_path):
    frames, _ = small_burst(tmp_path)
    out = tmp_path / "big.png"
    raw = tmp_path / "IMG_09.dng"
    raw.write_bytes(b"not read")
    res = run("--burst", frames[0], raw, "-o", out, "-s", 2)
    assert res.exit_code == 1 and "IMG_09.dng" in error_line(res) and "photos" in error_line(res)
    other = tmp_path / "other" / "IMG_10.png"
    other.parent.mkdir()
    PILImage.fromarray(np.zeros((40, 50, 3), np.uint8)).save(other)
    res = run("--burst", frames[0], other, "-o", out, "-s", 2)
    assert res.exit_code == 1 and "one size" in error_line(res)
    res = run("--burst", *frames, "-o", out, "-s", 2, "--tta")
    assert res.exit_code == 2 and "--tta" in res.output
    res = run("--burst", *frames, "-o", out, "-s", 2, "--strength", 0.5)
    assert res.exit_code == 2 and "--denoise" in res.output
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == \
        sorted([f.name for f in frames] + ["IMG_09.dng"])
