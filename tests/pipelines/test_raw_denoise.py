"""`n3 denoise` on camera raw files: generated DNGs in all four CFA layouts through the shipped
RAW model to DNG, TIFF and PNG, the noise-parameter sources, and every bad-input path."""
from pathlib import Path

import numpy as np
import pytest
import tifffile
from click.testing import CliRunner
from shared_paths import RAW_SAMPLES as SAMPLES
from shared_paths import REPO

from n3cli.cli.main import cli
from n3cli.eval.metrics import psnr
from n3cli.imaging.bayer import pack
from n3cli.imaging.raw_noise import add_poisson_gaussian, unprocess
from n3cli.io.images import read_image
from n3cli.io.raw import RawImage, read_raw, write_dng

ROOT = REPO
A, B = 4e-3, 2e-5  # the generated files' noise: var = a*x + b
_CHANNEL = {"R": 0, "G": 1, "B": 2}


def mosaic(rgb: np.ndarray, pattern: str) -> np.ndarray:
    """An H x W mosaic whose 2x2 cell at the top-left reads ``pattern``."""
    out = np.empty(rgb.shape[:2], np.float32)
    for k, c in enumerate(pattern):
        i, j = divmod(k, 2)
        out[i::2, j::2] = rgb[i::2, j::2, _CHANNEL[c]]
    return out


def scene(h=128, w=160, seed=0) -> np.ndarray:
    """Linear camera RGB made from a crop of the bundled (public-domain) example photo."""
    px = read_image(ROOT / "examples" / "astronaut_clean.png").pixels
    lin, _ = unprocess(px[40 : 40 + h, 60 : 60 + w], np.random.default_rng(seed))
    return lin


def make_dng(path: Path, pattern: str, noise_profile=None, seed=0) -> np.ndarray:
    """Write a noisy Bayer DNG with ``pattern``; returns the clean normalised mosaic."""
    clean = mosaic(scene(seed=seed), pattern)
    noisy = add_poisson_gaussian(clean, A, B, np.random.default_rng(seed + 1))
    raw = RawImage(noisy, pattern, np.array([[64.0, 64.0], [64.0, 64.0]]), 4095.0, wb=[2.1, 1.0, 1.7],
                   color_matrix=np.array([[0.9, -0.2, -0.1], [-0.4, 1.2, 0.2], [-0.05, 0.2, 0.6]]),
                   make="Testcam", model="N1", noise_profile=noise_profile)
    write_dng(path, raw)
    return clean


def raw_psnr(path: Path, clean: np.ndarray) -> float:
    return psnr(np.clip(read_raw(path).mosaic, 0, 1), clean)


@pytest.mark.parametrize("pattern", ["RGGB", "GRBG", "GBRG", "BGGR"])
def test_dng_to_dng_keeps_layout_and_levels_and_removes_noise(tmp_path, pattern):
    src, dst = tmp_path / "noisy.dng", tmp_path / "clean.dng"
    clean = make_dng(src, pattern)
    r = CliRunner().invoke(cli, ["denoise", str(src), "-o", str(dst), "-q", "--noise", f"{A},{B}"])
    assert r.exit_code == 0, r.output
    before, after = read_raw(src), read_raw(dst)
    assert after.mosaic.shape == before.mosaic.shape and after.pattern == pattern
    assert np.array_equal(after.black, before.black) and after.white == before.white
    assert (after.make, after.model) == ("Testcam", "N1")
    gain = raw_psnr(dst, clean) - raw_psnr(src, clean)
    assert gain > 4.0, f"raw PSNR gain only {gain:.2f} dB"
    with tifffile.TiffFile(dst) as t:
        tags = t.pages[0].tags
        assert tags["Software"].value.startswith("n3 ") and tags["Software"].value.endswith("(denoised)")
        assert 51041 not in tags  # no stale NoiseProfile


