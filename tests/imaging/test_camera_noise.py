"""The camera pipeline (JPEG, demosaicing, development) and the realistic camera noise made with
it: agreement with Pillow's JPEG, the noise's statistics, determinism, and the batch estimator."""
import io

import numpy as np
import pytest
import torch
from PIL import Image as PILImage
from shared_paths import REPO

from n3cli.eval.metrics import psnr
from n3cli.imaging import camera, camera_noise
from n3cli.imaging.estimate import estimate_sigma, estimate_sigma_batch
from n3cli.io.images import read_image


def photo(h=128, w=160) -> np.ndarray:
    """A crop of the bundled example photo (public domain), H x W x 3 float in [0, 1]."""
    px = read_image(REPO / "examples" / "astronaut_clean.png").pixels
    return np.ascontiguousarray(px[40 : 40 + h, 60 : 60 + w, :3])


def as_batch(px: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(px.transpose(2, 0, 1).copy())[None]


def as_image(t: torch.Tensor) -> np.ndarray:
    return t[0].permute(1, 2, 0).numpy().astype(np.float64)


@pytest.mark.parametrize("quality", [40, 75, 95])
def test_jpeg_simulation_agrees_with_pillow(quality):
    px = photo()
    u8 = np.rint(px * 255).astype(np.uint8)
    buf = io.BytesIO()
    PILImage.fromarray(u8).save(buf, "JPEG", quality=quality)
    pil = np.asarray(PILImage.open(buf)).astype(np.float64) / 255
    sim = as_image(camera.jpeg(as_batch(u8 / np.float32(255)), torch.tensor([float(quality)])))
    assert psnr(sim, pil) > 40  # within the rounding of libjpeg's integer DCT
    assert abs(psnr(sim, u8 / 255) - psnr(pil, u8 / 255)) < 0.5  # the same loss as the real encoder


def test_jpeg_leaves_block_edges_at_multiples_of_8():
    yy, xx = np.mgrid[0:64, 0:64] / 64.0
    smooth = np.stack([0.3 + 0.5 * xx * yy, 0.5 + 0.3 * np.sin(3 * xx), 0.4 + 0.4 * yy], -1).astype(np.float32)
    out = as_image(camera.jpeg(as_batch(smooth), torch.tensor([20.0])))
    step = np.abs(np.diff(out[:, :, 0], axis=1))  # horizontal differences of luma-heavy red
    at_edges = step[:, 7::8].mean()
    inside = np.delete(step, np.s_[7::8], axis=1).mean()
    assert at_edges > 2 * inside


def test_demosaicing_keeps_flat_colours_and_mhc_beats_bilinear():
    flat = torch.tensor([0.2, 0.5, 0.7]).view(1, 3, 1, 1).expand(1, 3, 32, 32).contiguous()
    for f in (camera.demosaic_bilinear, camera.demosaic_mhc):
        assert torch.allclose(f(camera.mosaic(flat)), flat, atol=1e-6)
    x = as_batch(photo())
    inner = (..., slice(4, -4), slice(4, -4))
    err = [psnr(f(camera.mosaic(x))[inner].numpy(), x[inner].numpy()) for f in (camera.demosaic_bilinear,
                                                                               camera.demosaic_mhc)]
    assert err[1] > err[0] + 2, err  # Malvar-He-Cutler's gradient correction: sharper than bilinear


def test_develop_inverts_unprocess_below_the_highlights():
    x = as_batch(np.clip(photo(), 0.03, 0.75))  # away from white, where the gain fade and clipping act
    ccm, gains = camera.sample_camera(1, torch.Generator().manual_seed(4), torch.device("cpu"))
    back = camera.develop(camera.unprocess(x, ccm, gains), ccm, gains)
    assert (back - x).abs().max() < 1e-3


def flat_params(n, a, b):
    p = camera_noise.sample(n, torch.Generator().manual_seed(0), torch.device("cpu"))
    p.a, p.b = torch.full((n,), a), torch.full((n,), b)
    p.quality, p.sharpen, p.mhc = torch.zeros(n), torch.zeros(n), torch.ones(n, dtype=torch.bool)
    return p


def noise_of(level: float, a: float, b: float, seed: int = 0) -> np.ndarray:
    """The sRGB noise (noisy - clean) of a flat grey patch at ``level``, ``(3, 64, 64)``."""
    x = torch.full((1, 3, 64, 64), level)
    noisy, clean = camera_noise.synthesize(x, flat_params(1, a, b), torch.Generator().manual_seed(seed))
    return (noisy - clean)[0, :, 8:-8, 8:-8].numpy().astype(np.float64)


def test_shot_noise_follows_the_signal_and_read_noise_does_not():
    """Developed (gamma, tone curve), shot noise (a) grows from the shadows to the mid-tones, while
    read noise (b) is largest in the shadows, where the gamma curve is steepest."""
    shot = [noise_of(level, 2e-3, 1e-9).std() for level in (0.05, 0.4)]
    read = [noise_of(level, 1e-9, 2e-5).std() for level in (0.05, 0.7)]
    assert shot[1] > 1.5 * shot[0], shot
    assert read[0] > 1.5 * read[1], read


def test_noise_is_correlated_across_channels_and_neighbours():
    n = noise_of(0.4, 2e-3, 1e-5)
    r, g = n[0].ravel(), n[1].ravel()
    assert abs(np.corrcoef(r, g)[0, 1]) > 0.1  # the colour matrix mixes the channels' noise
    right = np.corrcoef(n[1, :, :-1].ravel(), n[1, :, 1:].ravel())[0, 1]
    assert right > 0.2  # demosaicing spreads each photosite's noise to its neighbours
    white = np.random.default_rng(0).standard_normal((64, 64))
    assert abs(np.corrcoef(white[:, :-1].ravel(), white[:, 1:].ravel())[0, 1]) < 0.05  # what "no correlation" reads


def test_synthesis_is_a_function_of_the_seed_and_the_target_is_noise_free():
    x = as_batch(photo(64, 64)).expand(3, -1, -1, -1).contiguous()
    one = camera_noise.camera_noise(x, torch.Generator().manual_seed(7))
    two = camera_noise.camera_noise(x, torch.Generator().manual_seed(7))
    other = camera_noise.camera_noise(x, torch.Generator().manual_seed(8))
    assert torch.equal(one[0], two[0]) and torch.equal(one[1], two[1])
    assert not torch.equal(one[0], other[0])
    noisy, clean, p = one
    assert noisy.shape == clean.shape == x.shape
    assert torch.equal(noisy, torch.round(noisy * 255) / 255)  # a photo file's 8-bit values
    for i in range(3):  # the clean target: the same development without the sensor noise
        assert psnr(clean[i].numpy(), x[i].numpy()) > psnr(noisy[i].numpy(), x[i].numpy())


def test_batch_estimator_reads_what_the_image_estimator_reads():
    """Training's reading on torch batches is the all-patches one that the real-noise model is then
    given at inference (n3cli.pipelines.denoise.noise_estimator)."""
    x = as_batch(photo(80, 80)).expand(4, -1, -1, -1).contiguous()
    noisy, _, _ = camera_noise.camera_noise(x, torch.Generator().manual_seed(1))
    batch = estimate_sigma_batch(noisy).numpy()
    one = [estimate_sigma(noisy[i].permute(1, 2, 0).numpy(), method="all-patches") for i in range(4)]
    np.testing.assert_allclose(batch, one, rtol=1e-4)
