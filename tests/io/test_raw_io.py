"""Reading Bayer raw files, aligning every CFA layout to RGGB, and writing DNGs rawpy reads back."""
import shutil
from pathlib import Path

import numpy as np
import pytest
from shared_paths import RAW_SAMPLES as SAMPLES

from n3cli.errors import ImageError
from n3cli.imaging.bayer import pack, unpack
from n3cli.io.raw import RawImage, develop, read_raw, write_dng

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
    from n3cli.imaging.raw_noise import add_poisson_gaussian, estimate_noise_params

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


BAYER_SAMPLES = ["blackmagic_pocket4k.dng", "canon_powershot_g2.crw", "kodak_dc120.kdc"]


def _developed(path, **kw) -> np.ndarray:
    import rawpy

    with rawpy.imread(str(path)) as r:
        return r.postprocess(use_camera_wb=True, output_bps=16, no_auto_bright=True, half_size=True, **kw)


def _channel_means(img: np.ndarray) -> np.ndarray:
    return img.reshape(-1, 3).astype(np.float64).mean(0)


@needs_samples
@pytest.mark.parametrize("name", BAYER_SAMPLES)
def test_dng_of_a_real_file_develops_like_the_original_and_keeps_its_metadata(tmp_path, name):
    """A raw developer must see in n3's DNG what it sees in the camera's file: the same size and
    aspect (the DC120's photosites are 1.53 times wider than tall), the same colour (the DC120 has
    no matrix LibRaw reports and no as-shot balance: identity/1,1,1 gave a magenta cast), and the
    camera, exposure and ISO."""
    import tifffile

    src = SAMPLES / name
    raw = read_raw(src)
    dng = tmp_path / "out.dng"
    write_dng(dng, raw)
    want, got = _developed(src), _developed(dng)
    assert got.shape == want.shape
    rel = _channel_means(got) / _channel_means(want)
    assert np.all(np.abs(rel - 1) < 0.02), rel
    with tifffile.TiffFile(dng) as t:
        tags = t.pages[0].tags
        assert tags["Software"].value.startswith("n3 ")
        if raw.make:  # the CRW (CIFF) has no TIFF Make; LibRaw does not pass it on
            assert tags["Make"].value == raw.make and tags["UniqueCameraModel"].value == f"{raw.make} {raw.model}"
        if name != "blackmagic_pocket4k.dng":  # a cinema camera's DNG holds no exposure data
            assert tags["ExposureTime"].value[0] > 0 and tags["ISOSpeedRatings"].value > 0
            assert tags["DateTimeOriginal"].value[:2] in ("19", "20")


@needs_samples
def test_kodak_dng_carries_a_real_colour_matrix_the_measured_balance_and_its_pixel_aspect():
    raw = read_raw(SAMPLES / "kodak_dc120.kdc")
    assert not np.allclose(raw.color_matrix, np.eye(3), atol=0.2)
    assert raw.wb != [1.0, 1.0, 1.0] and raw.wb[1] == 1.0
    assert abs(raw.pixel_aspect - 1.5346) < 1e-3
    assert raw.tags[34855] == 160 and abs(raw.tags[33437] - 3.7) < 1e-6


def _gray_patches(img: np.ndarray) -> np.ndarray:
    """Mean colour of the DC120 sample's four lightest ColorChecker gray patches, (4, 3), scaled
    to the image's size (the patches sit at rows 615-645, columns 65-505 of 976 x 1301)."""
    h, w = img.shape[:2]
    out = []
    for x in (80, 220, 350, 490):
        y0, x0 = int(615 * h / 976), int((x - 15) * w / 1301)
        out.append(img[y0 : y0 + int(30 * h / 976), x0 : x0 + int(30 * w / 1301)].reshape(-1, 3).mean(0))
    return np.asarray(out, np.float64)


@needs_samples
@pytest.mark.skipif(shutil.which("dcraw") is None, reason="dcraw not installed (apt-get install dcraw)")
def test_dcraw_develops_the_kodak_dng_with_neutral_grays_and_the_true_aspect(tmp_path):
    """dcraw is the classic raw developer (LibRaw's ancestor): its development of n3's DNG must
    give the gray patches the colour LibRaw gives them in the original, and the 1.53 aspect."""
    import subprocess

    import tifffile

    dng = tmp_path / "k.dng"
    write_dng(dng, read_raw(SAMPLES / "kodak_dc120.kdc"))
    out = subprocess.run(["dcraw", "-w", "-T", "-c", str(dng)], capture_output=True, check=True).stdout
    (tmp_path / "k.tiff").write_bytes(out)
    got = tifffile.imread(tmp_path / "k.tiff")
    import rawpy

    with rawpy.imread(str(SAMPLES / "kodak_dc120.kdc")) as r:
        want = r.postprocess(use_camera_wb=True, output_bps=8)
    assert got.shape == want.shape == (976, 1301, 3)
    g, w = _gray_patches(got), _gray_patches(want)
    chroma = (g / g[:, 1:2]) / (w / w[:, 1:2])  # R/G and B/G of each patch, against the original's
    assert np.all(np.abs(chroma - 1) < 0.03), chroma


