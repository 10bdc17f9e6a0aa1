"""`-` for standard input and output: the same result as with files, the format read from the
bytes, and a failure that leaves standard output empty."""

import glob
import io
import tempfile
from pathlib import Path

import numpy as np
import pytest
import tifffile
from click.testing import CliRunner
from PIL import Image as PILImage
from shared_paths import RAW_SAMPLES
from test_cli_denoise import noisy_file

from n3cli.cli.main import cli
from n3cli.io.raw import RawImage, read_raw, write_dng
from n3cli.io.sniff import guess_ext


def run(args, data: bytes | None = None):
    return CliRunner().invoke(cli, [*map(str, args), "-q"], input=data)


def leftovers() -> set[str]:
    return set(glob.glob(str(Path(tempfile.gettempdir()) / "n3-stdio-*")))


def test_a_png_through_a_pipe_is_the_file_result_byte_for_byte(tmp_path):
    src = tmp_path / "in.png"
    noisy_file(src)
    before = leftovers()
    res = run(["denoise", "-", "-o", "-"], src.read_bytes())
    assert res.exit_code == 0, res.stderr
    assert "wrote <stdout>" in res.stderr and "n3-stdio" not in res.stderr
    assert run(["denoise", src, "-o", tmp_path / "out.png"]).exit_code == 0
    assert res.stdout_bytes == (tmp_path / "out.png").read_bytes()
    assert leftovers() == before  # the temporary folder is gone

    res = run(["upscale", "-", "-o", "-", "-s", "2", "--ext", "tif"], src.read_bytes())
    assert res.exit_code == 0, res.stderr
    assert tifffile.imread(io.BytesIO(res.stdout_bytes)).shape == (192, 192, 3)


def test_standard_input_to_a_file_and_its_noise_reading(tmp_path):
    src = tmp_path / "in.jpg"
    noisy_file(src)
    res = run(["denoise", "-", "-o", tmp_path / "out.png"], src.read_bytes())
    assert res.exit_code == 0, res.stderr
    assert PILImage.open(tmp_path / "out.png").size == (96, 96)
    res = CliRunner().invoke(cli, ["denoise", "--print-noise", "-"], input=src.read_bytes())
    assert res.exit_code == 0 and res.stdout.startswith("<stdin>\tsigma=")


def test_bad_input_and_bad_usage_leave_standard_output_empty(tmp_path):
    src = tmp_path / "in.png"
    noisy_file(src)
    res = run(["denoise", "-", "-o", "-"], b"this is not an image")
    assert res.exit_code == 1 and res.stdout_bytes == b""
    assert "error: <stdin>:" in res.stderr
    res = run(["denoise", "-", "-o", "-"], b"")
    assert res.exit_code == 2 and "standard input is empty" in res.stderr
    for args in (["denoise", "-", src, "-o", tmp_path / "o"], ["denoise", "-", "-o", "-", "--json"],
                 ["denoise", src, src, "-o", "-"], ["denoise", "-", "-o", "-", "--compare"],
                 ["denoise", "-", "--suffix", "_c"], ["denoise", "-", "-o", "-", "--ray", "auto"]):
        res = run(args, src.read_bytes())
        assert res.exit_code == 2 and res.stdout_bytes == b"", args
    res = run(["denoise", "-", "-o", "-", "--ext", "jpg", "--depth", "16"], src.read_bytes())
    assert res.exit_code == 2 and "--depth 16 needs .png or .tif" in res.stderr


def test_a_dng_through_a_pipe_comes_out_a_dng(tmp_path):
    rng = np.random.default_rng(0)
    clean = np.tile(np.linspace(0.1, 0.6, 96, dtype=np.float32), (64, 1))
    raw = RawImage(np.clip(clean + rng.normal(0, 0.02, clean.shape), 0, 1).astype(np.float32), "RGGB",
                   np.full((2, 2), 64.0), 4095.0, wb=[2.0, 1.0, 1.5], make="Testcam", model="N1")
    write_dng(tmp_path / "in.dng", raw)
    res = run(["denoise", "-", "-o", "-"], (tmp_path / "in.dng").read_bytes())
    assert res.exit_code == 0, res.stderr
    (tmp_path / "out.dng").write_bytes(res.stdout_bytes)
    out = read_raw(tmp_path / "out.dng")
    assert out.pattern == "RGGB" and out.mosaic.shape == clean.shape
    assert np.abs(out.mosaic - clean).mean() < np.abs(raw.mosaic - clean).mean()


def test_guess_ext_tells_images_from_raw_files(tmp_path):
    gray16 = (np.arange(64 * 64).reshape(64, 64) * 16).astype(np.uint16)
    # a monochrome camera's TIFF names its maker too; LibRaw alone would take it for a mosaic
    tifffile.imwrite(tmp_path / "mono.tif", gray16, extratags=[(271, "s", 0, "Testcam", True)])
    assert guess_ext(tmp_path / "mono.tif") == ".tif"
    img = PILImage.fromarray(np.zeros((8, 8, 3), np.uint8))
    for fmt, ext in (("PNG", ".png"), ("JPEG", ".jpg"), ("WEBP", ".webp"), ("BMP", ".bmp")):
        img.save(tmp_path / f"x{ext}", format=fmt)
        assert guess_ext(tmp_path / f"x{ext}") == ext
    if not RAW_SAMPLES.is_dir():
        pytest.skip("raw samples not found (../shared beside the checkout)")
    assert guess_ext(RAW_SAMPLES / "blackmagic_pocket4k.dng") == ".dng"
    for name in ("kodak_dc120.kdc", "canon_powershot_g2.crw"):  # TIFF-based, and Canon's own container
        assert guess_ext(RAW_SAMPLES / name) == ".raw"
