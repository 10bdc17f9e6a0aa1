"""Multi-frame reconstruction (`n3cli.imaging.superres`): its model of a frame is the SR protocol's
shrinking, and shifted frames give back detail one frame lacks."""
from pathlib import Path

import numpy as np
import pytest

from n3cli.eval.metrics import psnr
from n3cli.imaging.resize import imresize
from n3cli.imaging.superres import Frame, Reconstruction
from n3cli.io.images import read_image
from n3cli.pipelines import burst_sr

ASTRONAUT = Path(__file__).resolve().parents[2] / "examples" / "astronaut_clean.png"


def shifted_burst(scale: int, shifts) -> tuple[np.ndarray, list[Frame]]:
    """A detailed large image and its frames: it moved by whole large pixels (``shifts``, so the
    frames are exact), then shrunk as the SR protocol shrinks, with the homographies that say so."""
    hr = read_image(ASTRONAUT).pixels[32:160, 64:192].astype(np.float64)
    frames = []
    for dy, dx in shifts:
        moved = np.roll(hr, (dy, dx), axis=(0, 1))  # the scene at P shows at P + d
        H = np.float64([[1, 0, dx / scale], [0, 1, dy / scale], [0, 0, 1]])
        frames.append(Frame(imresize(moved, 1.0 / scale).astype(np.float32), H, np.ones((128 // scale,) * 2, np.float32)))
    return hr, frames


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_a_frame_is_predicted_as_matlab_bicubic_shrinks(scale):
    rng = np.random.default_rng(scale)
    x = rng.random((24 * scale, 24 * scale, 3)).astype(np.float32)
    small = imresize(x.astype(np.float64), 1.0 / scale)
    frame = Frame(small.astype(np.float32), np.eye(3), np.ones(small.shape[:2], np.float32))
    import torch

    term = Reconstruction([frame], scale, 0.01)._term(frame, (3, *x.shape[:2]), 0, 0)
    pred = term.apply(torch.from_numpy(x.transpose(2, 0, 1).copy())).numpy().transpose(1, 2, 0)
    m = term.mask.numpy()[0] > 0  # pixels whose filter stays inside the window
    assert m[4:-4, 4:-4].all()
    assert np.abs(pred - small)[m].max() < 1e-5  # MATLAB's border mirroring lies outside the mask


def test_shifted_frames_give_back_detail_and_windows_join_seamlessly(monkeypatch):
    hr, frames = shifted_burst(2, [(0, 0), (0, 1), (1, 0), (1, 1)])
    x0 = imresize(frames[0].pixels.astype(np.float64), 2).astype(np.float32)  # bicubic: the prior
    whole = burst_sr.refine(x0, frames, 2, 0.01)
    m = (slice(8, -8), slice(8, -8))  # rolled borders: the frames disagree with the scene there
    assert psnr(whole[m], hr[m]) > psnr(x0[m], hr[m]) + 5.0
    monkeypatch.setattr(burst_sr, "WINDOW", 24)  # 3 x 3 windows
    tiled = burst_sr.refine(x0, frames, 2, 0.01)
    assert psnr(tiled[m], hr[m]) > psnr(whole[m], hr[m]) - 0.1
    assert np.abs(tiled - whole)[m].max() < 0.02


def test_pixels_no_frame_constrains_keep_the_prior():
    hr, frames = shifted_burst(2, [(0, 0), (1, 1)])
    for f in frames:
        f.weight[:, :32] = 0  # the left half moved: no frame counts there
    x0 = imresize(frames[0].pixels.astype(np.float64), 2).astype(np.float32)
    out = Reconstruction(frames, 2, 0.01).solve(x0, 0, 0)
    assert np.abs(out[:, :48] - x0[:, :48]).max() < 1e-3  # beyond the filters' reach of the right half
    assert np.abs(out[:, 80:] - x0[:, 80:]).mean() > 1e-3  # where the frames count, they move it
