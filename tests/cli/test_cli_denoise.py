"""`n3 denoise` end to end on generated images: formats, batches, and every bad-input path."""

from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
from click.testing import CliRunner
from PIL import Image as PILImage

from n3cli.cli.main import cli
from n3cli.eval.metrics import psnr
from n3cli.io.images import read_image
from n3cli.models.registry import build_model
from n3cli.store.checkpoint import ModelInfo, save_model


def scene(h=96, w=96, c=3):
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    base = [0.5 + 0.3 * np.sin(6 * xx + 3 * yy), 0.4 + 0.3 * np.cos(5 * yy), 0.3 + 0.4 * xx * yy]
    return np.stack(base[:c], -1).astype(np.float32)


def noisy_file(path, c=3, dtype=np.uint8, alpha=False, sigma=25, seed=0):
    clean = scene(c=c)
    rng = np.random.default_rng(seed)
    noisy = np.clip(clean + rng.normal(0, sigma / 255, clean.shape), 0, 1)
    m = np.iinfo(dtype).max
    arr = np.rint(noisy * m).astype(dtype)
    a = None
    if alpha:
        a = rng.integers(0, m + 1, size=clean.shape[:2]).astype(dtype)
        arr = np.concatenate([arr, a[:, :, None]], 2)
    if arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if path.suffix == ".tif":
        tifffile.imwrite(path, arr, photometric="rgb" if c == 3 else "minisblack",
                         extrasamples=["unassalpha"] if alpha else None)
    elif dtype == np.uint16 or alpha and c == 1:
        from n3cli.io.images import from_array, write_image

        write_image(path, from_array(arr, None, None, path))
    else:
        PILImage.fromarray(arr).save(path, **({"quality": 98, "subsampling": 0} if path.suffix == ".jpg" else {}))
    return clean, a


def run(*args):
    return CliRunner().invoke(cli, ["denoise", "-q", *map(str, args)])


def one_error_line(res, needle):
    lines = [l for l in res.stderr.splitlines() if l.startswith("error:")]
    assert len(lines) == 1, res.stderr
    assert needle in lines[0]
    assert "Traceback" not in res.output


@pytest.mark.parametrize("ext,c,dtype,alpha", [
    (".png", 1, np.uint8, False), (".png", 3, np.uint8, False), (".png", 3, np.uint16, False),
    (".png", 3, np.uint8, True), (".png", 1, np.uint16, True), (".jpg", 3, np.uint8, False),
    (".tif", 1, np.uint16, False), (".tif", 3, np.uint16, True), (".tif", 3, np.uint8, False),
])
def test_round_trip_keeps_format_depth_alpha_and_removes_noise(tmp_path, ext, c, dtype, alpha):
    src = tmp_path / f"in{ext}"
    clean, a = noisy_file(src, c, dtype, alpha)
    dst = tmp_path / f"out{ext}"
    res = run(src, "-o", dst)
    assert res.exit_code == 0, res.output
    out, inp = read_image(dst), read_image(src)
    assert out.dtype == inp.dtype and out.pixels.shape == inp.pixels.shape
    if alpha:
        np.testing.assert_array_equal(out.alpha, a)  # byte for byte
    assert psnr(out.pixels, clean) > psnr(inp.pixels, clean) + 4


def test_bad_inputs_give_one_line_and_no_output(tmp_path):
    out = tmp_path / "out.png"
    (tmp_path / "text.png").write_text("this is not a png")
    good = tmp_path / "good.png"
    noisy_file(good)
    (tmp_path / "corrupt.png").write_bytes(good.read_bytes()[:200])
    for bad, needle in [(tmp_path / "missing.png", "missing.png"), (tmp_path / "text.png", "text.png"),
                        (tmp_path / "corrupt.png", "corrupt.png")]:
        res = run(bad, "-o", out)
        assert res.exit_code != 0
        one_error_line(res, needle)
        assert not out.exists() and not list(tmp_path.glob(".out.png.*"))
    res = run(good, "-o", out, "--model", "no-such-model")
    assert res.exit_code != 0 and not out.exists()
    one_error_line(res, "no-such-model")
    blocked = good / "sub" / "out.png"  # a parent that is a file: the error names the output asked for
    res = run(good, "-o", blocked)
    assert res.exit_code != 0
    one_error_line(res, f"{blocked}: cannot write there")
    res = run(tmp_path / "nothing*.png", "-o", tmp_path / "o")
    assert res.exit_code == 2
    one_error_line(res, f"no input images found in {tmp_path / 'nothing*.png'}")
    net = build_model("n3net", {"in_channels": 1, "out_channels": 1, "features": 8})
    save_model(tmp_path / "wrong.safetensors", net,
               ModelInfo("w", "n3net", {"in_channels": 1, "out_channels": 1, "features": 16}))
    res = run(good, "-o", out, "--model", tmp_path / "wrong.safetensors")
    assert res.exit_code != 0 and not out.exists()
    one_error_line(res, "wrong.safetensors")


