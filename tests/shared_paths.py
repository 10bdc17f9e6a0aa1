"""Where the data beside the checkout lives (../shared): benchmark images and real raw files.
Tests that need them skip with a reason when the folder is absent."""
from pathlib import Path

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
DATASETS = SHARED / "datasets"
RAW_SAMPLES = SHARED / "raw-samples"