def test_tiff_output_is_16_bit_developed_rgb_and_png_8_bit(tmp_path):
    src = tmp_path / "noisy.dng"
    make_dng(src, "GRBG")
    for name, dtype in (("clean.tiff", np.uint16), ("clean.png", np.uint8)):
        dst = tmp_path / name
        r = CliRunner().invoke(cli, ["denoise", str(src), "-o", str(dst), "-q"])
        assert r.exit_code == 0, r.output
        arr = tifffile.imread(dst) if name.endswith("tiff") else np.asarray(__import__("PIL.Image").Image.open(dst))
        assert arr.dtype == dtype and arr.ndim == 3 and arr.shape[2] == 3
        assert abs(arr.shape[0] - 128) <= 8 and abs(arr.shape[1] - 160) <= 8
    r = CliRunner().invoke(cli, ["denoise", str(src), "-o", str(tmp_path / "c.dng"), "-q", "--compare"])
    assert r.exit_code == 0, r.output
    side = read_image(tmp_path / "c.compare.png").pixels  # both developments, side by side
    assert side.shape[1] == 2 * arr.shape[1] + 8 and side.shape[0] == arr.shape[0]
    left, right = side[:, : arr.shape[1]], side[:, arr.shape[1] + 8 :]
    assert np.abs(np.diff(right, axis=1)).mean() < np.abs(np.diff(left, axis=1)).mean()  # less grain


def test_depth_sets_a_developed_outputs_samples_and_a_dng_keeps_its_own(tmp_path):
    src = tmp_path / "noisy.dng"
    make_dng(src, "RGGB")
    res = CliRunner().invoke(cli, ["denoise", str(src), "-o", str(tmp_path / "c.png"), "--depth", "16", "-q"])
    assert res.exit_code == 0, res.output
    assert read_image(tmp_path / "c.png").dtype == np.uint16  # 8-bit without it
    res = CliRunner().invoke(cli, ["denoise", str(src), "-o", str(tmp_path / "c.dng"), "--depth", "16", "-q"])
    assert res.exit_code == 2 and "a DNG keeps the camera's own samples" in res.stderr


def test_noise_comes_from_the_option_then_the_noise_profile_then_the_estimator(tmp_path):
    from n3cli.pipelines.raw import noise_params

    with_profile, without = tmp_path / "p.dng", tmp_path / "e.dng"
    make_dng(with_profile, "RGGB", noise_profile=[(3e-3, 1e-5), (5e-3, 3e-5)])
    make_dng(without, "RGGB")
    p = noise_params(read_raw(with_profile))
    assert p.source == "NoiseProfile" and p.a == pytest.approx(4e-3) and p.b == pytest.approx(2e-5)
    assert noise_params(read_raw(with_profile), (1e-3, 1e-6)).source == "given"
    est = noise_params(read_raw(without))
    assert est.source == "estimated" and 0.5 < est.a / A < 2.0
    r = CliRunner().invoke(cli, ["denoise", "--print-noise", str(with_profile), str(without)])
    assert r.exit_code == 0
    lines = r.output.strip().splitlines()
    assert "(NoiseProfile)" in lines[0] and "a=0.004" in lines[0] and "(estimated)" in lines[1]


def test_noise_outside_the_models_training_range_is_pointed_out(tmp_path):
    """The shipped RAW model records the (a, b) range it was trained on; a file denoised at a level
    outside it still gets its output, with a note naming the file and what lies outside."""
    from n3cli import api
    from n3cli.pipelines.raw import NoiseParams, outside_training_range

    info = api.load_raw_denoiser(None, "cpu").info
    (a0, a1), (r0, r1) = info.noise["a_log_range"], info.noise["b_over_a_log_range"]
    assert outside_training_range(info, NoiseParams(10 ** ((a0 + a1) / 2), 10 ** ((a0 + a1) / 2 + r0), "given")) is None
    low = outside_training_range(info, NoiseParams(10 ** (a0 - 1), 10 ** (a0 - 1 + (r0 + r1) / 2), "given"))
    assert low is not None and low.startswith("noise a=") and "b/a" not in low and info.name in low
    ratio = outside_training_range(info, NoiseParams(1e-3, 1e-3 * 10 ** (r1 + 0.5), "given"))
    assert ratio is not None and "b/a=" in ratio and "noise a=" not in ratio

    src = tmp_path / "in.dng"
    make_dng(src, "RGGB")
    r = CliRunner().invoke(cli, ["denoise", str(src), "-o", str(tmp_path / "out.dng"), "-q",
                                 "--noise", f"{10 ** (a0 - 1):.3g},{10 ** (a0 - 1 + (r0 + r1) / 2):.3g}"])
    assert r.exit_code == 0 and (tmp_path / "out.dng").is_file()
    assert f"note: {src}: noise a=" in r.stderr and "outside what n3net-raw was trained on" in r.stderr
    r = CliRunner().invoke(cli, ["denoise", str(src), "-o", str(tmp_path / "ok.dng"), "-q", "--noise", "1e-3,1e-5"])
    assert r.exit_code == 0 and "note:" not in r.stderr


