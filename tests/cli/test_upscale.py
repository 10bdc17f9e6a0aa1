"""`n3 upscale` and the SR pipeline around a (small, random) SR model."""
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
from click.testing import CliRunner
from shared_paths import EXAMPLES

from n3cli import api
from n3cli.cli.main import cli
from n3cli.imaging.color import rgb_to_ycbcr, ycbcr_to_rgb
from n3cli.imaging.resize import imresize
from n3cli.io.images import read_image
from n3cli.store.checkpoint import ModelInfo, save_model

ARGS = dict(in_channels=1, out_channels=1, features=8, depth=3, stages=2, mid_channels=4, k=2,
            embed_features=8, embed_channels=4)


@pytest.fixture(scope="module")
def sr_model(tmp_path_factory):
    from n3cli.models.nets import N3Net

    torch.manual_seed(1)
    net = N3Net(**ARGS)
    path = tmp_path_factory.mktemp("sr") / "sr.safetensors"
    info = ModelInfo(name="tiny-sr", arch="n3net", args=ARGS, task="sr", color="gray", scale=2,
                     extra={"scales": [2, 3]})
    save_model(path, net, info)
    return path


def image(h, w, c, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    base = np.stack([0.5 + 0.3 * np.sin(7 * xx + 2 * yy), 0.4 + 0.3 * np.cos(6 * yy), 0.3 + 0.4 * xx * yy], -1)
    return np.clip(base[..., :c] + rng.normal(0, 0.02, (h, w, c)), 0, 1).astype(np.float32)


def test_ycbcr_round_trip():
    px = image(20, 30, 3)
    assert np.allclose(ycbcr_to_rgb(rgb_to_ycbcr(px)), px, atol=1e-6)


@pytest.mark.parametrize("scale,size,c", [(2, (37, 53), 3), (3, (41, 29), 1)])
def test_output_is_exactly_scale_times_the_input(sr_model, scale, size, c):
    m = api.load_upscaler(sr_model, scale, "cpu")
    out = api.upscale(m, image(*size, c), scale)
    assert out.shape == (size[0] * scale, size[1] * scale, c)
    assert np.isfinite(out).all()


def test_tiled_equals_untiled(sr_model):
    m = api.load_upscaler(sr_model, 2, "cpu")
    px = image(150, 170, 3)
    whole = api.upscale(m, px, 2, tile=4096)
    tiles = []
    tiled = api.upscale(m, px, 2, tile=60, on_tile=lambda d, t: tiles.append(t))
    assert tiles[-1] >= 4
    assert np.abs(tiled - whole).max() <= 1e-4


def test_cli_keeps_16_bit_and_upscales_alpha_without_the_model(sr_model, tmp_path):
    src = tmp_path / "in.tif"
    rgb = np.rint(image(45, 50, 3) * 65535).astype(np.uint16)
    alpha = np.rint(np.linspace(0, 65535, 45 * 50).reshape(45, 50)).astype(np.uint16)
    tifffile.imwrite(src, np.concatenate([rgb, alpha[..., None]], 2), photometric="rgb", extrasamples=["unassalpha"])
    dst = tmp_path / "out.tif"
    res = CliRunner().invoke(cli, ["upscale", "-q", str(src), "-o", str(dst), "--scale", "2", "--model", str(sr_model)])
    assert res.exit_code == 0, res.output
    arr = tifffile.imread(dst)
    assert arr.dtype == np.uint16 and arr.shape == (90, 100, 4)
    expect = np.rint(np.clip(imresize(alpha / 65535.0, 2), 0, 1) * 65535)
    assert np.abs(arr[..., 3].astype(np.int64) - expect).max() <= 1
    assert read_image(dst).channels == 3


def test_bad_inputs_and_wrong_models_fail_in_one_line(sr_model, tmp_path):
    from n3cli.store.zoo import default_for

    good = tmp_path / "ok.png"
    from PIL import Image as PILImage

    PILImage.fromarray(np.rint(image(30, 30, 3) * 255).astype(np.uint8)).save(good)
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png")
    cases = [
        (["upscale", "-q", str(bad), "-o", str(tmp_path / "b.png"), "-s", "2", "-m", str(sr_model)], "not a readable PNG"),
        (["upscale", "-q", str(good), "-o", str(tmp_path / "c.png"), "-s", "4", "-m", str(sr_model)], "not x4"),
        (["upscale", "-q", str(good), "-o", str(tmp_path / "d.png"), "-s", "2", "-m", str(default_for("gray").path)],
         "not a super-resolution model"),
    ]
    for args, needle in cases:
        res = CliRunner().invoke(cli, args)
        assert res.exit_code != 0
        errors = [ln for ln in res.stderr.splitlines() if "error" in ln]
        assert errors and needle in errors[0], res.stderr
        assert "Traceback" not in res.output
        assert not Path(args[4]).exists()


def test_eval_sr_reports_model_and_bicubic_per_scale(sr_model, tmp_path):
    import json

    from PIL import Image as PILImage

    data = tmp_path / "set"
    data.mkdir()
    PILImage.fromarray(np.rint(image(61, 70, 3) * 255).astype(np.uint8)).save(data / "a.png")
    PILImage.fromarray(np.rint(image(50, 47, 1, seed=2)[..., 0] * 255).astype(np.uint8)).save(data / "b.png")
    res = CliRunner().invoke(cli, ["eval", "sr", "--scale", "2", "--scale", "3", "--data", str(data),
                                   "--model", str(sr_model), "--json"])
    assert res.exit_code == 0, res.output
    rep = json.loads(res.stdout)
    assert rep["task"] == "sr" and [r["scale"] for r in rep["results"]] == [2, 3]
    for r in rep["results"]:
        assert len(r["per_image"]) == 2
        assert {"mean_psnr", "bicubic_psnr", "mean_ssim"} <= set(r)
        assert 10 < r["bicubic_psnr"] < 60 and np.isfinite(r["mean_psnr"])
    res = CliRunner().invoke(cli, ["eval", "sr", "--data", str(data), "--model", str(sr_model)])
    assert res.exit_code == 2 and "needs --scale" in res.stderr


def test_eval_sr_of_a_pass_through_model_gives_the_published_bicubic_number(datasets, tmp_path):
    from n3cli.models.registry import build_model

    args = {"in_channels": 1, "out_channels": 1, "features": 8, "depth": 3}
    net = build_model("dncnn", args)
    with torch.no_grad():  # residual network whose last layer is zero: its output is its bicubic input
        net.blocks[0].conv2.weight.zero_()
        net.blocks[0].conv2.bias.zero_()
    path = tmp_path / "identity.safetensors"
    save_model(path, net, ModelInfo(name="identity", arch="dncnn", args=args, task="sr", scale=2))
    rep = api.evaluate_upscale(str(path), datasets / "Set5", [2], device="cpu")
    r = rep["results"][0]
    assert abs(r["mean_psnr"] - r["bicubic_psnr"]) < 0.02
    assert abs(r["mean_psnr"] - 33.66) <= 0.03


SHIPPED_SR = [n for n in ("n3net-sr", "vdsr-sr") if n in __import__("n3cli.store.zoo", fromlist=["names"]).names()]


@pytest.mark.parametrize("name", SHIPPED_SR or [pytest.param("none", marks=pytest.mark.skip("no shipped SR model"))])
@pytest.mark.parametrize("scale", [2, 4])
def test_shipped_sr_models_beat_bicubic_on_the_bundled_photo(name, scale):
    """The protocol on the bundled astronaut crop: LR by MATLAB bicubic, Y-PSNR with `scale` px shaved."""
    from n3cli.eval.metrics import psnr
    from n3cli.imaging.resize import make_lr

    clean = read_image(EXAMPLES / "astronaut_clean.png").pixels
    y = np.rint(rgb_to_ycbcr(clean)[..., 0] * 255)
    y = y[: y.shape[0] // scale * scale, : y.shape[1] // scale * scale]
    lr = make_lr(y, scale) / 255.0
    out = api.upscale(api.load_upscaler(name, scale, device="cpu"), lr[..., None].astype(np.float32), scale)
    bicubic = imresize(lr * 255.0, scale) / 255.0
    s = scale
    crop = (slice(s, -s), slice(s, -s))
    gain = psnr(np.rint(out[..., 0] * 255)[crop] / 255, y[crop] / 255) - psnr(np.rint(bicubic * 255)[crop] / 255,
                                                                               y[crop] / 255)
    assert gain > 0.5, f"{name} x{scale}: {gain:.2f} dB over bicubic"


def test_upscale_without_model_uses_the_shipped_default(tmp_path):
    from n3cli.store.zoo import default_for, names

    if not any(n in names() for n in ("n3net-sr", "vdsr-sr")):
        pytest.skip("no shipped SR model")
    from PIL import Image as PILImage

    src = tmp_path / "in.png"
    PILImage.fromarray(np.rint(image(40, 52, 3) * 255).astype(np.uint8)).save(src)
    res = CliRunner().invoke(cli, ["upscale", "-q", str(src), "-o", str(tmp_path / "out.png"), "-s", "3"])
    assert res.exit_code == 0, res.output
    assert read_image(tmp_path / "out.png").pixels.shape == (120, 156, 3)
    assert default_for("sr_x3").name in names()


def _noisy_lr(tmp_path, scale: int, sigma: float):
    """The bundled clean crop as HR, its MATLAB-bicubic LR with white noise saved as an 8-bit PNG."""
    from PIL import Image as PILImage

    hr = read_image(EXAMPLES / "astronaut_clean.png").pixels.astype(np.float64)
    hr = hr[: hr.shape[0] // scale * scale, : hr.shape[1] // scale * scale]
    lr = np.clip(imresize(hr, 1.0 / scale), 0, 1)
    noisy = lr + np.random.default_rng(3).normal(0, sigma / 255.0, lr.shape)
    src = tmp_path / "noisy_lr.png"
    PILImage.fromarray(np.rint(np.clip(noisy, 0, 1) * 255).astype(np.uint8)).save(src)
    return hr, src


@pytest.mark.slow
def test_denoise_first_brings_a_noisy_photo_closer_to_the_original(tmp_path):
    """`--denoise`: the shipped SR model sharpens noise; denoised first, the enlargement of a noisy
    (sigma 15) LR photo is closer to the clean original, and the record says what denoised it."""
    import json

    from n3cli.eval.metrics import psnr

    hr, src = _noisy_lr(tmp_path, 2, 15.0)
    y = lambda p: rgb_to_ycbcr(read_image(p).pixels if isinstance(p, Path) else p)[2:-2, 2:-2, 0]  # noqa: E731
    outs = {}
    for key, extra in (("plain", []), ("denoise", ["--denoise"])):
        outs[key] = tmp_path / f"{key}.png"
        res = CliRunner().invoke(cli, ["upscale", "-q", str(src), "-o", str(outs[key]), "-s", "2", "--json", *extra])
        assert res.exit_code == 0, res.output
        rec = json.loads(res.stdout.splitlines()[-1])
        assert read_image(outs[key]).pixels.shape == hr.shape
    assert rec["denoise_model"] == "n3net-color" and rec["noise_kind"] == "gaussian"  # the last: --denoise
    assert abs(rec["sigma"] - 15.0) < 2.0, rec
    assert "denoise_model" not in json.loads(CliRunner().invoke(
        cli, ["upscale", "-q", str(src), "-o", str(tmp_path / "again.png"), "-s", "2", "--json"]).stdout)
    plain, denoised = (psnr(y(outs[k]), y(hr)) for k in ("plain", "denoise"))
    assert denoised > plain + 1.5, f"--denoise {denoised:.2f} dB, without {plain:.2f} dB"


def test_denoise_options_steer_the_denoiser_and_need_denoise(tmp_path):
    _, src = _noisy_lr(tmp_path, 2, 15.0)
    bad = CliRunner().invoke(cli, ["upscale", str(src), "-o", str(tmp_path / "x.png"), "-s", "2", "--sigma", "10"])
    assert bad.exit_code == 2 and "--denoise" in bad.output
    assert not (tmp_path / "x.png").exists()
    bad = CliRunner().invoke(cli, ["upscale", str(src), "-o", str(tmp_path / "x.png"), "-s", "2", "--noise", "real"])
    assert bad.exit_code == 2 and "--denoise" in bad.output
    if "vdsr-sr" not in __import__("n3cli.store.zoo", fromlist=["names"]).names():
        pytest.skip("no shipped SR model")
    up = api.load_upscaler(None, 2, "cpu")
    outs = {}
    for sigma in (0.0, 30.0):
        dst = tmp_path / f"s{sigma:g}.png"
        used = api.upscale_file(src, dst, 2, up, denoiser=api.ModelCache(None, "cpu", photo_noise="gaussian"),
                                sigma=sigma)
        assert used["sigma"] == sigma and used["denoise_model"] == "n3net-color" and "noise_kind" not in used
        outs[sigma] = read_image(dst).pixels
    # told no noise, the denoiser keeps the grain; told sigma 30, it smooths it away
    grain = {s: float(np.std(np.diff(o[..., 1], axis=1))) for s, o in outs.items()}
    assert grain[30.0] < 0.6 * grain[0.0], grain
    with pytest.raises(Exception, match="denoiser"):
        api.upscale_file(src, tmp_path / "y.png", 2, up, sigma=5.0)


def test_a_ray_worker_denoises_first_as_the_local_run_does(tmp_path):
    """`n3 upscale --denoise --ray`: each worker gets the options and writes the local run's file."""
    from n3cli.api.cluster import ImageWorker

    if "vdsr-sr" not in __import__("n3cli.store.zoo", fromlist=["names"]).names():
        pytest.skip("no shipped SR model")
    _, src = _noisy_lr(tmp_path, 2, 15.0)
    local = tmp_path / "local.png"
    api.upscale_file(src, local, 2, api.load_upscaler(None, 2, "cpu"), denoiser=api.ModelCache(None, "cpu"),
                     sigma=12.0)
    worker = ImageWorker("upscale", None, {"scale": 2, "denoise": True, "sigma": 12.0, "photo_noise": "auto"}, "cpu")
    status, line, _, rec = worker.run(str(src), str(tmp_path / "ray.png"), False)
    assert status == "done" and "denoised first with n3net-color" in line, line
    assert rec["denoise_model"] == "n3net-color" and rec["sigma"] == 12.0
    assert (tmp_path / "ray.png").read_bytes() == local.read_bytes()
    # --width: the factor is each image's, and the worker's model serves every factor
    worker = ImageWorker("upscale", None, {"scale": None, "width": 200}, "cpu")
    status, line, _, rec = worker.run(str(src), str(tmp_path / "w.png"), False)
    assert status == "done" and rec["scale"] == pytest.approx(200 / 128) and "(x1.562)" in line, line
    assert read_image(tmp_path / "w.png").pixels.shape[:2] == (200, 200)


def test_compare_puts_the_result_beside_the_same_region_enlarged_bicubically(sr_model, tmp_path):
    from PIL import Image as PILImage

    src, dst = tmp_path / "in.png", tmp_path / "out.png"
    px = np.rint(image(300, 280, 3) * 255).astype(np.uint8)
    PILImage.fromarray(px).save(src)
    args = ["upscale", "-q", str(src), "-o", str(dst), "-s", "2", "--model", str(sr_model), "--compare"]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    side = read_image(tmp_path / "out.compare.png").pixels
    assert side.shape == (512, 2 * 512 + 8, 3)
    left, right = side[:, :512], side[:, 520:]
    y, x = (300 - 256) // 2 * 2, (280 - 256) // 2 * 2  # the output's centre 512 px
    assert np.abs(right - read_image(dst).pixels[y : y + 512, x : x + 512]).max() <= 1 / 255 + 1e-6
    bicubic = np.clip(imresize(px / 255.0, 2), 0, 1)[y : y + 512, x : x + 512]
    assert np.abs(left - bicubic).max() <= 1 / 255 + 1e-6
    again = CliRunner().invoke(cli, [*args, "--overwrite"])
    assert again.exit_code == 0 and "out.compare.png" in again.output


@pytest.mark.slow
def test_denoise_strength_keeps_that_share_of_the_grain(tmp_path):
    """--strength 0 keeps all of the noise (the plain enlargement, byte for byte), 0.5 about half."""
    _, src = _noisy_lr(tmp_path, 2, 15.0)
    outs = {}
    runs = {"plain": [], "s0": ["--denoise", "--strength", "0"], "s05": ["--denoise", "--strength", "0.5"],
            "s1": ["--denoise"]}
    for key, extra in runs.items():
        outs[key] = tmp_path / f"{key}.png"
        res = CliRunner().invoke(cli, ["upscale", "-q", str(src), "-o", str(outs[key]), "-s", "2", *extra])
        assert res.exit_code == 0, res.output
    assert outs["s0"].read_bytes() == outs["plain"].read_bytes()
    px = {k: read_image(p).pixels.astype(np.float64) for k, p in outs.items()}
    half = np.abs(px["s05"] - px["plain"]).mean() / np.abs(px["s1"] - px["plain"]).mean()
    assert 0.45 < half < 0.55, half
    bad = CliRunner().invoke(cli, ["upscale", str(src), "-o", str(tmp_path / "x.png"), "-s", "2", "--strength", "0.5"])
    assert bad.exit_code == 2 and "--denoise" in bad.output


def test_a_scale_between_whole_ones_enlarges_by_the_next_and_shrinks(sr_model, tmp_path):
    """x2.5: the model at x3, then MATLAB bicubic to ceil(side * 2.5); alpha to the same size."""
    from n3cli.imaging.resize import resize_to

    m = api.load_upscaler(sr_model, 3, "cpu")
    px = image(41, 30, 3)
    out = api.upscale(m, px, 2.5)
    assert out.shape == (103, 75, 3)
    assert np.abs(out - resize_to(api.upscale(m, px, 3), 103, 75)).max() < 1e-6
    assert api.sr_factor(1.5) == 2 and api.sr_factor(2) == 2 and api.sr_factor(2.01) == 3
    src, dst = tmp_path / "in.tif", tmp_path / "out.tif"
    rgb = np.rint(px * 65535).astype(np.uint16)
    alpha = np.full((41, 30, 1), 40000, np.uint16)
    tifffile.imwrite(src, np.concatenate([rgb, alpha], 2), photometric="rgb", extrasamples=["unassalpha"])
    res = CliRunner().invoke(cli, ["upscale", "-q", str(src), "-o", str(dst), "-s", "2.5", "-m", str(sr_model)])
    assert res.exit_code == 0 and "(x2.5)" in res.output, res.output
    arr = tifffile.imread(dst)
    assert arr.shape == (103, 75, 4) and arr.dtype == np.uint16 and np.all(arr[..., 3] == 40000)
    for bad in ("1", "4.5", "0.5"):
        res = CliRunner().invoke(cli, ["upscale", str(src), "-o", str(tmp_path / "x.tif"), "-s", bad])
        assert res.exit_code == 2 and not (tmp_path / "x.tif").exists()


@pytest.mark.parametrize("name", SHIPPED_SR or [pytest.param("none", marks=pytest.mark.skip("no shipped SR model"))])
def test_shipped_sr_models_beat_bicubic_between_whole_scales(name):
    """x1.5 on the bundled crop (255 px, LR 170 px by MATLAB bicubic): the model at x2, shrunk."""
    from n3cli.eval.metrics import psnr

    clean = read_image(EXAMPLES / "astronaut_clean.png").pixels[:255, :255].astype(np.float64)
    lr = (np.rint(np.clip(imresize(clean, 1 / 1.5), 0, 1) * 255) / 255).astype(np.float32)
    out = api.upscale(api.load_upscaler(name, 2, device="cpu"), lr, 1.5)
    assert out.shape == clean.shape
    crop = (slice(4, -4), slice(4, -4))
    y = lambda a: rgb_to_ycbcr(np.clip(a, 0, 1))[..., 0][crop]  # noqa: E731
    gain = psnr(y(out), y(clean)) - psnr(y(imresize(lr, 1.5)), y(clean))
    assert gain > 0.5, f"{name} x1.5: {gain:.2f} dB over bicubic"


def test_width_or_height_sets_the_output_size_and_a_batch_reports_what_it_cannot_reach(sr_model, tmp_path):
    """--width: each image to that width (x2.5 by the model at x3 and shrunk, x3 exactly); an image
    that would shrink or grow past 4x fails alone, in one line naming it."""
    import json

    from PIL import Image as PILImage

    d = tmp_path / "in"
    d.mkdir()
    for name, (h, w) in {"a.png": (40, 60), "b.png": (60, 50), "c.png": (200, 300), "d.png": (20, 30)}.items():
        PILImage.fromarray(np.rint(image(h, w, 3) * 255).astype(np.uint8)).save(d / name)
    out = tmp_path / "out"
    res = CliRunner().invoke(cli, ["upscale", "-q", str(d), "-o", str(out), "--width", "150", "-m", str(sr_model),
                                   "--json"])
    assert res.exit_code == 1, res.output
    assert "c.png: width 150 px is x0.5 of 300 px" in res.output and "d.png: width 150 px is x5 of 30 px" in res.output
    assert {p.name: PILImage.open(p).size for p in out.iterdir()} == {"a.png": (150, 100), "b.png": (150, 180)}
    scales = {Path(r["input"]).name: r.get("scale") for r in map(json.loads, res.stdout.splitlines())}
    assert scales == {"a.png": 2.5, "b.png": 3.0, "c.png": None, "d.png": None}
    res = CliRunner().invoke(cli, ["upscale", "-q", str(d / "a.png"), "-o", str(tmp_path / "h.png"), "--height", "100",
                                   "-m", str(sr_model)])
    assert res.exit_code == 0 and PILImage.open(tmp_path / "h.png").size == (150, 100), res.output
    for args in (["--width", "150", "-s", "2"], []):
        res = CliRunner().invoke(cli, ["upscale", str(d / "a.png"), "-o", str(tmp_path / "x.png"), *args])
        assert res.exit_code == 2 and "--width" in res.output and not (tmp_path / "x.png").exists()
