"""Where things are: the checkout (its examples and configs) and the data beside it (../shared:
benchmark images and real raw files; tests that need them skip with a reason when it is absent)."""
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
SHARED = REPO.parent / "shared"
DATASETS = SHARED / "datasets"
RAW_SAMPLES = SHARED / "raw-samples"
