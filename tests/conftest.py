import os
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
torch.set_num_threads(min(2, os.cpu_count() or 1))

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
DATASETS = SHARED / "datasets"


@pytest.fixture
def datasets():
    if not DATASETS.is_dir():
        pytest.skip(f"benchmark datasets not found at {DATASETS} (../shared beside the checkout)")
    return DATASETS