@needs_samples
@pytest.mark.parametrize("name,keep", [("blackmagic_pocket4k.dng", 1024), ("blackmagic_pocket4k.dng", 2_000_000),
                                       ("kodak_dc120.kdc", 82179)])
def test_truncated_real_files_are_refused_in_one_line(tmp_path, capfd, name, keep):
    """A DNG cut to 1 KB was read as an all-zero mosaic (5 minutes, an 18 MB DNG of nothing); a KDC
    cut in half passed with libjpeg's complaint on stderr."""
    cut = tmp_path / f"cut{Path(name).suffix}"
    cut.write_bytes((SAMPLES / name).read_bytes()[:keep])
    with pytest.raises(ImageError, match="truncated") as e:
        read_raw(cut)
    assert str(cut) in str(e.value) and "\n" not in str(e.value)
    assert capfd.readouterr().err == ""  # neither libjpeg's nor tifffile's messages reach the terminal


def test_a_blank_mosaic_is_no_photo(tmp_path):
    raw = synthetic("RGGB")
    raw.mosaic[:] = 0.0
    f = tmp_path / "blank.dng"
    write_dng(f, raw)
    with pytest.raises(ImageError, match="no image data"):
        read_raw(f)


def test_files_that_are_not_raw_say_what_they_are(tmp_path):
    from PIL import Image as PILImage

    (tmp_path / "a.nef").write_text("shopping list\n")
    PILImage.new("RGB", (8, 8)).save(tmp_path / "b.cr2", format="JPEG")
    (tmp_path / "c.dng").write_bytes(b"")
    for f, what in (("a.nef", "a text file"), ("b.cr2", "a JPEG image"), ("c.dng", "empty")):
        with pytest.raises(ImageError, match=f"not a camera raw file .*{what}"):
            read_raw(tmp_path / f)


@pytest.mark.parametrize("a,b", [(1e-4, 1e-6), (1e-3, 1e-5), (1e-2, 1e-4), (5e-2, 5e-4)])
def test_a_known_read_noise_pins_the_fit_of_the_shot_noise(a, b):
    """With b known (the optical black), the fit recovers a over the training range, also when
    the highlights clip (clipped photosites hold no noise: they must not pull the fit down)."""
    from n3cli.imaging.raw_noise import add_poisson_gaussian, estimate_noise_params

    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[0:200, 0:300] / 300
    clean = np.stack([0.02 + 1.1 * xx + 0.03 * np.sin(3 * yy)] * 4)  # the right fifth beyond white
    noisy = np.minimum(add_poisson_gaussian(clean, a, b, rng), 1.0)
    ea, eb = estimate_noise_params(noisy, b=b)
    assert eb == b and abs(ea / a - 1) < 0.2


@pytest.mark.skipif(not (SAMPLES / "canon_powershot_g2.crw").is_file(), reason="raw samples not found")
def test_the_read_noise_comes_from_the_sensors_masked_border():
    """The Canon G2's raw data keeps 12 masked columns and 6 rows: their spread is the read noise,
    the first source after a DNG NoiseProfile. Files without a masked border have none."""
    from n3cli.pipelines.raw import noise_candidates, noise_params

    crw = read_raw(SAMPLES / "canon_powershot_g2.crw")
    assert crw.black_noise == pytest.approx((0.78 / (1023 - 32)) ** 2, rel=0.1)  # measured: std 0.73-0.79 DN
    p = noise_params(crw)
    assert p.source == "optical black + fit" and p.b == crw.black_noise
    assert set(noise_candidates(crw)) == {"optical black + fit", "estimated"}
    assert read_raw(SAMPLES / "kodak_dc120.kdc").black_noise is None


@needs_samples
def test_a_denoised_mosaic_develops_as_bright_as_the_original():
    """LibRaw lowers the white point to a mosaic's own peak when that is above 75% of it: a
    denoised Canon G2 mosaic, whose peak fell below, developed 27% darker than the original."""
    import rawpy

    path = SAMPLES / "canon_powershot_g2.crw"
    raw = read_raw(path)
    assert raw.mosaic.max() > 0.75  # the peak LibRaw would take as white
    with rawpy.imread(str(path)) as r:  # LibRaw's own development of the file
        libraw = r.postprocess(use_camera_wb=True, output_bps=16, no_auto_bright=True)
    original = develop(path, raw)
    assert np.array_equal(original, libraw)
    lowered = develop(path, raw, np.minimum(raw.mosaic, 0.7))  # peaks cut, as smoothing lowers them
    keep = (raw.mosaic < 0.5)[::2, ::2].repeat(2, 0).repeat(2, 1)[: original.shape[0], : original.shape[1]]
    ratio = lowered[keep].astype(np.float64).mean() / original[keep].astype(np.float64).mean()
    assert abs(ratio - 1) < 0.01, ratio