def test_a_folder_of_raw_files_becomes_dngs_and_a_bad_file_fails_alone(tmp_path):
    inp, out = tmp_path / "in", tmp_path / "out"
    inp.mkdir()
    make_dng(inp / "a.dng", "BGGR")
    good = (inp / "a.dng").read_bytes()
    (inp / "b.dng").write_bytes(good[:3000])  # truncated
    (inp / "c.nef").write_bytes(b"\x00not a raw file" * 50)
    r = CliRunner().invoke(cli, ["denoise", str(inp), "-o", str(out), "-q"])
    assert r.exit_code == 1
    assert sorted(p.name for p in out.iterdir()) == ["a.dng"]
    failed = [ln for ln in r.output.splitlines() if ln.startswith("error:")]
    assert len(failed) == 2 and all("\n" not in ln for ln in failed)
    assert any("b.dng" in ln for ln in failed) and any("c.nef" in ln for ln in failed)


@pytest.mark.skipif(not SAMPLES.is_dir(), reason=f"raw samples not found at {SAMPLES}")
@pytest.mark.parametrize("name", ["nonbayer_linear_canon_6d.dng", "nonbayer_nikon_coolscan.nef"])
def test_non_bayer_files_give_one_line_and_no_output(tmp_path, name):
    dst = tmp_path / "out.tiff"
    r = CliRunner().invoke(cli, ["denoise", str(SAMPLES / name), "-o", str(dst), "-q"])
    assert r.exit_code == 1
    assert "not supported" in r.output and name in r.output
    assert not dst.exists() and list(tmp_path.iterdir()) == []


@pytest.mark.slow
@pytest.mark.skipif(not SAMPLES.is_dir(), reason=f"raw samples not found at {SAMPLES}")
def test_a_real_grbg_camera_file_becomes_a_cleaner_dng_in_its_own_layout(tmp_path):
    from n3cli.imaging.raw_noise import estimate_noise_params

    src, dst = SAMPLES / "kodak_dc120.kdc", tmp_path / "clean.dng"
    r = CliRunner().invoke(cli, ["denoise", str(src), "-o", str(dst), "-q"])
    assert r.exit_code == 0, r.output
    before, after = read_raw(src), read_raw(dst)
    assert after.pattern == before.pattern == "GRBG" and after.mosaic.shape == before.mosaic.shape
    assert np.array_equal(after.black, before.black) and after.white == before.white
    assert "Kodak" in after.make
    def noise_var(raw):  # the estimated noise variance at the image's median level
        planes = pack(raw.mosaic, raw.pattern)[0]
        a, b = estimate_noise_params(planes)
        return a * np.median(planes) + b

    assert noise_var(after) < 0.85 * noise_var(before)


def test_wrong_pairings_are_refused(tmp_path):
    src = tmp_path / "noisy.dng"
    make_dng(src, "RGGB")
    png = tmp_path / "x.png"
    png.write_bytes((ROOT / "examples" / "astronaut_noisy.png").read_bytes())
    r = CliRunner().invoke(cli, ["denoise", str(png), "-o", str(tmp_path / "x.dng"), "-q"])
    assert r.exit_code == 1 and "DNG holds a camera's raw mosaic" in r.output
    r = CliRunner().invoke(cli, ["denoise", str(src), "-o", str(tmp_path / "y.png"), "-q", "-m", "n3net-color"])
    assert r.exit_code != 0 and "not a RAW denoiser" in r.output
    for bad in ("1e-3", "a,b", "-1,0"):
        r = CliRunner().invoke(cli, ["denoise", str(src), "-o", str(tmp_path / "y.dng"), "--noise", bad])
        assert r.exit_code == 2 and "--noise" in r.output
    assert not (tmp_path / "x.dng").exists() and not (tmp_path / "y.png").exists()


