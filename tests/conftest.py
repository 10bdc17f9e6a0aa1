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


@pytest.fixture(autouse=True)
def no_user_noise_profiles(tmp_path_factory, monkeypatch):
    """The user's own noise profiles (~/.config/n3) must not change what a test reads."""
    monkeypatch.delenv("N3_NOISE_PROFILES", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path_factory.mktemp("config")))
