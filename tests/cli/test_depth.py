"""`--depth 8|16|float`: the output's sample type, whatever the input's; refused before any work
where the output's format cannot hold it."""

import numpy as np
import tifffile
from click.testing import CliRunner
from PIL import Image as PILImage
from test_cli_denoise import noisy_file

from n3cli.cli.main import cli
from n3cli.io.images import read_image


def run(*args):
    return CliRunner().invoke(cli, [*map(str, args), "-q"])


def test_16_bit_output_of_an_8_bit_photo_is_the_same_result_with_the_levels_between(tmp_path):
    src = tmp_path / "in.png"
    noisy_file(src, c=3, dtype=np.uint8)
    assert run("denoise", src, "-o", tmp_path / "8.png", "--sigma", 25).exit_code == 0
    res = run("denoise", src, "-o", tmp_path / "16.png", "--sigma", 25, "--depth", "16")
    assert res.exit_code == 0, res.output
    a8, a16 = np.asarray(PILImage.open(tmp_path / "8.png")), read_image(tmp_path / "16.png")
    assert a16.dtype == np.uint16
    w16 = np.rint(a16.pixels.astype(np.float64) * 65535).astype(np.int64)
    assert np.abs(np.rint(w16 / 257.0) - a8).max() <= 1  # the 8-bit result, rounded later
    assert np.mean(w16 % 257 != 0) > 0.9  # nearly every value lies between two 8-bit levels


def test_float_output_and_a_format_that_cannot_hold_the_depth(tmp_path):
    src = tmp_path / "in.tif"
    noisy_file(src, c=1, dtype=np.uint16)
    res = run("denoise", src, "-o", tmp_path / "f.tif", "--depth", "float")
    assert res.exit_code == 0, res.output
    assert tifffile.imread(tmp_path / "f.tif").dtype == np.float32
    for out, depth, needle in (("o.jpg", "16", "--depth 16 needs .png or .tif"),
                               ("o.png", "float", "--depth float needs .tif")):
        res = run("denoise", src, "-o", tmp_path / out, "--depth", depth)
        assert res.exit_code == 2 and needle in res.stderr
        assert not (tmp_path / out).exists()
    # an 8-bit output of a 16-bit photo
    assert run("upscale", src, "-o", tmp_path / "u.png", "-s", 2, "--depth", "8").exit_code == 0
    assert read_image(tmp_path / "u.png").dtype == np.uint8