def test_batch_folder_skips_existing_reports_failures_and_never_overwrites_input(tmp_path):
    src = tmp_path / "shots"
    (src / "sub").mkdir(parents=True)
    noisy_file(src / "a.jpg")
    noisy_file(src / "b.png", c=1)
    noisy_file(src / "sub" / "c.tif")
    (src / "broken.png").write_text("nope")
    out = tmp_path / "clean"
    res = run(src, "-o", out)
    assert res.exit_code == 1
    assert sorted(p.name for p in out.iterdir()) == ["a.jpg", "b.png"]
    assert "denoised 2, skipped 0, failed 1" in res.stderr and "broken.png" in res.stderr
    res = run(src / "a.jpg", src / "b.png", "-o", out)
    assert res.exit_code == 0 and "skipped 2" in res.stderr
    res = run(src, "-o", tmp_path / "tree", "--recursive", "--ext", "png")
    assert (tmp_path / "tree" / "sub" / "c.png").exists() and (tmp_path / "tree" / "a.png").exists()
    assert not list((tmp_path / "tree").rglob("*.jpg.png"))
    before = (src / "a.jpg").read_bytes()
    res = run(src / "a.jpg", "-o", src / "a.jpg", "--overwrite")
    assert res.exit_code != 0 and (src / "a.jpg").read_bytes() == before
    res = run(str(src / "*.png"), "-o", tmp_path / "glob", "--overwrite")
    assert (tmp_path / "glob" / "b.png").exists()


def test_sigma_steers_the_colour_model_and_strength_zero_is_identity(tmp_path):
    src = tmp_path / "in.png"
    noisy_file(src, sigma=15)
    outs = {}
    for s in (5, 25, 50):
        res = run(src, "-o", tmp_path / f"s{s}.png", "--sigma", s)
        assert res.exit_code == 0, res.output
        outs[s] = read_image(tmp_path / f"s{s}.png").pixels
    rough = {s: float(np.abs(np.diff(o, axis=1)).mean()) for s, o in outs.items()}
    assert rough[5] > rough[25] > rough[50]
    res = run(src, "-o", tmp_path / "id.png", "--strength", "0")
    np.testing.assert_array_equal(read_image(tmp_path / "id.png").pixels, read_image(src).pixels)


