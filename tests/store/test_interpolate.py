"""Weight interpolation of a fine-tuned model with its base (the shipped n3net-color-real is one)."""

import pytest
import torch

from n3cli.errors import CheckpointError
from n3cli.models.registry import build_model
from n3cli.store.checkpoint import ModelInfo, load_model, save_model
from n3cli.store.interpolate import interpolate_models

ARGS = {"in_channels": 4, "out_channels": 3, "features": 16, "depth": 4, "k": 3, "stages": 2}


def _pair(tmp_path):
    torch.manual_seed(0)
    base = build_model("n3net", ARGS)
    tuned = build_model("n3net", ARGS)
    with torch.no_grad():  # batch-norm running statistics too, so that they are interpolated as well
        for net in (base, tuned):
            for k, v in net.state_dict().items():
                if v.is_floating_point():
                    v.copy_(torch.rand_like(v) + (0.5 if k.endswith("running_var") else -0.5))
    info = dict(arch="n3net", args=ARGS, task="denoise", color="rgb", noise={"kind": "map"})
    save_model(tmp_path / "base.safetensors", base, ModelInfo(name="base", extra={"training": {"steps": 5}}, **info))
    save_model(tmp_path / "tuned.safetensors", tuned, ModelInfo(name="tuned", extra={"training": {"steps": 7},
                                                                          "metrics": {"val": {"psnr": 30.0}}}, **info))
    return tmp_path / "base.safetensors", tmp_path / "tuned.safetensors"


def test_ends_give_either_network_and_the_middle_mixes_every_float_tensor(tmp_path):
    b, t = _pair(tmp_path)
    sb, st = load_model(b).net.state_dict(), load_model(t).net.state_dict()
    for alpha, want in ((0.0, sb), (1.0, st)):
        got = interpolate_models(b, t, alpha).net.state_dict()
        assert all(torch.equal(got[k], want[k]) for k in st if st[k].is_floating_point())
    mid = interpolate_models(b, t, 0.25)
    got = mid.net.state_dict()
    for k in st:
        if st[k].is_floating_point():
            torch.testing.assert_close(got[k], 0.25 * st[k] + 0.75 * sb[k])
    assert mid.info.name == "tuned"
    rec = mid.info.extra["training"]
    assert rec["alpha"] == 0.25 and rec["base"]["file"] == "base.safetensors" and rec["tuned"]["training"] == {"steps": 7}
    assert len(rec["base"]["sha256"]) == 64
    assert "metrics" not in mid.info.extra  # the tuned network's figures are not the mix's
    # it saves and loads like any model, and runs
    save_model(tmp_path / "mix.safetensors", mid.net, mid.info)
    again = load_model(tmp_path / "mix.safetensors")
    x = torch.rand(1, 4, 40, 40)
    with torch.no_grad():
        assert torch.equal(again.net(x), mid.net.eval()(x))


def test_refuses_two_architectures_and_alpha_outside_0_1(tmp_path):
    b, t = _pair(tmp_path)
    other = build_model("n3net", {**ARGS, "depth": 3})
    save_model(tmp_path / "other.safetensors", other,
               ModelInfo(name="o", arch="n3net", args={**ARGS, "depth": 3}, color="rgb"))
    with pytest.raises(CheckpointError, match="not the architecture"):
        interpolate_models(b, tmp_path / "other.safetensors", 0.5)
    with pytest.raises(ValueError, match="alpha"):
        interpolate_models(b, t, 1.5)
