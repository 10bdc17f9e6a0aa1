"""A fixed-sigma model given a noise-map input channel, the start of the noise-aware gray fine-tune."""

import pytest
import torch

from n3cli.errors import CheckpointError
from n3cli.models.registry import build_model
from n3cli.store.checkpoint import ModelInfo, load_model, save_model
from n3cli.store.noise_map import with_noise_map

SMALL = {"features": 16, "depth": 4, "k": 3}


def _fixed(tmp_path, stages: int):
    torch.manual_seed(stages)
    args = {"in_channels": 1, "out_channels": 1, "stages": stages, **SMALL}
    net = build_model("n3net", args)
    path = tmp_path / f"fixed{stages}.safetensors"
    save_model(path, net, ModelInfo(name="g25", arch="n3net", args=args, color="gray",
                                    noise={"kind": "fixed", "sigma": 25.0},
                                    extra={"license": "MIT", "training": {"steps": 3}, "metrics": {"v": 1}}))
    return path


def test_a_plain_dncnn_given_a_map_gives_the_same_output_whatever_the_map(tmp_path):
    src = _fixed(tmp_path, stages=1)  # one stage: its residual adds the image channel only
    m = with_noise_map(src, (0, 75), "g")
    save_model(tmp_path / "g.safetensors", m.net, m.info)
    again, before = load_model(tmp_path / "g.safetensors"), load_model(src)
    x = torch.rand(1, 1, 40, 40)
    with torch.no_grad():
        want = before.net(x)
        for level in (0.0, 0.1, 0.3):
            got = again.net(torch.cat([x, torch.full_like(x, level)], 1))
            torch.testing.assert_close(got, want, rtol=0, atol=1e-6)
    assert again.info.takes_noise_map and again.info.noise == {"kind": "map", "sigma_range": [0.0, 75.0]}
    assert again.info.args["in_channels"] == 2 and again.info.name == "g"
    rec = again.info.extra["training"]
    assert rec["source"]["name"] == "g25" and rec["source"]["training"] == {"steps": 3} and len(rec["source"]["sha256"]) == 64
    assert "metrics" not in again.info.extra and again.info.extra["license"] == "MIT"  # figures were the source's


def test_only_the_first_convolution_grows_with_a_zero_map_column(tmp_path):
    src = _fixed(tmp_path, stages=2)
    old, new = load_model(src).net.state_dict(), with_noise_map(src, (0, 55), "g").net.state_dict()
    assert set(old) == set(new)
    grown = [k for k in new if new[k].shape != old[k].shape]
    assert grown == ["blocks.0.conv1.weight"]
    torch.testing.assert_close(new[grown[0]][:, :1], old[grown[0]], rtol=0, atol=0)
    assert not new[grown[0]][:, 1:].any()
    assert all(torch.equal(new[k], old[k]) for k in new if k not in grown)


def test_refuses_a_model_that_already_takes_a_map_and_a_bad_range(tmp_path):
    src = _fixed(tmp_path, stages=1)
    m = with_noise_map(src, (0, 75), "g")
    save_model(tmp_path / "g.safetensors", m.net, m.info)
    with pytest.raises(CheckpointError, match="without a noise map"):
        with_noise_map(tmp_path / "g.safetensors", (0, 75), "again")
    with pytest.raises(ValueError, match="sigma range"):
        with_noise_map(src, (30, 10), "g")