def test_device_cuda_without_gpu_is_an_error(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    src = tmp_path / "in.png"
    noisy_file(src)
    res = run(src, "-o", tmp_path / "o.png", "--device", "cuda")
    assert res.exit_code != 0 and not (tmp_path / "o.png").exists()
    one_error_line(res, "cuda")


def test_api_accepts_a_spatially_varying_noise_map():
    from n3cli import api

    model = api.load_denoiser(color="rgb")
    noisy = np.clip(scene() + np.random.default_rng(0).normal(0, 25 / 255, (96, 96, 3)), 0, 1).astype(np.float32)
    smap = np.full((96, 96), 5.0, np.float32)
    smap[:, 48:] = 50.0
    out = api.denoise(model, noisy, smap)
    left = np.abs(np.diff(out[:, 8:40], axis=1)).mean()
    right = np.abs(np.diff(out[:, 56:88], axis=1)).mean()
    assert right < 0.7 * left  # the half told "50" is smoothed more than the half told "5"
    with pytest.raises(Exception, match="does not match"):
        api.denoise(model, noisy, smap[:10])


def test_images_smaller_than_the_n3_window_are_padded_not_refused(tmp_path):
    src = tmp_path / "small.png"
    PILImage.fromarray((scene(37, 50, 1)[:, :, 0] * 255).astype(np.uint8)).save(src)
    res = run(src, "-o", tmp_path / "o.png")
    assert res.exit_code == 0, res.output
    assert read_image(tmp_path / "o.png").pixels.shape == (37, 50, 1)


def test_compare_writes_input_and_result_side_by_side(tmp_path):
    src = tmp_path / "in.png"
    noisy_file(src)
    res = run(src, "-o", tmp_path / "out.png", "--compare")
    assert res.exit_code == 0, res.output
    side = read_image(tmp_path / "out.compare.png").pixels
    inp, out = read_image(src).pixels, read_image(tmp_path / "out.png").pixels
    assert side.shape == (96, 2 * 96 + 8, 3)
    assert np.abs(side[:, :96] - inp).max() <= 1 / 255 and np.abs(side[:, 104:] - out).max() <= 1 / 255


def test_compare_never_replaces_the_input_or_an_existing_file_without_overwrite(tmp_path):
    """`n3 denoise shot.compare.png -o shot.jpg --compare` replaced its own input with the crop."""
    src = tmp_path / "shot.compare.png"
    noisy_file(src)
    before = src.read_bytes()
    res = run(src, "-o", tmp_path / "shot.jpg", "--compare")
    assert res.exit_code == 1 and "which is the input" in res.stderr
    assert src.read_bytes() == before and not (tmp_path / "shot.jpg").exists()
    other = tmp_path / "in.png"
    noisy_file(other)
    (tmp_path / "out.compare.png").write_bytes(b"mine")
    res = run(other, "-o", tmp_path / "out.png", "--compare")
    assert res.exit_code == 0 and "skip" in res.stderr and (tmp_path / "out.png").exists()
    assert (tmp_path / "out.compare.png").read_bytes() == b"mine"
    res = run(other, "-o", tmp_path / "out.png", "--compare", "--overwrite")
    assert res.exit_code == 0 and read_image(tmp_path / "out.compare.png").pixels.shape == (96, 200, 3)


def _n3(*args, cwd=None):
    """`n3 ARGS` in a fresh process: what a shell user sees on the real stderr (native libraries'
    prints included, which CliRunner does not catch)."""
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "n3cli", *map(str, args)], capture_output=True, text=True, cwd=cwd)


def _n3_on_terminal(*args) -> tuple[int, str]:
    """`n3 ARGS` in a fresh process whose stderr is a terminal (a pseudo-terminal): (exit code,
    what the terminal received)."""
    import fcntl
    import os
    import pty
    import struct
    import subprocess
    import sys
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))  # 40 rows of 120 columns
    proc = subprocess.Popen([sys.executable, "-m", "n3cli", *map(str, args)], stdout=subprocess.DEVNULL, stderr=slave)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # the terminal closed: the process is done with it
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    return proc.wait(), b"".join(chunks).decode(errors="replace")


@pytest.mark.slow
def test_a_bad_file_gets_one_line_naming_it_and_the_problem_and_nothing_else(tmp_path):
    """No stray libpng line, no Python class name, the error once (a single file prints no
    summary list), and a text file called .nef is called a text file, not an I/O error."""
    good = tmp_path / "good.png"
    noisy_file(good)
    data = bytearray(good.read_bytes())
    i = data.find(b"IDAT")
    data[i + 60 : i + 120] = b"\x00" * 60  # damaged image data: libpng complains on stderr
    (tmp_path / "damaged.png").write_bytes(bytes(data))
    (tmp_path / "notes.nef").write_text("shopping list\n")
    for name, needle in (("damaged.png", "not a readable PNG file ("), ("notes.nef", "not a camera raw file (it is a text file)")):
        res = _n3("denoise", "-q", tmp_path / name, "-o", tmp_path / "out.tif")
        lines = res.stderr.strip().splitlines()
        assert res.returncode == 1, res.stderr
        assert lines[0].startswith(f"error: {tmp_path / name}: ") and needle in lines[0], res.stderr
        assert lines[1:] == ["denoised 0, skipped 0, failed 1"], res.stderr
        assert "Error:" not in res.stderr and "libpng" not in res.stderr
    assert not (tmp_path / "out.tif").exists()


def test_suffix_writes_beside_the_inputs_and_takes_no_earlier_output_for_an_input(tmp_path):
    shots = tmp_path / "shots"
    shots.mkdir()
    noisy_file(shots / "a.png")
    noisy_file(shots / "b.jpg")
    res = run(shots, "--suffix", "_clean")
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in shots.iterdir()) == ["a.png", "a_clean.png", "b.jpg", "b_clean.jpg"]
    res = run(shots, "--suffix", "_clean")  # a second run: the outputs exist and are no inputs
    assert res.exit_code == 0 and "skipped 2" in res.stderr
    assert not list(shots.glob("*_clean_clean*"))
    res = run(shots / "a.png", "-o", tmp_path / "out", "--suffix", "-n3")
    assert (tmp_path / "out" / "a-n3.png").exists()
    res = run(shots / "a.png")
    assert res.exit_code == 2 and "--suffix" in res.stderr


