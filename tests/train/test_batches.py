"""Training batches drawn on the device: crops, rotations and flips, noise, the SR degradation."""
import numpy as np
import pytest
import torch

from n3cli.imaging.resize import imresize, make_lr
from n3cli.train.batches import (
    Downscaler,
    ImageBank,
    _dihedral_grids,
    gaussian_noise,
    step_generator,
)
from n3cli.train.config import validate
from n3cli.train.tasks import task_for

CPU = torch.device("cpu")


def test_the_eight_transforms_are_numpy_rotations_and_flips():
    a = np.arange(36).reshape(6, 6)
    rows, cols = _dihedral_grids(6, CPU)
    got = [a[r.numpy(), c.numpy()] for r, c in zip(rows, cols)]
    want = [np.rot90(a, k) for k in range(4)] + [np.rot90(np.fliplr(a), k) for k in range(4)]
    for g, w in zip(got, want):
        assert np.array_equal(g, w)


def test_crops_are_whole_windows_of_one_image_in_an_allowed_orientation():
    """Pixel values encode (image, row, column): every crop is one image's window, turned by one
    of the allowed transforms, inside the image, and 8-bit images are kept exactly."""
    images = []
    for n, (h, w) in enumerate([(40, 50), (60, 33)]):
        y, x = np.mgrid[0:h, 0:w]
        images.append(np.stack([y, x, np.full_like(y, n)], -1).astype(np.float32) / 255.0)
    bank = ImageBank(images, CPU)
    assert bank.bank.dtype == torch.uint8
    for rot90, flip, kinds in ((False, False, {0}), (True, False, {0, 1, 2, 3}), (True, True, set(range(8)))):
        seen = set()
        crops = bank.crops(400, 20, step_generator(0, 1, CPU), rot90, flip)
        for c in np.rint(crops.numpy() * 255).astype(int):
            img = c[2, 0, 0]
            assert (c[2] == img).all()
            h, w = images[img].shape[:2]
            plain = None
            for t in range(8):  # which transform gives a plain window (rows increasing down, columns right)?
                r, q = np.rot90(c[0], -(t % 4)), np.rot90(c[1], -(t % 4))
                if t >= 4:
                    r, q = np.fliplr(r), np.fliplr(q)
                if (np.diff(r, axis=0) == 1).all() and (np.diff(q, axis=1) == 1).all() and (np.diff(r, axis=1) == 0).all():
                    plain = t
                    assert 0 <= r.min() and r.max() < h and 0 <= q.min() and q.max() < w
                    break
            assert plain is not None
            seen.add(plain)
        assert seen == kinds


def test_a_bank_of_16_bit_images_is_kept_in_float():
    img = np.full((30, 30, 1), 1000 / 65535, np.float32)
    bank = ImageBank([img], CPU)
    assert bank.bank.dtype == torch.float32
    assert torch.equal(bank.crops(2, 10, step_generator(0, 0, CPU))[0, 0], torch.full((10, 10), img[0, 0, 0]))


def test_downsampled_training_images_average_away_their_8_bit_steps(tmp_path):
    """data.downsample: blocks are averaged, so an 8-bit image's quantisation error shrinks."""
    import imageio.v3 as iio

    from n3cli.train.data import box_downsample, load_images

    yy, xx = np.mgrid[0:81, 0:64]
    truth = (0.5 + 0.2 * np.sin(xx / 7.3 + np.arange(3)[:, None, None]) * np.cos(yy / 5.1)).transpose(1, 2, 0)
    iio.imwrite(tmp_path / "a.png", np.rint(truth * 255).astype(np.uint8))
    (_, full), = load_images(tmp_path, "rgb")
    (_, half), = load_images(tmp_path, "rgb", downsample=2)
    assert half.shape == (40, 32, 3) and half.dtype == np.float32
    np.testing.assert_allclose(half[3, 5], full[6:8, 10:12].mean((0, 1)), rtol=1e-6)
    err_full = np.abs(full - truth).mean()
    err_half = np.abs(half - box_downsample(truth.astype(np.float32), 2)).mean()
    assert err_half < 0.7 * err_full  # the rounding errors of 4 pixels partly cancel
    assert box_downsample(full, 1) is full
    cfg = {"name": "x", "model": {"arch": "n3net"}, "data": {"train": "x", "downsample": 0}}
    with pytest.raises(Exception, match="data.downsample must be a positive number"):
        validate(cfg)


