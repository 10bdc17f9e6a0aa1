import os
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
torch.set_num_threads(min(2, os.cpu_count() or 1))

from shared_paths import DATASETS  # noqa: E402  (needs the sys.path entry above)


@pytest.fixture
def datasets():
    if not DATASETS.is_dir():
        pytest.skip(f"benchmark datasets not found at {DATASETS} (../shared beside the checkout)")
    return DATASETS