def test_short_s_is_scale_in_upscale_and_nothing_in_denoise():
    assert "-s, --scale" in CliRunner().invoke(cli, ["upscale", "--help"]).output
    helptext = CliRunner().invoke(cli, ["denoise", "--help"]).output
    assert "--sigma" in helptext and "-s," not in helptext


def test_webp_in_and_out(tmp_path):
    src = tmp_path / "in.webp"
    clean = scene()
    noisy = np.clip(clean + np.random.default_rng(0).normal(0, 25 / 255, clean.shape), 0, 1)
    PILImage.fromarray(np.rint(noisy * 255).astype(np.uint8)).save(src, lossless=True)
    res = run(src, "-o", tmp_path / "out.webp")
    assert res.exit_code == 0, res.output
    out = read_image(tmp_path / "out.webp")
    assert out.dtype == np.uint8 and out.pixels.shape == (96, 96, 3)
    assert psnr(out.pixels, clean) > psnr(read_image(src).pixels, clean) + 4


def test_a_folder_of_phone_heic_photos_is_denoised_to_heic(tmp_path):
    """HEIC is what phones write: a folder of them is found, denoised and written as HEIC."""
    import pillow_heif

    shots = tmp_path / "shots"
    shots.mkdir()
    clean = scene()
    for i in range(2):
        noisy = np.clip(clean + np.random.default_rng(i).normal(0, 20 / 255, clean.shape), 0, 1)
        a = np.rint(noisy * 255).astype(np.uint8)
        pillow_heif.from_bytes(mode="RGB", size=(96, 96), data=a.tobytes()).save(shots / f"IMG_{i}.HEIC", quality=95)
    res = run(shots, "-o", tmp_path / "out", "--sigma", "20")
    assert res.exit_code == 0, res.output
    for i in range(2):
        out = read_image(tmp_path / "out" / f"IMG_{i}.HEIC")
        assert psnr(out.pixels, clean) > psnr(read_image(shots / f"IMG_{i}.HEIC").pixels, clean) + 3

def test_api_takes_uint8_uint16_and_2d_arrays_as_a_user_hands_them():
    from n3cli import api

    model = api.load_denoiser(None, "rgb")
    f = np.clip(scene() + np.random.default_rng(0).normal(0, 20 / 255, (96, 96, 3)), 0, 1).astype(np.float32)
    ref = api.denoise(model, f, sigma=20)
    for dtype in (np.uint8, np.uint16):
        m = np.iinfo(dtype).max
        out = api.denoise(model, np.rint(f * m).astype(dtype), sigma=20)
        assert out.dtype == dtype and out.shape == f.shape
        assert np.abs(out / m - np.clip(ref, 0, 1)).mean() < 2 / 255  # the float result, quantised
    gray = api.denoise(model, f[:, :, 0], sigma=20)
    assert gray.shape == (96, 96) and gray.dtype == np.float32
    from n3cli.errors import N3Error

    with pytest.raises(N3Error, match="shape"):
        api.denoise(model, np.zeros((4, 96, 96), np.float32))
    with pytest.raises(N3Error, match="int32"):
        api.denoise(model, np.zeros((96, 96), np.int32))


@pytest.mark.slow
def test_progress_shows_the_tiles_of_one_image_with_an_eta(tmp_path):
    """One large photo is one step of the batch bar: its tiles get a bar of their own, with an ETA."""
    import re

    src = tmp_path / "in.png"
    PILImage.fromarray(np.random.default_rng(0).integers(0, 256, (160, 200, 3), dtype=np.uint8)).save(src)
    code, seen = _n3_on_terminal("denoise", src, "-o", tmp_path / "out.png", "--tile", "64", "--overlap", "16",
                                 "--sigma", "20")
    assert code == 0, seen
    frames = seen.replace("\r", "\n")
    assert re.search(r"tiles: .* \d+/\d+ \[\d\d:\d\d<\d\d:\d\d", frames), frames  # done/total [elapsed<ETA


