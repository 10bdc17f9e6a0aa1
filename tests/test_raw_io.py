"""Reading Bayer raw files, aligning every CFA layout to RGGB, and writing DNGs rawpy reads back."""
from pathlib import Path

import numpy as np
import pytest

from n3cli.errors import ImageError
from n3cli.io.raw import RawImage, pack, read_raw, unpack, write_dng

SAMPLES = Path(__file__).resolve().parents[1].parent / "shared" / "raw-samples"
needs_samples = pytest.mark.skipif(not SAMPLES.is_dir(), reason=f"raw samples not found at {SAMPLES}")


def synthetic(pattern: str, h=64, w=80, seed=0) -> RawImage:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    mosaic = (0.2 + 0.5 * xx * yy + 0.05 * rng.standard_normal((h, w))).clip(0, 1).astype(np.float32)
    black = np.array([[64.0, 60.0], [62.0, 66.0]])
    return RawImage(mosaic, pattern, black, 4095.0, wb=[2.0, 1.0, 1.6],
                    color_matrix=np.array([[0.9, -0.2, -0.1], [-0.4, 1.2, 0.2], [-0.05, 0.2, 0.6]]),
                    make="Testcam", model="Model 1")


@pytest.mark.parametrize("pattern", ["RGGB", "GRBG", "GBRG", "BGGR"])
def test_dng_round_trip_keeps_pattern_levels_and_mosaic(tmp_path, pattern):
    raw = synthetic(pattern)
    out = tmp_path / "x.dng"
    write_dng(out, raw)
    back = read_raw(out)
    assert back.pattern == pattern
    assert back.white == 4095.0 and np.array_equal(back.black, raw.black)
    assert np.array_equal(back.to_raw_units(), raw.to_raw_units())
    assert (back.make, back.model) == ("Testcam", "Model 1")


@pytest.mark.parametrize("pattern", ["RGGB", "GRBG", "GBRG", "BGGR"])
def test_pack_aligns_to_rggb_and_unpack_restores(pattern):
    raw = synthetic(pattern, 31, 41)
    planes, off = pack(raw.mosaic, pattern)
    assert planes.shape[0] == 4
    # after alignment the first plane is red: its top-left sits on an R site of the original layout
    dy, dx = off
    assert pattern[(dy % 2) * 2 + dx % 2] == "R"
    assert np.array_equal(unpack(planes, off, raw.mosaic), raw.mosaic)


@needs_samples
@pytest.mark.parametrize("name,pattern,black,white", [("blackmagic_pocket4k.dng", "RGGB", 512, 65535),
                                                      ("canon_powershot_g2.crw", "RGGB", 32, 1023),
                                                      ("kodak_dc120.kdc", "GRBG", 0, 510)])
def test_real_files_read_with_their_layout_and_levels(name, pattern, black, white):
    raw = read_raw(SAMPLES / name)
    assert raw.pattern == pattern and raw.white == white and (raw.black == black).all()
    assert raw.mosaic.ndim == 2 and np.isfinite(raw.mosaic).all()


@needs_samples
@pytest.mark.parametrize("name", ["nonbayer_linear_canon_6d.dng", "nonbayer_nikon_coolscan.nef"])
def test_non_bayer_files_are_refused_in_one_line(name):
    with pytest.raises(ImageError, match="not supported") as e:
        read_raw(SAMPLES / name)
    assert "LibRaw" in str(e.value) and "\n" not in str(e.value)


def test_truncated_and_corrupt_files_are_refused(tmp_path):
    raw = synthetic("RGGB", 200, 300)
    good = tmp_path / "good.dng"
    write_dng(good, raw)
    cut = tmp_path / "cut.dng"
    cut.write_bytes(good.read_bytes()[:2000])
    junk = tmp_path / "junk.nef"
    junk.write_bytes(b"\x00garbage" * 100)
    for f in (cut, junk):
        with pytest.raises(ImageError) as e:
            read_raw(f)
        assert str(f) in str(e.value) and "\n" not in str(e.value)


def test_develop_gives_16_bit_srgb_of_the_edited_mosaic(tmp_path):
    from n3cli.io.raw import develop

    raw = synthetic("GRBG", 120, 160)
    f = tmp_path / "x.dng"
    write_dng(f, raw)
    img = develop(f, read_raw(f))
    assert img.dtype == np.uint16 and img.shape[2] == 3 and abs(img.shape[0] - 120) <= 8
    darker = develop(f, read_raw(f), raw.mosaic * 0.25)
    assert darker.mean() < img.mean()  # the edited mosaic is what gets developed


def test_noise_profile_round_trips_and_the_estimator_finds_a_and_b_on_a_smooth_scene(tmp_path):
    from n3cli.raw_noise import add_poisson_gaussian, estimate_noise_params

    raw = synthetic("RGGB")
    raw.noise_profile = [(2e-3, 3e-5)]
    f = tmp_path / "np.dng"
    write_dng(f, raw)
    assert read_raw(f).noise_profile == [(2e-3, 3e-5)]
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:200, 0:300] / 300
    clean = np.stack([0.05 + 0.8 * xx + 0.05 * np.sin(3 * yy)] * 4)
    for a, b in [(1e-3, 1e-5), (1e-2, 1e-4)]:
        ea, _ = estimate_noise_params(add_poisson_gaussian(clean, a, b, rng))
        assert abs(ea / a - 1) < 0.15
