"""Correspondence classification: geometry, synthetic pairs, the networks, `n3 match` and its eval."""
import json

import cv2
import numpy as np
import pytest
import torch
from click.testing import CliRunner
from shared_paths import EXAMPLES

from n3cli.cli.main import cli
from n3cli.match.evaluate import network_pose
from n3cli.match.geometry import (
    essential_loss,
    pose_map,
    recover_pose,
    rotation_error_deg,
    sym_epipolar_distance,
    weighted_eight_point,
)
from n3cli.match.synthetic import make_pair, pair_tensor
from n3cli.models.registry import build_model
from n3cli.store.zoo import names

EXAMPLE = EXAMPLES / "astronaut_clean.png"
shipped = pytest.mark.skipif("n3net-match" not in names(), reason="no shipped match model")


def test_pose_map_is_the_mean_cumulative_accuracy_over_5_degree_bins():
    m = pose_map([1.0, 7.0, 12.0, 30.0])
    assert m == {"5": 0.25, "10": 0.375, "20": 0.5625}


def test_paired_bootstrap_gives_the_map_gap_and_an_interval_that_separates_only_real_gaps():
    from n3cli.match.evaluate import paired_bootstrap

    rng = np.random.default_rng(0)
    base = rng.uniform(0, 30, 400)
    same = paired_bootstrap(base, base.copy())
    assert all(g == {"diff": 0.0, "low": 0.0, "high": 0.0} for g in same.values())
    better = np.where(rng.random(400) < 0.2, base / 4, base)  # a fifth of the pairs improved
    gap = paired_bootstrap(better, base)
    for t, g in gap.items():
        assert g["diff"] == pytest.approx(pose_map(better)[t] - pose_map(base)[t], abs=1e-12)
        assert 0 < g["low"] <= g["diff"] <= g["high"]
    noise = paired_bootstrap(rng.permutation(base), base)  # same errors, shuffled over pairs: no gap
    assert all(g["low"] < 0 < g["high"] for g in noise.values())
    with pytest.raises(ValueError):
        paired_bootstrap(base, base[:10])


def test_synthetic_pairs_are_reproducible_and_labelled_by_the_true_geometry():
    p = make_pair(np.random.default_rng([5, 3]), 400, outliers=(0.6, 0.6), noise_px=(0.0, 0.0))
    q = make_pair(np.random.default_rng([5, 3]), 400, outliers=(0.6, 0.6), noise_px=(0.0, 0.0))
    assert np.array_equal(p.xa, q.xa) and np.array_equal(p.labels, q.labels)
    assert 0.38 <= p.labels.mean() <= 0.45  # 40% true matches (+ wrong ones that happen to fit)
    d = sym_epipolar_distance(p.xa.astype(np.float64), p.xb.astype(np.float64), p.E)
    assert np.sort(d)[: int(0.4 * 400)].max() < 1e-8  # noise-free inliers lie on their epipolar lines


def test_weighted_eight_point_recovers_e_from_the_inliers():
    p = make_pair(np.random.default_rng(1), 300, outliers=(0.5, 0.5), noise_px=(0.0, 0.0))
    x = torch.from_numpy(pair_tensor(p)[None]).double()
    e = weighted_eight_point(x, torch.from_numpy(p.labels[None].astype(np.float64)))
    # float32 coordinates and the few wrong matches that happen to fit the geometry leave ~1e-4
    assert essential_loss(e, torch.from_numpy(p.E.reshape(1, 9))).item() < 1e-3
    r = recover_pose(p.xa, p.xb, p.labels)
    assert rotation_error_deg(r[1], p.R) < 0.1