def test_nan_pixels_and_nan_weights_are_refused_instead_of_writing_garbage(tmp_path):
    """A float TIFF with a NaN patch came out all NaN with exit code 0; NaN weights gave black images."""
    img = np.full((96, 96, 3), 0.5, np.float32)
    img[10:20, 10:20] = np.nan
    tifffile.imwrite(tmp_path / "nan.tif", img, photometric="rgb")
    res = run(tmp_path / "nan.tif", "-o", tmp_path / "out.tif", "--sigma", "25")
    assert res.exit_code == 1 and not (tmp_path / "out.tif").exists()
    one_error_line(res, "100 pixel(s) are NaN or infinite")
    net = build_model("dncnn", {"in_channels": 1, "out_channels": 1, "depth": 3, "features": 8})
    with torch.no_grad():
        next(net.parameters())[0, 0, 0, 0] = float("nan")
    save_model(tmp_path / "nan.safetensors", net, ModelInfo("nan", "dncnn", {"in_channels": 1, "out_channels": 1,
                                                                              "depth": 3, "features": 8}))
    good = tmp_path / "good.png"
    noisy_file(good, c=1)
    res = run(good, "-o", tmp_path / "o.png", "-m", tmp_path / "nan.safetensors")
    assert res.exit_code != 0 and not (tmp_path / "o.png").exists()
    one_error_line(res, "NaN or infinite")


def test_recursive_globs_keep_the_tree_never_loop_and_unreadable_folders_are_reported(tmp_path, monkeypatch):
    """A quoted 'dir/**/*.png' -r over a tree with a link back to its top hung (Python's glob
    follows links); it also flattened the tree. A folder that cannot be listed was skipped silently."""
    import os

    shots = tmp_path / "shots"
    (shots / "a" / "b").mkdir(parents=True)
    (shots / "locked").mkdir()
    noisy_file(shots / "top.png")
    noisy_file(shots / "a" / "b" / "deep.png")
    noisy_file(shots / "locked" / "x.png")
    os.symlink(shots, shots / "a" / "loop")  # a -> back to the top: a loop for anything that follows links
    real_scandir = os.scandir

    def scandir(path="."):
        if os.fspath(path).endswith("locked"):  # root ignores chmod 000: deny the listing here instead
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    out = tmp_path / "out"
    res = run(str(shots / "**" / "*.png"), "-o", out, "-r")
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png")) == ["a/b/deep.png", "top.png"]
    assert res.exit_code == 1 and "locked: folder cannot be read" in res.stderr
    assert "denoised 2, skipped 0, failed 1" in res.stderr


@pytest.mark.slow
@pytest.mark.parametrize("sig,code", [("SIGTERM", 143), ("SIGINT", 130)])
def test_a_signal_ends_the_batch_with_a_summary_and_no_temporary_files(tmp_path, sig, code):
    """SIGTERM left hidden .part files that no later run removed; SIGINT exited 1 with Click's
    "Aborted!". Both now stop after cleaning up, say what finished, and exit 128 + signal."""
    import signal
    import subprocess
    import sys

    shots = tmp_path / "shots"
    shots.mkdir()
    for i in range(4):
        PILImage.fromarray(np.random.default_rng(i).integers(0, 256, (200, 260, 3), dtype=np.uint8)).save(
            shots / f"{i}.png")
    out = tmp_path / "out"
    out.mkdir()
    stale = out / ".0.png.n3-999999-x1y2.part"  # what a process killed with SIGKILL left: its pid is gone
    stale.write_bytes(b"half a file")
    p = subprocess.Popen([sys.executable, "-m", "n3cli", "denoise", "-q", shots, "-o", out, "--tile", "64",
                          "--overlap", "16", "--sigma", "20"], stderr=subprocess.PIPE, text=True)
    for line in p.stderr:
        if line.startswith("wrote"):
            p.send_signal(getattr(signal, sig))
            break
    rest = p.stderr.read()
    assert p.wait(timeout=120) == code, rest
    assert "interrupted: denoised " in rest and "not done" in rest and "Aborted" not in rest
    assert not list(out.glob(".*.part")) and not list(shots.glob(".*"))
    for f in out.glob("*.png"):
        assert read_image(f).pixels.shape == (200, 260, 3)  # what was written is whole


