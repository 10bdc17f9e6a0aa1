"""Real-noise pairs made from single raw files (n3cli.eval.raw_pairs) and `n3 eval real --from-raw`."""
import json

import numpy as np
import pytest
from click.testing import CliRunner
from shared_paths import RAW_SAMPLES

from n3cli import api
from n3cli.cli.main import cli
from n3cli.eval.raw_pairs import split_blocks, to_mosaic


def test_each_3x3_block_gives_its_centre_and_the_mean_of_the_other_eight():
    planes = np.arange(4 * 7 * 6, dtype=np.float32).reshape(4, 7, 6)  # 7 rows: the last one is dropped
    centre, ring = split_blocks(planes)
    assert centre.shape == ring.shape == (4, 2, 2)
    block = planes[2, 3:6, 3:6]
    assert centre[2, 1, 1] == block[1, 1] and ring[2, 1, 1] == pytest.approx((block.sum() - block[1, 1]) / 8)
    m = to_mosaic(centre)
    assert m.shape == (4, 4) and m[0, 0] == centre[0, 0, 0] and m[1, 1] == centre[3, 0, 0]


@pytest.fixture
def kodak():
    f = RAW_SAMPLES / "kodak_dc120.kdc"
    if not f.is_file():
        pytest.skip(f"real raw files not found at {RAW_SAMPLES} (../shared beside the checkout)")
    return f


def test_pairs_from_a_real_raw_file_hold_its_noise_against_a_cleaner_reference(kodak):
    pairs = api.read_raw_pairs(kodak)
    assert [n for n, _, _ in pairs] == ["kodak_dc120_x1", "kodak_dc120_x4"]
    psnrs = []
    for _, noisy, clean in pairs:
        assert noisy.shape == clean.shape == (324, 282, 3) and noisy.dtype == np.float32
        assert np.array_equal(noisy, np.rint(noisy * 255) / 255)  # 8-bit, as photos are
        psnrs.append(10 * np.log10(1 / np.mean((noisy.astype(np.float64) - clean) ** 2)))
    assert 28 < psnrs[0] < 32 and psnrs[1] < psnrs[0] - 4  # pushed 4x brighter: the noise shows more


def test_eval_real_from_raw_scores_a_model_on_them(kodak):
    res = CliRunner().invoke(cli, ["eval", "real", "--from-raw", "--data", str(kodak), "--json", "--device", "cpu"])
    assert res.exit_code == 0, res.output
    r = json.loads(res.output)["results"][0]
    assert r["pairs"] == 2 and r["pairs_from"].startswith("raw files")
    assert r["mean_psnr"] > r["noisy_psnr"] + 0.2  # the shipped real-noise model removes some of it
    assert CliRunner().invoke(cli, ["eval", "real", "--from-raw", "--synthesize", "--data", str(kodak)]).exit_code == 2
    assert CliRunner().invoke(cli, ["eval", "real", "--push", "2", "--data", str(kodak)]).exit_code == 2
