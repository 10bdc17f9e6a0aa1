"""Regenerate the bundled example images from scikit-image's astronaut sample.

The astronaut photo (Eileen Collins, NASA, image STS-63 crew) is in the public domain, as
scikit-image's data README states. We ship a 256x256 crop and a noisy copy of it
(Gaussian sigma 25, seed 0, rounded to 8 bits). Needs scikit-image (not an n3 dependency).
"""
from pathlib import Path

import numpy as np
from skimage import data
from PIL import Image

here = Path(__file__).parent
clean = data.astronaut()[30:286, 140:396]
rng = np.random.default_rng(0)
noisy = np.clip(np.rint(clean + rng.normal(0, 25, clean.shape)), 0, 255).astype(np.uint8)
Image.fromarray(clean).save(here / "astronaut_clean.png")
Image.fromarray(noisy).save(here / "astronaut_noisy.png")
print("wrote", here / "astronaut_clean.png", here / "astronaut_noisy.png")