@pytest.mark.slow
def test_tta_denoises_at_least_as_well(tmp_path):
    """--tta averages eight views of the image: on a noisy gray photo it is no worse than one
    pass (better, as a rule). Raw files: tests/pipelines/test_raw_denoise.py."""
    src = tmp_path / "n.png"
    noisy_file(src, c=1)
    clean = scene(c=1)
    outs = {}
    for tta in (False, True):
        dst = tmp_path / f"out{tta}.png"
        res = CliRunner().invoke(cli, ["denoise", str(src), "-o", str(dst), "-q"] + (["--tta"] if tta else []))
        assert res.exit_code == 0, res.output
        outs[tta] = psnr(read_image(dst).pixels, clean)
    assert outs[True] >= outs[False] - 0.02, outs


def test_a_fixed_sigma_model_gets_the_noise_brought_to_its_sigma(tmp_path):
    """n3net-gray-s25 on sigma 50: scaled to half contrast, denoised, scaled back; at its own sigma
    it sees the image as it is; --sigma steers it; the output line says the level used."""
    from n3cli.api import denoise, load_denoiser
    from n3cli.imaging.noise import add_gaussian, eval_rng
    from n3cli.pipelines.denoise import MAX_GAIN, _fixed_sigma_gain

    model = load_denoiser("n3net-gray-s25", device="cpu")
    clean = scene(c=1)
    noisy = add_gaussian(clean, 50, eval_rng(0, 0))
    plain, matched = denoise(model, noisy, 25.0), denoise(model, noisy, 50.0)
    assert psnr(matched, clean) > psnr(plain, clean) + 3
    assert _fixed_sigma_gain(model.info, noisy, 50.0) == 0.5
    assert _fixed_sigma_gain(model.info, noisy, 27.0) == 1.0  # within a fifth: its own level
    assert _fixed_sigma_gain(model.info, noisy, 1.0) == MAX_GAIN
    mid = np.float32(noisy.mean())  # the same as running the model on the half-contrast image
    by_hand = (denoise(model, (noisy - mid) * np.float32(0.5) + mid, 25.0) - mid) / np.float32(0.5) + mid
    np.testing.assert_allclose(matched, by_hand, atol=1e-6)
    src = tmp_path / "g.png"
    noisy_file(src, c=1, sigma=50)
    fixed = ["-m", "n3net-gray-s25"]
    res = CliRunner().invoke(cli, ["denoise", str(src), "-o", str(tmp_path / "o.png"), *fixed])
    assert res.exit_code == 0 and "with n3net-gray-s25 (sigma 4" in res.output, res.output  # read about 50
    res = CliRunner().invoke(cli, ["denoise", str(src), "-o", str(tmp_path / "o25.png"), "--sigma", "25", *fixed])
    assert res.exit_code == 0 and "(sigma 25.0)" in res.output and "ignored" not in res.output, res.output
    auto, given = (read_image(tmp_path / n).pixels for n in ("o.png", "o25.png"))
    truth = scene(c=1)
    assert psnr(auto, truth) > psnr(given, truth) + 2


def test_print_noise_names_the_file_it_cannot_read(tmp_path):
    tiny = tmp_path / "tiny.png"
    PILImage.fromarray(np.zeros((5, 5, 3), np.uint8)).save(tiny)
    res = CliRunner().invoke(cli, ["denoise", str(tiny), "--print-noise"])
    assert res.exit_code == 1
    one_error_line(res, f"{tiny}: image of 5x5 is too small")


def test_chroma_strength_keeps_the_luminance_grain_and_removes_the_colour_noise(tmp_path):
    ycc = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]])
    src = tmp_path / "in.png"
    clean, _ = noisy_file(src, sigma=20)
    res = run(src, "-o", tmp_path / "grain.png", "--strength", "0", "--chroma-strength", "1", "--sigma", "20")
    assert res.exit_code == 0, res.output
    noisy = read_image(src).pixels @ ycc.T
    px = read_image(tmp_path / "grain.png").pixels
    inside = (px > 0).all(-1) & (px < 1).all(-1)  # a pixel clipped to black or white keeps neither
    assert inside.mean() > 0.9
    out = px @ ycc.T
    # the luminance is the input's, to 8-bit rounding
    assert np.abs(out[..., 0] - noisy[..., 0])[inside].max() <= 1.0 / 255
    ref = clean @ ycc.T
    err = lambda x: float(np.sqrt(((x[..., 1:] - ref[..., 1:]) ** 2).mean()))  # noqa: E731
    assert err(out) < 0.6 * err(noisy)  # the colour noise is mostly gone
    # gray images have no colour: --chroma-strength leaves the result to --strength
    g = tmp_path / "g.png"
    noisy_file(g, c=1)
    for name, extra in (("a", []), ("b", ["--chroma-strength", "1"])):
        assert run(g, "-o", tmp_path / f"g_{name}.png", "--strength", "0.5", *extra).exit_code == 0
    np.testing.assert_array_equal(read_image(tmp_path / "g_a.png").pixels, read_image(tmp_path / "g_b.png").pixels)
    assert run(src, "-o", tmp_path / "bad.png", "--chroma-strength", "1.5").exit_code == 2