def test_library_call_matches_the_packed_model_output():
    """denoise_mosaic = the model on the RGGB-aligned planes, put back in the original layout."""
    from n3cli import api
    from n3cli.pipelines.raw import NoiseParams, denoise_mosaic

    model = api.load_raw_denoiser()
    clean = mosaic(scene(64, 96), "GBRG")
    noisy = add_poisson_gaussian(clean, A, B, np.random.default_rng(3))
    raw = RawImage(noisy, "GBRG", np.zeros((2, 2)), 1023.0)
    out = denoise_mosaic(model, raw, NoiseParams(A, B, "given"))
    assert out.shape == noisy.shape
    planes_out, _ = pack(out, "GBRG")
    planes_clean, _ = pack(clean, "GBRG")
    planes_noisy, _ = pack(noisy, "GBRG")
    assert psnr(planes_out, planes_clean) > psnr(planes_noisy, planes_clean) + 4.0
    # GBRG aligns to RGGB one row down: the first and last rows lie outside the packed cells
    assert np.array_equal(out[0], noisy[0]) and np.array_equal(out[-1], noisy[-1])


def test_eval_task_raw_reports_each_level_for_model_baseline_and_noisy_input(tmp_path):
    import json

    from n3cli.io.images import Image, write_image

    px = read_image(ROOT / "examples" / "astronaut_clean.png").pixels
    for i in range(2):
        write_image(tmp_path / f"im{i}.png", Image(px[i * 60 : i * 60 + 128, 20:180], np.dtype(np.uint8)))
    args = ["eval", "raw", "--data", str(tmp_path), "--level", "1e-3,1e-5", "--level", "1e-2,1e-4", "--json"]
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 0, r.output
    rep = json.loads(r.output)
    assert rep["task"] == "raw" and rep["model"] == "n3net-raw" and rep["baseline"] == "dncnn-raw"
    levels = [(res["a"], res["b"]) for res in rep["results"]]
    assert levels == [(1e-3, 1e-5), (1e-2, 1e-4)]
    for res in rep["results"]:
        assert len(res["per_image"]) == 2
        assert res["mean_psnr"] > res["noisy_psnr"] + 1.5 and res["baseline_psnr"] > res["noisy_psnr"]
    assert rep["results"][0]["noisy_psnr"] > rep["results"][1]["noisy_psnr"] + 5.0  # 10x the noise
    again = json.loads(CliRunner().invoke(cli, args).output)
    assert again["results"] == rep["results"]  # fixed seed: the same synthetic set every time



def test_eval_raw_table_says_which_column_is_which_when_both_files_hold_the_same_model(tmp_path):
    """A run's file scored against the shipped file: both are named n3net-raw inside, so the
    table must not head two columns alike (the baseline column comes first)."""
    from n3cli.io.images import Image, write_image

    px = read_image(ROOT / "examples" / "astronaut_clean.png").pixels
    write_image(tmp_path / "im.png", Image(px[:96, 20:148], np.dtype(np.uint8)))
    shipped = ROOT / "weights" / "n3net-raw.safetensors"
    r = CliRunner().invoke(cli, ["eval", "raw", "--data", str(tmp_path), "--level", "1e-3,1e-5",
                                 "--model", str(shipped), "--baseline", "n3net-raw"])
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert f"baseline: n3net-raw; model: {shipped}" in lines
    head = next(x for x in lines if x.split()[:3] == ["a", "b", "noisy"])
    assert head.split()[3:] == ["baseline", "model"]
    row = next(x for x in lines if x.split()[:1] == ["0.001"])
    assert row.split()[3] == row.split()[4]  # the same weights score the same

