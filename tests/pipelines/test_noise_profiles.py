"""Noise profiles (`n3 noise-profile`, `n3 denoise --noise-profiles`): a camera's raw noise by ISO,
pooled from several of its files, read back for a file whose own reading is thrown by texture."""
import json

import numpy as np
import pytest
from click.testing import CliRunner
from shared_paths import EXAMPLES

from n3cli.cli.main import cli
from n3cli.errors import N3Error
from n3cli.imaging.raw_noise import add_poisson_gaussian, mosaic_rggb, unprocess
from n3cli.io.images import read_image
from n3cli.io.raw import RawImage, read_raw, write_dng
from n3cli.pipelines.raw import noise_params
from n3cli.store.noise_profiles import NoiseProfiles


def camera_noise(iso: float) -> tuple[float, float]:
    """A camera whose shot noise grows with the gain and whose read noise is mostly before it."""
    return 1e-6 * iso, 1e-10 * iso**2 + 2e-7


def smooth_mosaic(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:200, 0:300] / 300
    return (0.05 + 0.8 * xx + 0.05 * np.sin(3 * yy + rng.uniform(0, 6))).astype(np.float32)


def textured_mosaic() -> np.ndarray:
    """The bundled photo's linear RGB with fine foliage-like texture on top: its own noise reading
    counts the texture as noise."""
    px = read_image(EXAMPLES / "astronaut_clean.png").pixels
    lin, _ = unprocess(px, np.random.default_rng(0))
    yy, xx = np.mgrid[0 : lin.shape[0], 0 : lin.shape[1]]
    grain = 0.02 * np.sin(2.1 * xx + 0.7 * yy) * np.sin(1.3 * yy)
    return mosaic_rggb(np.clip(lin * (1 + grain[..., None]), 0, 1))


def write_file(path, clean, iso, seed, make="Testcam", model="N1", noise_profile=None):
    a, b = camera_noise(iso or 100)
    noisy = add_poisson_gaussian(clean, a, b, np.random.default_rng(seed))
    tags = {34855: iso} if iso else {}
    write_dng(path, RawImage(noisy, "RGGB", np.full((2, 2), 64.0), 4095.0, make=make, model=model, tags=tags,
                             noise_profile=noise_profile), software="Testcam firmware 1.0")


def var_at(a, b, x=0.2):
    return a * x + b


@pytest.fixture
def profiles(tmp_path, monkeypatch):
    path = tmp_path / "profiles.json"
    monkeypatch.setenv("N3_NOISE_PROFILES", str(path))
    return path


def test_pooled_readings_take_the_low_quartile_and_interpolate_between_isos():
    t = NoiseProfiles()
    for i, scale in enumerate([1.0, 1.1, 0.95, 1.05, 9.0]):  # one textured file reads 9x
        t.add("Cam", 100, 1e-4 * scale, 1e-6 * scale, f"f{i}", "estimated")
    t.add("Cam", 400, 4e-4, 1.6e-5, "g", "estimated")
    (r100, r400) = t.table("Cam")
    assert (r100.iso, r100.files, r400.files) == (100, 5, 1)
    assert r100.a == pytest.approx(1e-4, rel=0.06) and r100.b == pytest.approx(1e-6, rel=0.06)
    a, b, how = t.lookup("Cam", 200)
    assert a == pytest.approx(r100.a + (r400.a - r100.a) / 3) and "between ISO 100 and 400" in how
    a, b, how = t.lookup("Cam", 800)  # 2x beyond: scaled, a with the gain, b with its square
    assert a == pytest.approx(2 * r400.a) and b == pytest.approx(4 * r400.b) and "scaled from ISO 400" in how
    assert t.lookup("Cam", 1600) is None and t.lookup("Cam", 25) is None and t.lookup("Other", 100) is None
    t.add("Cam", 200, 2e-4, 4e-6, "f4", "estimated")  # the same file again: moved, not counted twice
    assert [r.files for r in t.table("Cam")] == [4, 1, 1]


def test_profile_files_round_trip_and_broken_ones_are_refused(tmp_path):
    t = NoiseProfiles()
    t.add("Cam", 100, 1e-4, 1e-6, "/x/a.dng", "optical black + fit")
    f = tmp_path / "p.json"
    t.save(f)
    assert NoiseProfiles.load(f).table("Cam") == t.table("Cam")
    for text in ("{", json.dumps({"format": "other"}),
                 json.dumps({"format": "n3-noise-profiles/1", "cameras": {"Cam": {"100": [{"file": "x", "a": -1, "b": 0}]}}})):
        f.write_text(text)
        with pytest.raises(N3Error, match=str(f)):
            NoiseProfiles.load(f)
    with pytest.raises(N3Error, match="no such"):
        NoiseProfiles.load(tmp_path / "missing.json")