def test_the_progress_bar_is_drawn_on_a_terminal_only(tmp_path, monkeypatch):
    from n3cli.cli import batchrun

    for name in ("a", "b"):
        noisy_file(tmp_path / f"{name}.png", seed=ord(name))
    args = ["denoise", str(tmp_path / "a.png"), str(tmp_path / "b.png"), "-o", str(tmp_path / "out"), "--sigma", "25"]
    log = CliRunner().invoke(cli, args)  # stderr is not a terminal here, as in a script's log
    assert log.exit_code == 0, log.output
    assert "img/s" not in log.stderr and "\r" not in log.stderr
    assert log.stderr.count("wrote ") == 2 and "denoised 2, skipped 0, failed 0" in log.stderr
    monkeypatch.setattr(batchrun, "on_terminal", lambda: True)
    term = CliRunner().invoke(cli, [*args, "--overwrite"])
    assert term.exit_code == 0 and "img/s" in term.stderr and term.stderr.count("wrote ") == 2
    quiet = CliRunner().invoke(cli, [*args, "--overwrite", "-q"])
    assert quiet.exit_code == 0 and "img/s" not in quiet.stderr


def test_quality_reaches_every_lossy_output(tmp_path):
    """--quality: photos to JPEG and n3 upscale to WebP; out of range is bad usage."""
    src = tmp_path / "in.png"
    noisy_file(src)
    sizes = {}
    for q in ("30", "95"):
        assert run(src, "-o", tmp_path / f"d{q}.jpg", "--sigma", "25", "--quality", q).exit_code == 0
        res = CliRunner().invoke(cli, ["upscale", "-q", str(src), "-o", str(tmp_path / f"u{q}.webp"), "-s", "2",
                                       "--quality", q])
        assert res.exit_code == 0, res.output
        sizes[q] = ((tmp_path / f"d{q}.jpg").stat().st_size, (tmp_path / f"u{q}.webp").stat().st_size)
    assert sizes["30"][0] < 0.7 * sizes["95"][0] and sizes["30"][1] < 0.7 * sizes["95"][1]
    assert run(src, "-o", tmp_path / "bad.jpg", "--quality", "0").exit_code == 2
    assert not (tmp_path / "bad.jpg").exists()


def test_json_prints_one_record_per_input_on_stdout(tmp_path):
    import json

    good, bad = tmp_path / "good.png", tmp_path / "bad.png"
    noisy_file(good)
    bad.write_text("not an image")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "old.png").write_bytes(good.read_bytes())
    old = tmp_path / "old.png"
    noisy_file(old, seed=3)
    res = CliRunner().invoke(cli, ["denoise", str(good), str(bad), str(old), "-o", str(tmp_path / "out"), "--json"])
    assert res.exit_code == 1
    recs = {Path(r["input"]).name: r for r in map(json.loads, res.stdout.splitlines())}
    assert set(recs) == {"good.png", "bad.png", "old.png"}
    assert recs["good.png"]["status"] == "written" and recs["good.png"]["model"] == "n3net-color"
    assert recs["good.png"]["output"] == str(tmp_path / "out" / "good.png") and recs["good.png"]["sigma"] > 10
    assert recs["bad.png"]["status"] == "failed" and "bad.png" in recs["bad.png"]["error"]
    assert recs["old.png"]["status"] == "skipped"
    assert "wrote " in res.stderr and "denoised 1, skipped 1, failed 1" in res.stderr  # the human lines stay
    noise = CliRunner().invoke(cli, ["denoise", str(good), str(bad), "--print-noise", "--json"])
    lines = [json.loads(x) for x in noise.stdout.splitlines()]
    assert noise.exit_code == 1 and [Path(x["input"]).name for x in lines] == ["good.png", "bad.png"]
    assert lines[0]["kind"] == "gaussian" and 15 < lines[0]["sigma"] < 35 and "error" in lines[1]