def test_developed_outputs_carry_camera_exposure_and_an_srgb_profile(tmp_path):
    """A developed TIFF/JPEG/PNG says what camera and exposure made it, that n3 did, and (sRGB
    pixels) carries an sRGB ICC profile; the orientation stays behind (LibRaw turned the pixels)."""
    from PIL import Image as PILImage

    from n3cli.pipelines.raw import write_raw_output

    src = tmp_path / "in.dng"
    make_dng(src, "RGGB")
    raw = read_raw(src)
    raw.tags = {33434: 1 / 125, 33437: 2.8, 34855: 800, 37386: 35.0, 36867: "2025:06:01 12:00:00"}
    for ext in (".tif", ".jpg", ".png"):
        dst = tmp_path / f"out{ext}"
        write_raw_output(dst, src, raw, raw.mosaic)
        with PILImage.open(dst) as im:
            assert im.info.get("icc_profile"), ext
            exif = im.getexif()
            sub = exif.get_ifd(0x8769)
            merged = {**dict(exif), **dict(sub)}
            assert merged[271] == "Testcam" and merged[272] == "N1" and merged[305].startswith("n3 "), ext
            assert float(merged[33434]) == pytest.approx(1 / 125) and merged[34855] == 800, ext
            assert merged[36867] == "2025:06:01 12:00:00" and 274 not in merged, ext
        data = dst.read_bytes()  # the block as strict readers (exiftool, exiv2) parse it, not as Pillow forgives it
        if ext == ".jpg":
            app1 = data.find(b"\xff\xe1")
            assert data[app1 + 4 : app1 + 12] in (b"Exif\x00\x00MM", b"Exif\x00\x00II"), data[app1 : app1 + 16]
        if ext == ".png":
            chunk = data.find(b"eXIf")
            assert data[chunk + 4 : chunk + 6] in (b"MM", b"II"), data[chunk : chunk + 12]


@pytest.mark.parametrize("name", ["blackmagic_pocket4k.dng", "canon_powershot_g2.crw", "kodak_dc120.kdc"])
def test_the_raw_training_range_covers_what_real_cameras_read(name):
    """The (a, b) a real Bayer file is denoised with lies inside the range the shipped RAW model was trained on,
    and so does every source's a; the paper's range missed two of these three cameras (issue 25).
    (The mosaic fit alone can put b at its floor, 1e-8, far below any b/a trained; on the Canon
    the optical black is read first.)"""
    import math

    from n3cli import api
    from n3cli.pipelines.raw import noise_candidates, noise_params

    trained = api.load_raw_denoiser(None, "cpu").info.noise  # the range the shipped model records
    A_LOG_RANGE, B_OVER_A_LOG_RANGE = trained["a_log_range"], trained["b_over_a_log_range"]
    path = SAMPLES / name
    if not path.is_file():
        pytest.skip(f"{path} not found (../shared beside the checkout)")
    raw = read_raw(path)
    for source, (a, b) in noise_candidates(raw).items():
        assert A_LOG_RANGE[0] <= math.log10(a) <= A_LOG_RANGE[1], (source, a)
    used = noise_params(raw)
    assert B_OVER_A_LOG_RANGE[0] <= math.log10(used.b / used.a) <= B_OVER_A_LOG_RANGE[1], used


@pytest.mark.parametrize("pattern,shape", [("RGGB", (40, 50)), ("GRBG", (40, 50)), ("GBRG", (37, 51)),
                                           ("BGGR", (41, 48))])
def test_tta_reads_every_view_in_the_cfa_layout_it_turns_into(pattern, shape):
    """A stand-in RAW model that doubles the red plane and triples the blue one: averaged over the
    eight turned and mirrored views, every pixel inside the border is scaled by its own colour's
    factor, which holds only if each view was packed in the layout it really has."""
    import torch

    from n3cli.pipelines.raw import NoiseParams, denoise_mosaic
    from n3cli.runtime.torch_runner import TorchRunner
    from n3cli.store.modelinfo import ModelInfo

    net = torch.nn.Conv2d(6, 4, 1, bias=False)
    with torch.no_grad():
        net.weight.zero_()
        for c, f in enumerate((2.0, 1.0, 1.0, 3.0)):  # the packed planes are R, G, G, B
            net.weight[c, c] = f
    info = ModelInfo("scale", "dncnn", {"in_channels": 6, "out_channels": 4}, task="raw", color="bayer")
    runner = TorchRunner(net, info)
    m = np.random.default_rng(0).uniform(0.1, 0.9, shape).astype(np.float32)
    raw = RawImage(m, pattern, np.zeros((2, 2)), 1.0)
    out = denoise_mosaic(runner, raw, NoiseParams(1e-3, 1e-5, "given"), tta=True)
    cell = np.array([{"R": 2.0, "G": 1.0, "B": 3.0}[c] for c in pattern]).reshape(2, 2)
    factor = np.tile(cell, (shape[0] // 2 + 1, shape[1] // 2 + 1))[: shape[0], : shape[1]]
    assert out.shape == m.shape
    np.testing.assert_allclose(out[1:-1, 1:-1], (m * factor)[1:-1, 1:-1], rtol=1e-5)
    # the outermost rows and columns fall outside some views' aligned area and are kept there
    edge = np.ones(shape, bool)
    edge[1:-1, 1:-1] = False
    assert np.all(out[edge] >= m[edge] * 0.999) and np.all(out[edge] <= (m * factor)[edge] * 1.001)


def test_tta_on_a_raw_file_cleans_at_least_as_well_as_one_pass(tmp_path):
    src = tmp_path / "noisy.dng"
    clean = make_dng(src, "GRBG")
    got = {}
    for tta in (False, True):
        dst = tmp_path / f"clean{tta}.dng"
        r = CliRunner().invoke(cli, ["denoise", str(src), "-o", str(dst), "-q", "--noise", f"{A},{B}"]
                               + (["--tta"] if tta else []))
        assert r.exit_code == 0, r.output
        after = read_raw(dst)
        assert after.pattern == "GRBG" and after.mosaic.shape == clean.shape
        got[tta] = raw_psnr(dst, clean)
    assert got[True] >= got[False] - 0.02, got
    assert got[False] > psnr(np.clip(read_raw(src).mosaic, 0, 1), clean) + 3


YCC = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]])