def test_pose_survives_matches_that_share_a_point_as_real_sift_gives_them():
    """Nearest-neighbour SIFT matching sends several keypoints of A to one of B (and SIFT repeats
    keypoints with other orientations): a minimal sample with three matches on one point of B made
    OpenCV 5's five-point solver raise (solvePoly assertion) and end the estimation. The pose must
    come back, and a repeated match counts once, flagged like its first copy."""
    from n3cli.match.geometry import unique_matches

    errs = []
    for i in range(6):  # pairs 0 and 4 raised on OpenCV 5.1 before the fix
        p = make_pair(np.random.default_rng([4, i]), 400, outliers=(0.8, 0.8), noise_px=(0.0, 0.5))
        wrong = np.flatnonzero(~p.labels)
        xb = p.xb.copy()
        xb[wrong] = xb[wrong[np.arange(len(wrong)) // 4 * 4]]  # wrong matches in groups of 4 on one point of B
        E, R, t, inl = recover_pose(p.xa, xb)
        errs.append(rotation_error_deg(R, p.R))
    assert max(errs) < 10.0 and np.median(errs) < 0.5, errs  # OpenCV 4.14: worst 5.9 degrees, 5.1: 2.2
    rep = np.random.default_rng(0).choice(400, 100)
    xa2, xb2 = np.concatenate([p.xa, p.xa[rep]]), np.concatenate([xb, xb[rep]])
    first, inverse = unique_matches(xa2, xb2)
    assert np.array_equal(inverse[400:], inverse[rep]) and len(first) == len(np.unique(np.c_[p.xa, xb], axis=0))
    inl2 = recover_pose(xa2, xb2)[3]
    assert np.array_equal(inl2[400:], inl2[rep])
    static = np.random.default_rng(1).uniform(-0.5, 0.5, (200, 2))  # nothing moves: no pose to find
    recover_pose(static, static.copy())  # a result or None, no exception (raised on OpenCV 5.1)
    recover_pose(np.concatenate([p.xa, static]), np.concatenate([p.xb, static]))  # a static half (tripod scene)


def test_match_on_rotated_crops_of_a_photo_gives_a_pose_or_a_one_line_error(tmp_path):
    """Two crops of one photo, the second rotated: SIFT repeats matches there, which crashed
    `n3 match` with an OpenCV traceback on OpenCV 5."""
    from PIL import Image

    im = Image.open(EXAMPLE).convert("L")
    w, h = im.size
    im.crop((0, 0, w - 16, h - 16)).save(tmp_path / "a.png")
    im.rotate(8, resample=Image.BICUBIC, center=(w / 2, h / 2)).crop((16, 16, w, h)).save(tmp_path / "b.png")
    for model in ("none", "n3net-match") if "n3net-match" in names() else ("none",):
        out = tmp_path / f"{model}.json"
        res = CliRunner().invoke(cli, ["match", str(tmp_path / "a.png"), str(tmp_path / "b.png"), "-o", str(out),
                                       "-m", model])
        assert res.exit_code == 0, res.output
        r = json.loads(out.read_text())
        # an in-plane rotation: the rotation found turns about the optical axis by about 8 degrees
        R = np.array(r["R"])
        assert abs(rotation_error_deg(R, np.eye(3)) - 8) < 2, R


def test_n3_variant_uses_the_other_matches_and_is_permutation_equivariant():
    torch.manual_seed(0)
    net = build_model("cnnet", {"channels": 16, "blocks": 4, "n3": True}).eval()
    x = torch.randn(2, 4, 50)
    perm = torch.randperm(50)
    with torch.no_grad():
        a, b = net(x)[:, perm], net(x[:, :, perm])
    assert torch.allclose(a, b, atol=1e-5)
    y = x.clone()
    y[:, :, 0] += 1.0  # moving one match changes the others' scores through the N³ block / context norm
    with torch.no_grad():
        assert not torch.allclose(net(y)[:, 1:], net(x)[:, 1:])


@shipped
def test_low_outlier_pairs_give_rotations_within_one_degree():
    from n3cli.store.checkpoint import load_model
    from n3cli.store.zoo import find

    net = load_model(find("n3net-match").file_for("torch")).net.eval()
    for i in range(5):
        p = make_pair(np.random.default_rng([99, i]), 500, outliers=(0.1, 0.3), noise_px=(0.0, 0.5))
        _, r = network_pose(net, p.xa, p.xb)
        assert rotation_error_deg(r[1], p.R) < 1.0


def test_pose_verification_recovers_when_the_kept_matches_are_a_small_cluster():
    """Where nearly all matches are right but the network keeps a confident cluster only (its pose
    ill-conditioned), the hypothesis from all matches wins on the others' summed probability."""
    from n3cli.match.evaluate import pose_from_scores
    from n3cli.match.geometry import pose_error_deg

    kept_only, verified = [], []
    for i in range(8):
        p = make_pair(np.random.default_rng([7, i]), 600, outliers=(0.1, 0.1), noise_px=(0.5, 0.5))
        d = np.linalg.norm(p.xa - np.median(p.xa[p.labels], 0), axis=1)
        cluster = p.labels & (d < np.quantile(d[p.labels], 0.08))
        logits = np.where(cluster, 3.0, np.where(p.labels, -1.0, -6.0))
        for out, verify in ((kept_only, False), (verified, True)):
            r = pose_from_scores(p.xa, p.xb, logits, verify)
            out.append(pose_error_deg(r[1], r[2], p.R, p.t))
    assert max(kept_only) > 5.0  # the failure verification exists for
    assert max(verified) < 1.5


def _pair_of_views(tmp_path):
    """Two views of the example photo: B is A seen under a small homography."""
    a = cv2.imread(str(EXAMPLE))
    H = np.array([[0.97, 0.06, 9.0], [-0.05, 0.99, 6.0], [1e-4, -5e-5, 1.0]])
    b = cv2.warpPerspective(a, H, (a.shape[1], a.shape[0]), borderMode=cv2.BORDER_REFLECT)
    pa, pb = tmp_path / "a.png", tmp_path / "b.png"
    cv2.imwrite(str(pa), a)
    cv2.imwrite(str(pb), b)
    return pa, pb


@shipped
def test_match_cli_writes_the_documented_json_and_a_visualisation(tmp_path):
    pa, pb = _pair_of_views(tmp_path)
    out, viz = tmp_path / "m.json", tmp_path / "m.png"
    res = CliRunner().invoke(cli, ["match", str(pa), str(pb), "-o", str(out), "--viz", str(viz), "--focal", "300"])
    assert res.exit_code == 0, res.output
    d = json.loads(out.read_text())
    n = d["num_matches"]
    assert n >= 8 and len(d["keypoints_a"]) == len(d["keypoints_b"]) == len(d["scores"]) == len(d["inliers"]) == n
    assert d["num_inliers"] == sum(d["inliers"]) and d["model"] == "n3net-match"
    assert d["intrinsics"]["source"] == "option" and np.array(d["F"]).shape == (3, 3)
    R, t = np.array(d["R"]), np.array(d["t"])
    assert np.allclose(R @ R.T, np.eye(3), atol=1e-6) and abs(np.linalg.norm(t) - 1) < 1e-6
    assert cv2.imread(str(viz)).shape[1] == 2 * 256
    from n3cli.store.checkpoint import read_info
    from n3cli.store.zoo import find

    knn = read_info(find("n3net-match").path).extra["knn"]
    assert (d["knn"] is not None) == knn["gain"]  # on by default only where validation showed a gain
    res = CliRunner().invoke(cli, ["match", str(pa), str(pb), "-o", str(out), "--focal", "300", "--knn", "--overwrite"])
    assert res.exit_code == 0 and json.loads(out.read_text())["knn"]["lambda"] == knn["lambda"]
    res = CliRunner().invoke(cli, ["match", str(pa), str(pb), "-o", str(out), "--focal", "300", "--no-knn", "--overwrite"])
    assert res.exit_code == 0 and json.loads(out.read_text())["knn"] is None


def test_identical_blank_and_non_image_inputs_fail_in_one_line(tmp_path):
    pa, pb = _pair_of_views(tmp_path)
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((200, 200, 3), 128, np.uint8))
    junk = tmp_path / "junk.png"
    junk.write_text("not an image")
    for a, b, needle in [(pa, pa, "same view"), (pa, blank, "no usable features"), (junk, pb, "junk.png")]:
        out = tmp_path / "o.json"
        res = CliRunner().invoke(cli, ["match", str(a), str(b), "-o", str(out), "--model", "none"])
        assert res.exit_code != 0
        lines = [ln for ln in res.stderr.splitlines() if ln.startswith("error:")]
        assert len(lines) == 1 and needle in lines[0], res.stderr
        assert not out.exists()


@pytest.mark.slow
@shipped
def test_eval_match_reports_map_for_every_method(tmp_path):
    res = CliRunner().invoke(cli, ["eval", "match", "--pairs", "4", "--json"])
    assert res.exit_code == 0, res.output
    r = json.loads(res.stdout)["results"][0]
    assert r["pairs"] == 4 and set(r["map"]) == {"robust", "cnnet", "n3net", "n3net+knn"}
    for m in r["map"].values():
        assert set(m) == {"5", "10", "20"} and all(0 <= v <= 1 for v in m.values())
        assert m["5"] <= m["10"] <= m["20"]


def test_pairs_file_loader_reads_the_superglue_format(tmp_path):
    from n3cli.errors import N3Error
    from n3cli.match.evaluate import load_pairs_file

    K = "500 0 320 0 500 240 0 0 1"
    T = "1 0 0 0.5 0 1 0 0 0 0 1 0 0 0 0 1"
    f = tmp_path / "pairs.txt"
    f.write_text(f"a.jpg b.jpg 0 0 {K} {K} {T}\n")
    (p,) = load_pairs_file(f)
    assert p["a"] == tmp_path / "a.jpg" and p["Ka"][0, 2] == 320 and p["t"][0] == 0.5
    f.write_text(f"a.jpg b.jpg 0 0 {K} {K}\n")
    with pytest.raises(N3Error, match="expected 38 fields"):
        load_pairs_file(f)


@pytest.mark.slow
@shipped
def test_eval_scores_a_folder_of_rendered_pairs_against_their_true_poses(tmp_path):
    """The whole real-pair path: rendered views + pairs.txt (x_B = R x_A + t), SIFT, the loader,
    labels from the true pose, and pose mAP; a wrong pose convention anywhere fails it."""
    from n3cli.match.rendered import load_textures, write_pairs

    write_pairs(tmp_path, load_textures(EXAMPLE.parent, limit=1), 3, seed=0, size=(320, 240))
    reports = {}
    for ratio in ("0.8", "1"):
        res = CliRunner().invoke(cli, ["eval", "match", "--data", str(tmp_path), "--ratio", ratio, "--json"])
        assert res.exit_code == 0, res.output
        (reports[ratio],) = json.loads(res.stdout)["results"]
    r = reports["0.8"]
    assert r["pairs"] == 3 and r["data"] == str(tmp_path / "pairs.txt")
    assert r["inlier_fraction"] > 0.8 > reports["1"]["inlier_fraction"]  # the ratio test drops wrong matches
    assert r["map"]["robust"]["20"] >= 0.6 and r["map"]["n3net"]["20"] >= 0.6
    (tmp_path / "pairs.txt").rename(tmp_path / "mine.txt")
    (tmp_path / "notes.txt").write_text("")  # two candidate files and no pairs.txt: which one is meant?
    res = CliRunner().invoke(cli, ["eval", "match", "--data", str(tmp_path)])
    assert res.exit_code != 0 and "pairs.txt" in res.output


def test_match_training_runs_from_a_config(tmp_path):
    from n3cli.match.train import train_match, validate_match_config
    from n3cli.store.checkpoint import load_model

    cfg = validate_match_config({"name": "t", "model": {"args": {"channels": 8, "blocks": 2, "n3": True}},
                                 "data": {"matches": 64, "batch": 2, "val_pairs": 2, "val_matches": 100},
                                 "optim": {"steps": 4, "essential_after": 2}, "val_every": 4}, "t")
    final = train_match(cfg, tmp_path / "run", progress=False)
    m = load_model(final)
    assert m.info.task == "match" and m.info.args["n3"] is True
    assert any("val_map" in line for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines())


def test_match_fine_tuning_starts_from_its_init_model_and_decays_the_lr(tmp_path):
    import pytest
    import torch

    from n3cli.errors import ConfigError
    from n3cli.match.train import train_match, validate_match_config
    from n3cli.store.checkpoint import load_model

    base = {"name": "t", "model": {"args": {"channels": 8, "blocks": 2, "n3": False}},
            "data": {"matches": 64, "batch": 2, "val_pairs": 2, "val_matches": 100},
            "optim": {"steps": 2, "essential_after": 0}, "val_every": 2}
    first = train_match(validate_match_config(base, "t"), tmp_path / "a", progress=False)
    ft = dict(base, seed=1, init=str(first), optim={"lr": 1e-9, "lr_final": 1e-10, "steps": 2, "essential_after": 0})
    second = train_match(validate_match_config(ft, "t"), tmp_path / "b", progress=False)
    a, b = load_model(first), load_model(second)
    # two steps at lr <= 1e-9 leave the init weights (up to Adam's ~lr-sized steps)
    for (n, p), q in zip(a.net.state_dict().items(), b.net.state_dict().values()):
        if p.dtype.is_floating_point and "running" not in n:
            assert torch.allclose(p, q, atol=1e-6), n
    assert b.info.extra["training"]["init"]["file"] == first.name
    with pytest.raises(ConfigError, match="lr_final"):
        validate_match_config(dict(base, optim={"lr_final": -1.0}), "t")


def test_bad_intrinsics_pairs_files_and_outputs_get_one_line_before_any_work(tmp_path):
    """{"K": "abc"}, a ragged or zero matrix, --focal nan, a non-UTF-8 or NaN pairs file and a
    --viz with no image type ended in tracebacks (the last after the JSON was written)."""
    a = tmp_path / "a.png"
    a.write_bytes(EXAMPLE.read_bytes())
    cases = {"k1.json": '{"K": "abc"}', "k2.json": '{"K": [[1, 2], [3]]}', "k3.txt": "0 0 0 0 0 0 0 0 0",
             "k4.txt": "nan 0 1 0 500 1 0 0 1"}
    for name, text in cases.items():
        (tmp_path / name).write_text(text)
        res = CliRunner().invoke(cli, ["match", str(a), str(EXAMPLE), "-o", str(tmp_path / "m.json"),
                                       "--intrinsics", str(tmp_path / name)])
        assert res.exit_code == 2 and res.output.startswith(f"error: {tmp_path / name}: "), res.output
    for extra, needle in ((["--focal", "nan"], "not nan"), (["--viz", str(tmp_path / "m.xyz")], "--viz writes an image")):
        res = CliRunner().invoke(cli, ["match", str(a), str(EXAMPLE), "-o", str(tmp_path / "m.json"), *extra])
        assert res.exit_code == 2 and needle in res.output, res.output
    assert not (tmp_path / "m.json").exists()
    pose = " ".join(["1 0 0 0 0 1 0 0 0 0 1 0 0 0 0 1"])
    for name, body in (("nan.txt", f"a.png a.png 0 0 {'nan ' * 9}{'500 0 100 0 500 100 0 0 1 '}{pose}"),
                       ("zero.txt", f"a.png a.png 0 0 {'0 ' * 18}{pose}")):
        (tmp_path / name).write_text(body + "\n")
        res = CliRunner().invoke(cli, ["eval", "match", "--data", str(tmp_path / name)])
        assert res.exit_code != 0 and "not a camera matrix" in res.output and "Traceback" not in res.output
    (tmp_path / "latin.txt").write_bytes(b"caf\xe9.png b.png 0 0\n")
    res = CliRunner().invoke(cli, ["eval", "match", "--data", str(tmp_path / "latin.txt")])
    assert res.exit_code != 0 and "not UTF-8" in res.output
