"""Real camera noise: `n3 eval real` on noisy/clean pairs (both layouts) and on synthesized pairs,
and `n3 denoise --noise real`."""
import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image as PILImage
from shared_paths import REPO

from n3cli import api
from n3cli.cli.main import cli
from n3cli.errors import N3Error
from n3cli.eval.metrics import psnr
from n3cli.imaging.estimate import estimate_sigma
from n3cli.io.folders import list_pairs
from n3cli.io.images import read_image

CLEAN = read_image(REPO / "examples" / "astronaut_clean.png").pixels[:, :, :3]


def write(path, px):
    path.parent.mkdir(parents=True, exist_ok=True)
    PILImage.fromarray(np.rint(np.clip(px, 0, 1) * 255).astype(np.uint8)).save(path)


def crops(n=2, size=64):
    return [np.ascontiguousarray(CLEAN[20 + 50 * i : 20 + 50 * i + size, 40 : 40 + size]) for i in range(n)]


def noisy_of(px, seed):
    return px + np.random.default_rng(seed).normal(0, 12 / 255, px.shape)


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_pairs_are_found_in_both_layouts_and_a_lone_file_is_named(tmp_path):
    for i, px in enumerate(crops()):
        write(tmp_path / "a" / "noisy" / f"p{i}.png", noisy_of(px, i))
        write(tmp_path / "a" / "clean" / f"p{i}.png", px)
        write(tmp_path / "b" / f"p{i}_real.png", noisy_of(px, i))
        write(tmp_path / "b" / f"p{i}_mean.png", px)
    for layout in ("a", "b"):
        pairs = list_pairs(tmp_path / layout)
        assert [name for name, _, _ in pairs] == ["p0", "p1"]
    (tmp_path / "b" / "p1_mean.png").unlink()
    with pytest.raises(N3Error, match="p1_real.png: no X_mean partner"):
        list_pairs(tmp_path / "b")
    with pytest.raises(N3Error, match="no image pairs"):
        list_pairs(tmp_path / "a" / "clean")


def test_eval_real_scores_8bit_outputs_with_the_estimated_sigma(tmp_path):
    for i, px in enumerate(crops()):
        write(tmp_path / "d" / f"p{i}_real.png", noisy_of(px, i))
        write(tmp_path / "d" / f"p{i}_mean.png", px)
    res = run("eval", "real", "-m", "n3net-color", "--data", tmp_path / "d", "--json", "--save", tmp_path / "out")
    assert res.exit_code == 0, res.output
    rep = json.loads(res.output)
    r = rep["results"][0]
    assert rep["task"] == "real" and r["pairs"] == 2
    for rec, (name, noisy, clean) in zip(r["per_image"], api.read_pairs(tmp_path / "d")):
        assert rec["sigma_estimated"] == pytest.approx(estimate_sigma(noisy), abs=1e-3)
        out = api.denoise(api.load_denoiser("n3net-color"), noisy, estimate_sigma(noisy))
        out8 = np.rint(np.clip(out, 0, 1) * 255) / 255
        assert rec["psnr"] == pytest.approx(psnr(out8, clean), abs=1e-6)
        assert rec["psnr"] > rec["noisy_psnr"] + 3  # sigma-12 Gaussian noise is what this model knows
        saved = read_image(tmp_path / "out" / f"{name}.png").pixels
        assert psnr(saved, clean) == pytest.approx(rec["psnr"], abs=1e-6)  # the very outputs scored


def test_eval_real_synthesizes_the_same_pairs_for_a_seed(tmp_path):
    for i, px in enumerate(crops()):
        write(tmp_path / "c" / f"c{i}.png", px)
    args = ("eval", "real", "-m", "n3net-color", "--data", tmp_path / "c", "--synthesize", "--json")
    one, two = (json.loads(run(*args).output) for _ in range(2))
    other = json.loads(run(*args, "--seed", "1").output)
    assert one["results"] == two["results"]
    assert one["results"][0]["noisy_psnr"] != other["results"][0]["noisy_psnr"]
    assert one["results"][0]["pairs_from"] == "camera noise synthesis, seed 0"


def test_noise_real_refuses_a_named_model_and_an_unknown_word(tmp_path):
    src = tmp_path / "in.png"
    write(src, noisy_of(crops(1)[0], 0))
    res = run("denoise", src, "-o", tmp_path / "out.png", "--noise", "real", "-m", "n3net-color")
    assert res.exit_code == 2 and "--noise real" in res.output
    res = run("denoise", src, "-o", tmp_path / "out.png", "--noise", "poisson")
    assert res.exit_code == 2 and "expected A,B" in res.output
    assert not (tmp_path / "out.png").exists()


def test_noise_real_picks_the_real_noise_model_for_photos_and_keeps_the_raw_model(tmp_path):
    from n3cli.api.cluster import ImageWorker

    color, gray = tmp_path / "in" / "c.png", tmp_path / "in" / "g.png"
    px = crops(1)[0]
    write(color, noisy_of(px, 0))
    write(gray, noisy_of(px.mean(2, keepdims=True).repeat(3, 2), 1)[:, :, 0:1].repeat(3, 2))
    PILImage.open(gray).convert("L").save(gray)
    res = run("denoise", tmp_path / "in", "-o", tmp_path / "out", "--noise", "real", "-q")
    assert res.exit_code == 0, res.output
    assert res.output.count("with n3net-color-real") == 2, res.output
    assert read_image(tmp_path / "out" / "g.png").channels == 1  # a gray photo stays gray
    out = read_image(tmp_path / "out" / "c.png").pixels
    assert psnr(out, px) > psnr(read_image(color).pixels, px) + 2
    cache = api.ModelCache(None, photo_noise="real")
    assert cache.for_raw().info.name == "n3net-raw"
    # the same choice on a Ray worker (run here as a plain object)
    worker = ImageWorker("denoise", None, {"photo_noise": "real"})
    status, line, _, _ = worker.run(str(color), str(tmp_path / "w.png"), False)
    assert status == "done" and "with n3net-color-real" in line
    assert np.array_equal(read_image(tmp_path / "w.png").pixels, read_image(tmp_path / "out" / "c.png").pixels)