@pytest.mark.parametrize("pattern", ["RGGB", "GRBG"])
def test_chroma_strength_on_the_mosaic_splits_a_gray_change_from_a_colour_change(pattern):
    """DNG outputs: a change that is gray once white-balanced is luminance, kept by --strength; a
    change of no luma is colour, kept by --chroma-strength; the photosites outside the RGGB grid
    (GRBG's first column) take --strength."""
    from n3cli.pipelines.raw import blend_mosaic

    wb = np.array([2.0, 1.0, 1.5])
    raw = RawImage(np.full((10, 12), 0.3, np.float32), pattern, np.zeros((2, 2)), 4095.0, wb=list(wb))
    colour = {"R": 0, "G": 1, "B": 2}
    sites = np.array([[colour[pattern[2 * (i % 2) + j % 2]] for j in range(12)] for i in range(10)])
    gray = (0.1 / wb)[sites].astype(np.float32)  # a luma-0.1 gray change after white balance
    hue = np.array([0.05, -0.05, 0.0])
    hue[2] = -(0.299 * wb[0] * hue[0] + 0.587 * wb[1] * hue[1]) / (0.114 * wb[2])  # no luma
    hue = hue[sites].astype(np.float32)
    inner = (slice(None), slice(1, None)) if pattern == "GRBG" else (slice(None), slice(None))
    out = blend_mosaic(raw, raw.mosaic + gray, 0.3, 0.8)
    np.testing.assert_allclose((out - raw.mosaic)[inner], 0.3 * gray[inner], atol=1e-6)
    out = blend_mosaic(raw, raw.mosaic + hue, 0.3, 0.8)
    np.testing.assert_allclose((out - raw.mosaic)[inner], 0.8 * hue[inner], atol=1e-6)
    if pattern == "GRBG":
        np.testing.assert_allclose((out - raw.mosaic)[:, 0], 0.3 * hue[:, 0], atol=1e-6)
    np.testing.assert_array_equal(blend_mosaic(raw, raw.mosaic + hue, 0.5), raw.mosaic + 0.5 * hue)


def test_chroma_strength_on_a_developed_raw_output_keeps_the_luminance_or_the_colour_of_the_input(tmp_path):
    """--strength 0 --chroma-strength 1: the input's luminance, the denoised colour; and the other
    way round. Measured on the developed images, as the user sees them (16-bit TIFF)."""
    src = tmp_path / "noisy.dng"
    make_dng(src, "GRBG")
    outs, inside = {}, True
    for name, args in (("in", ["--strength", "0"]), ("full", []), ("grain", ["--strength", "0", "--chroma-strength", "1"]),
                       ("colour", ["--strength", "1", "--chroma-strength", "0"])):
        r = CliRunner().invoke(cli, ["denoise", str(src), "-o", str(tmp_path / f"{name}.tif"), "-q", *args])
        assert r.exit_code == 0, r.output
        px = read_image(tmp_path / f"{name}.tif").pixels.astype(np.float64)
        inside = inside & (px > 0).all(-1) & (px < 1).all(-1)  # a pixel clipped to black or white keeps neither
        outs[name] = px @ YCC.T
    assert inside.mean() > 0.9
    step = 1.5 / 65535  # 16-bit rounding
    assert np.abs(outs["grain"][..., 0] - outs["in"][..., 0])[inside].max() < step
    assert np.abs(outs["grain"][..., 1:] - outs["full"][..., 1:])[inside].max() < step
    assert np.abs(outs["colour"][..., 1:] - outs["in"][..., 1:])[inside].max() < step
    assert np.abs(outs["colour"][..., 0] - outs["full"][..., 0])[inside].max() < step
    assert np.abs(outs["full"][..., 1:] - outs["in"][..., 1:]).mean() > 20 * step  # the model did change the colour