def test_the_sr_degradation_is_the_protocols():
    """LR = MATLAB bicubic downscale of the 8-bit crop, rounded; input = its bicubic upscale."""
    rng = np.random.default_rng(0)
    crop = np.clip(np.rint(rng.normal(128, 40, (1, 1, 48, 48)).cumsum(2) / 6 % 255), 0, 255) / 255.0
    down = Downscaler(48, [3], CPU)
    inp, hr = down(torch.tensor(crop, dtype=torch.float32), step_generator(0, 0, CPU))
    ref = imresize(make_lr(np.rint(crop[0, 0] * 255), 3), 3) / 255.0
    assert np.array_equal(hr[0, 0].numpy() * 255, np.rint(crop[0, 0] * 255))
    assert np.abs(inp[0, 0].numpy() - ref).max() < 1e-4


@pytest.mark.parametrize("kind,takes_map", [("fixed", False), ("map", True), ("blind", False)])
def test_gaussian_noise_has_the_drawn_sigma_and_the_map_says_it(kind, takes_map):
    clean = torch.full((64, 1, 40, 40), 0.5)
    inp, target = gaussian_noise(clean, kind, 25.0, [10.0, 50.0], takes_map, step_generator(1, 2, CPU))
    assert inp.shape[1] == (2 if takes_map else 1) and torch.equal(target, clean)
    std = (inp[:, 0] - 0.5).flatten(1).std(1) * 255
    if kind == "fixed":
        assert abs(float(std.mean()) - 25) < 0.3
    else:
        assert 9 < float(std.min()) and float(std.max()) < 51 and float(std.max() - std.min()) > 20
    if takes_map:
        assert torch.allclose(inp[:, 1].flatten(1).std(1), torch.zeros(64))
        assert torch.allclose(inp[:, 1, 0, 0] * 255, std, rtol=0.1)  # 1,600 samples: ~2% error


def test_a_batch_depends_on_seed_and_step_only_not_on_the_number_of_processes(tmp_path):
    from PIL import Image

    (tmp_path / "t").mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray((rng.random((90, 90)) * 255).astype(np.uint8)).save(tmp_path / "t" / f"{i}.png")
    cfg = validate({"name": "t", "model": {"arch": "dncnn", "args": {}}, "data": {"train": str(tmp_path / "t"),
                    "batch": 6, "patch": 40}, "noise": {"kind": "blind"}})
    from n3cli.train.data import load_images

    task = task_for(cfg)
    task.prepare([px for _, px in load_images(cfg["data"]["train"], "gray")], CPU)
    whole = task.batch(7)
    halves = [task.batch(7, rank, 2) for rank in (0, 1)]
    assert torch.equal(torch.cat([h[0] for h in halves]), whole[0])
    assert torch.equal(task.batch(7)[0], whole[0]) and not torch.equal(task.batch(8)[0], whole[0])


def test_every_seed_and_step_draws_its_own_batch_on_the_cpu():
    """Torch's CPU generator keeps only the low 32 bits of a seed: the config's seed must reach them."""
    draws = {(seed, step): torch.rand(4, generator=step_generator(seed, step, CPU)) for seed in (0, 1, 3)
             for step in (0, 1)}
    keys = list(draws)
    for i, a in enumerate(keys):
        for b in keys[i + 1 :]:
            assert not torch.equal(draws[a], draws[b]), (a, b)
    assert torch.equal(draws[(3, 1)], torch.rand(4, generator=step_generator(3, 1, CPU)))