def test_auto_the_default_picks_each_colour_photo_s_model_by_its_noise(tmp_path):
    from n3cli.api.cluster import ImageWorker
    from n3cli.eval.protocols import camera_pairs

    src = tmp_path / "in"
    src.mkdir()
    (src / "white.png").write_bytes((REPO / "examples" / "astronaut_noisy.png").read_bytes())  # Gaussian sigma 25
    (_, camera, _), = camera_pairs([("a", CLEAN)], seed=1)
    PILImage.fromarray(np.rint(np.clip(camera, 0, 1) * 255).astype(np.uint8)).save(src / "camera.jpg", quality=90)
    gray = np.rint(np.clip(CLEAN.mean(2) + np.random.default_rng(0).normal(0, 15 / 255, CLEAN.shape[:2]), 0, 1) * 255)
    PILImage.fromarray(gray.astype(np.uint8)).save(src / "gray.png")
    res = run("denoise", src, "-o", tmp_path / "out", "-q")
    assert res.exit_code == 0, res.output
    line = {n: next(x for x in res.output.splitlines() if f"{n}." in x) for n in ("white", "camera", "gray")}
    assert "with n3net-color (sigma" in line["white"] and "white noise)" in line["white"], res.output
    assert "with n3net-color-real (sigma" in line["camera"] and "camera noise)" in line["camera"], res.output
    assert "with n3net-gray (sigma" in line["gray"] and "noise)" not in line["gray"], res.output  # gray: no kind read
    # forced: the Gaussian model on the camera photo, with no reading
    res = run("denoise", src / "camera.jpg", "-o", tmp_path / "g.jpg", "--noise", "gaussian")
    assert res.exit_code == 0 and "with n3net-color (sigma" in res.output and "noise)" not in res.output, res.output
    res = run("denoise", src / "camera.jpg", src / "white.png", "--print-noise")
    assert res.exit_code == 0, res.output
    cam, white = res.output.splitlines()
    assert "camera noise (step ratio" in cam and "white noise (step ratio" in white
    for printed, name in ((cam, "camera"), (white, "white")):  # the sigma printed is the one the model got
        given = float(line[name].split("(sigma ")[1].split(",")[0])
        assert float(printed.split("sigma=")[1].split()[0]) == pytest.approx(given, abs=0.051), (printed, line[name])
    used = api.denoise_file(src / "camera.jpg", tmp_path / "api.png")  # the library's default is the CLI's
    assert (used["model"], used["noise_kind"]) == ("n3net-color-real", "real")
    worker = ImageWorker("denoise", None, {})  # and a Ray worker's
    status, wline, _, _ = worker.run(str(src / "white.png"), str(tmp_path / "w.png"), False)
    assert status == "done" and "with n3net-color (" in wline, wline
    assert np.array_equal(read_image(tmp_path / "w.png").pixels, read_image(tmp_path / "out" / "white.png").pixels)


def test_each_model_is_given_the_reading_its_noise_map_stands_for(tmp_path):
    """The real-noise model was trained on the all-patches reading (its map says so); the Gaussian
    models on the true sigma, which the weak-texture reading is closer to on white noise, while on
    a camera's correlated noise it reads only the finest scale. `n3 denoise` gives each its own,
    and reports the one it gave."""
    from n3cli.eval.protocols import camera_pairs
    from n3cli.pipelines.denoise import estimate_level, noise_estimator

    real, gauss = api.load_denoiser("n3net-color-real"), api.load_denoiser("n3net-color")
    assert noise_estimator(real.info) == noise_estimator(real.info, "gaussian") == "all-patches"
    assert noise_estimator(gauss.info, "gaussian") == "weak-texture"
    assert noise_estimator(gauss.info, "real") == "all-patches"
    assert noise_estimator(api.load_denoiser("n3net-gray").info) == "weak-texture"
    (_, camera, _), = camera_pairs([("a", CLEAN)], seed=1)
    assert estimate_level(gauss.info, camera) == estimate_sigma(camera, method="all-patches")
    noisy = np.clip(crops(1, 96)[0] + np.random.default_rng(3).normal(0, 8 / 255, (96, 96, 3)), 0, 1).astype(np.float32)
    ours = estimate_sigma(noisy, method="all-patches")
    assert estimate_level(real.info, noisy) == ours != estimate_sigma(noisy)
    np.testing.assert_array_equal(api.denoise(real, noisy), api.denoise(real, noisy, ours))
    write(tmp_path / "n.png", noisy)
    saved = read_image(tmp_path / "n.png").pixels
    res = run("denoise", tmp_path / "n.png", "-o", tmp_path / "o.png", "--noise", "real", "-q")
    assert res.exit_code == 0, res.output
    assert f"sigma {estimate_sigma(saved, method='all-patches'):.1f}" in res.output, res.output