def test_a_profile_from_flat_files_reads_a_textured_file_right(tmp_path, profiles):
    """The use it is made for: flat frames at ISO 100 and 400 go in; a textured frame at ISO 200,
    whose own reading counts its texture as noise, is read from the profile instead, and the
    denoised output is closer to the clean image."""
    flats = []
    for iso in (100, 400):
        for seed in (1, 2):
            flats.append(tmp_path / f"flat{iso}_{seed}.dng")
            write_file(flats[-1], smooth_mosaic(seed), iso, seed)
    no_iso = tmp_path / "no_iso.dng"
    write_file(no_iso, smooth_mosaic(3), None, 3)
    r = CliRunner().invoke(cli, ["noise-profile", "add", *map(str, flats), str(no_iso)])
    assert r.exit_code == 1, r.output  # the file without an ISO is reported; the others are recorded
    assert "no_iso.dng" in r.output and "does not say the ISO" in r.output and profiles.is_file()
    table = NoiseProfiles.load(profiles).table("Testcam N1")
    assert [(e.iso, e.files) for e in table] == [(100, 2), (400, 2)]
    for e in table:
        assert var_at(e.a, e.b) == pytest.approx(var_at(*camera_noise(e.iso)), rel=0.2)

    clean = textured_mosaic()
    tex = tmp_path / "textured.dng"
    write_file(tex, clean, 200, 7)
    own = noise_params(read_raw(tex))
    pooled = noise_params(read_raw(tex), profiles=NoiseProfiles.load(profiles))
    truth = var_at(*camera_noise(200))
    assert own.source == "estimated" and var_at(own.a, own.b) > 1.5 * truth
    assert pooled.source.startswith("ISO profile") and var_at(pooled.a, pooled.b) == pytest.approx(truth, rel=0.2)
    r = CliRunner().invoke(cli, ["denoise", "--print-noise", str(tex)])
    assert r.exit_code == 0 and "(ISO profile: ISO 200, between ISO 100 and 400)" in r.output.splitlines()[0]
    r = CliRunner().invoke(cli, ["denoise", "--print-noise", str(tex), "--noise-profiles", "none"])
    assert r.exit_code == 0 and "(estimated)" in r.output.splitlines()[0]

    from n3cli.eval.metrics import psnr

    for flag, name in (([], "pooled.dng"), (["--noise-profiles", "none"], "own.dng")):
        r = CliRunner().invoke(cli, ["denoise", str(tex), "-o", str(tmp_path / name), "-q", *flag])
        assert r.exit_code == 0, r.output
    out = {n: psnr(np.clip(read_raw(tmp_path / n).mosaic, 0, 1), clean) for n in ("pooled.dng", "own.dng")}
    assert out["pooled.dng"] > out["own.dng"] + 0.1, out  # measured: +0.24 dB


def test_the_makers_noise_profile_still_comes_first_and_n3s_own_files_stay_out(tmp_path, profiles):
    f = tmp_path / "a.dng"
    write_file(f, smooth_mosaic(1), 100, 1)
    assert CliRunner().invoke(cli, ["noise-profile", "add", str(f)]).exit_code == 0
    maker = tmp_path / "maker.dng"
    write_file(maker, smooth_mosaic(2), 100, 2, noise_profile=[(3e-3, 1e-5)])
    assert noise_params(read_raw(maker), profiles=NoiseProfiles.load(profiles)).source == "NoiseProfile"

    out = tmp_path / "clean.dng"
    assert CliRunner().invoke(cli, ["denoise", str(f), "-o", str(out), "-q"]).exit_code == 0
    before = profiles.read_bytes()
    r = CliRunner().invoke(cli, ["noise-profile", "add", str(out)])
    assert r.exit_code == 1 and "written by n3" in r.output and profiles.read_bytes() == before

    r = CliRunner().invoke(cli, ["noise-profile", "show", "--json"])
    assert r.exit_code == 0 and json.loads(r.output)["Testcam N1"][0]["files"] == 1


def test_a_missing_profile_file_is_an_error_only_when_asked_for(tmp_path, monkeypatch):
    f = tmp_path / "a.dng"
    write_file(f, smooth_mosaic(1), 100, 1)
    monkeypatch.delenv("N3_NOISE_PROFILES", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))  # no default file: not used, no error
    r = CliRunner().invoke(cli, ["denoise", "--print-noise", str(f)])
    assert r.exit_code == 0 and "(estimated)" in r.output
    r = CliRunner().invoke(cli, ["denoise", "--print-noise", str(f), "--noise-profiles", str(tmp_path / "nope.json")])
    assert r.exit_code == 2 and "nope.json: no such noise-profile file" in r.output
    r = CliRunner().invoke(cli, ["noise-profile", "show"])
    assert r.exit_code == 1 and "n3 noise-profile add" in r.output
    dark = tmp_path / "lens_cap.dng"  # too dark to read: no made-up value goes into the profile
    write_file(dark, np.zeros((200, 300), np.float32), 100, 4)
    r = CliRunner().invoke(cli, ["noise-profile", "add", str(dark)])
    assert r.exit_code == 1 and "lens_cap.dng: too dark" in r.output
    r = CliRunner().invoke(cli, ["noise-profile", "add", str(tmp_path / "*.nef")])
    assert r.exit_code == 1 and "no raw files" in r.output
    r = CliRunner().invoke(cli, ["noise-profile", "add", str(f)])
    assert r.exit_code == 0 and (tmp_path / "config" / "n3" / "noise-profiles.json").is_file()


def test_a_frame_too_dark_to_read_gets_a_guess_that_says_so(tmp_path):
    dark = tmp_path / "night.dng"
    write_file(dark, np.full((200, 300), 0.0005, np.float32), 100, 5)
    r = CliRunner().invoke(cli, ["denoise", "--print-noise", str(dark)])
    assert r.exit_code == 0 and "(guessed: too little between black and white to read)" in r.output
    r = CliRunner().invoke(cli, ["denoise", str(dark), "-o", str(tmp_path / "out.dng"), "-q"])
    assert r.exit_code == 0 and (tmp_path / "out.dng").is_file()
    assert "note: " in r.output and "night.dng: noise guessed" in r.output and "--noise A,B" in r.output
    lit = tmp_path / "lit.dng"
    write_file(lit, smooth_mosaic(1), 100, 1)
    r = CliRunner().invoke(cli, ["denoise", "--print-noise", str(lit)])
    assert r.exit_code == 0 and "(estimated)" in r.output and "guessed" not in r.output
