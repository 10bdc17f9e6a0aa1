"""--precision bf16: convolutions in bfloat16 stay close to float32, and a tile that comes out
non-finite or black is run again in float32."""
import numpy as np
import pytest
import torch

from n3cli import api
from n3cli.errors import N3Error
from n3cli.eval.metrics import psnr
from n3cli.runtime.torch_runner import TorchRunner


def _noisy(seed=0):
    yy, xx = np.mgrid[0:120, 0:130] / 130
    clean = (0.5 + 0.3 * np.sin(6 * xx + 3 * yy))[:, :, None].astype(np.float32)
    return clean, (clean + np.random.default_rng(seed).normal(0, 25 / 255, clean.shape)).astype(np.float32)


def test_bf16_denoises_like_fp32():
    clean, noisy = _noisy()
    fp32 = api.denoise(api.load_denoiser(None, "gray", "cpu"), noisy)
    runner = api.load_denoiser(None, "gray", "cpu", precision="bf16")
    bf16 = api.denoise(runner, noisy)
    assert runner.fallbacks == 0
    assert psnr(bf16, fp32) > 40  # bfloat16 convolutions: small differences ...
    assert abs(psnr(bf16, clean) - psnr(fp32, clean)) < 0.1  # ... that do not change the quality


def test_a_non_finite_or_black_tile_is_run_again_in_fp32():
    _, noisy = _noisy(1)
    ref = api.denoise(api.load_denoiser(None, "gray", "cpu"), noisy)
    for bad in (float("nan"), 0.0):
        runner = api.load_denoiser(None, "gray", "cpu", precision="bf16")
        real = runner.net.forward

        def broken(x, real=real, bad=bad):  # what an overflowing bf16 pass looks like
            y = real(x)
            return torch.full_like(y, bad) if torch.is_autocast_enabled("cpu") else y

        runner.net.forward = broken
        out = api.denoise(runner, noisy)
        assert runner.fallbacks >= 1 and np.array_equal(out, ref)


def test_bf16_is_for_the_torch_backend():
    with pytest.raises(N3Error, match="torch backend"):
        api.load_denoiser(None, "gray", "cpu", backend="onnx", precision="bf16")
    with pytest.raises(N3Error, match="unknown precision"):
        TorchRunner(torch.nn.Conv2d(1, 1, 3), precision="fp16")


def test_in_a_batch_of_tiles_only_the_bad_tile_runs_again():
    _, noisy = _noisy(2)
    ref = api.denoise(api.load_denoiser(None, "gray", "cpu"), noisy, tile=40, overlap=20)  # 12 tiles of one size
    runner = api.load_denoiser(None, "gray", "cpu", precision="bf16")
    runner.tile_batch = 4
    real, batches = runner.net.forward, []

    def first_broken(x):  # the first tile of every bf16 batch overflows
        y = real(x)
        if torch.is_autocast_enabled("cpu"):
            batches.append(x.shape[0])
            y[0] = float("nan")
        return y

    runner.net.forward = first_broken
    out = api.denoise(runner, noisy, tile=40, overlap=20)
    assert max(batches) > 1 and runner.fallbacks == len(batches) < sum(batches)
    assert np.isfinite(out).all() and psnr(out, ref) > 40