def test_quality_reaches_a_raw_file_developed_to_jpeg(tmp_path):
    src = tmp_path / "noisy.dng"
    make_dng(src, "RGGB")
    for q in ("30", "95"):
        r = CliRunner().invoke(cli, ["denoise", str(src), "-o", str(tmp_path / f"q{q}.jpg"), "-q", "--quality", q])
        assert r.exit_code == 0, r.output
    assert (tmp_path / "q30.jpg").stat().st_size < 0.7 * (tmp_path / "q95.jpg").stat().st_size


def test_a_raw_file_is_developed_then_enlarged_and_denoised_first_on_its_mosaic(tmp_path):
    """`n3 upscale photo.dng -o big.tif`: LibRaw's development, enlarged; with --denoise the mosaic
    is cleaned by the RAW model first, so the result is closer to the clean scene enlarged alike."""
    import json

    from PIL import Image as PILImage

    from n3cli import api
    from n3cli.pipelines.raw import developed

    src = tmp_path / "noisy.dng"
    clean = make_dng(src, "GRBG")
    raw = read_raw(src)
    up = api.load_upscaler(None, 2, "cpu")
    ref = np.clip(api.upscale(up, developed(src, raw, clean), 2), 0, 1)  # the clean mosaic, developed and enlarged
    scores = {}
    for key, extra in (("plain", []), ("denoise", ["--denoise"])):
        dst = tmp_path / f"{key}.tif"
        r = CliRunner().invoke(cli, ["upscale", str(src), "-o", str(dst), "-s", "2", "-q", "--json", "--compare",
                                     *extra])
        assert r.exit_code == 0, r.output
        rec = json.loads(r.stdout.splitlines()[-1])
        out = tifffile.imread(dst)
        assert out.dtype == np.uint16 and out.shape == ref.shape
        scores[key] = psnr(out / 65535.0, ref)
        assert rec["compare"] == str(tmp_path / f"{key}.compare.png")
        assert read_image(rec["compare"]).pixels.shape[1] == 2 * min(512, out.shape[1]) + 8
        with PILImage.open(dst) as im:
            assert im.getexif()[305].endswith("enlarged x2)"), im.getexif()[305]
    assert rec["denoise_model"] == "n3net-raw" and rec["noise"]["source"] == "estimated"
    assert scores["denoise"] > scores["plain"] + 3.0, scores
    # --strength 0 keeps the mosaic's noise: the plain enlargement, byte for byte
    r = CliRunner().invoke(cli, ["upscale", str(src), "-o", str(tmp_path / "s0.tif"), "-s", "2", "-q", "--denoise",
                                 "--strength", "0"])
    assert r.exit_code == 0, r.output
    assert np.array_equal(tifffile.imread(tmp_path / "s0.tif"), tifffile.imread(tmp_path / "plain.tif"))
    # a DNG holds a mosaic, not an enlarged image: refused before any work, nothing written
    r = CliRunner().invoke(cli, ["upscale", str(src), "-o", str(tmp_path / "big.dng"), "-s", "2"])
    assert r.exit_code == 2 and "big.dng" in r.output and not (tmp_path / "big.dng").exists()
    # in folder mode a raw file becomes a 16-bit TIFF beside the photos' own formats
    PILImage.fromarray(np.zeros((20, 24, 3), np.uint8) + 90).save(tmp_path / "photo.png")
    r = CliRunner().invoke(cli, ["upscale", str(src), str(tmp_path / "photo.png"), "-o", str(tmp_path / "out"),
                                 "-s", "2", "-q"])
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["noisy.tif", "photo.png"]
