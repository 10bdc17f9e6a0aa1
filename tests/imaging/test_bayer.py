"""The NumPy Malvar-He-Cutler demosaicing (raw --chroma-strength) against its torch twin (camera noise synthesis)."""
import numpy as np
import pytest
import torch

from n3cli.imaging import camera
from n3cli.imaging.bayer import demosaic_mhc


@pytest.mark.parametrize("shape", [(8, 10), (7, 9), (64, 50), (3, 5)])
def test_numpy_mhc_equals_the_torch_twin_whole_and_in_strips(shape):
    m = np.random.default_rng(0).uniform(0, 1, shape).astype(np.float32)
    ref = camera.demosaic_mhc(torch.from_numpy(m)[None, None])[0].permute(1, 2, 0).numpy()
    np.testing.assert_allclose(demosaic_mhc(m), ref, atol=1e-6)
    strips = np.concatenate([demosaic_mhc(m, (r, min(r + 4, shape[0]))) for r in range(0, shape[0], 4)], 0)
    np.testing.assert_allclose(strips, ref, atol=1e-6)
    # the known photosites are kept as they are
    np.testing.assert_array_equal(demosaic_mhc(m)[0::2, 0::2, 0], m[0::2, 0::2])
    np.testing.assert_array_equal(demosaic_mhc(m)[1::2, 1::2, 2], m[1::2, 1::2])
