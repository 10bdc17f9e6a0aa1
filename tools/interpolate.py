"""Maintainer tool: a fine-tuned model's weights interpolated with its base model's (WiSE-FT).

    python tools/interpolate.py BASE TUNED ALPHA OUT
    python tools/interpolate.py weights/n3net-color.safetensors runs/ft/best.safetensors 0.7 mix.safetensors

OUT gets ``ALPHA * TUNED + (1 - ALPHA) * BASE`` and TUNED's description, with both sources (file,
sha256, training record) and ALPHA in its training record. Measure OUT before shipping it.
"""
import sys

from n3cli.errors import CheckpointError
from n3cli.store.checkpoint import save_model
from n3cli.store.interpolate import interpolate_models


def main() -> None:
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    base, tuned, alpha, out = sys.argv[1:]
    try:
        m = interpolate_models(base, tuned, float(alpha))
    except (CheckpointError, ValueError) as e:
        sys.exit(f"error: {e}")
    save_model(out, m.net, m.info)
    print(f"{out}: {alpha} x {tuned} + {1 - float(alpha):g} x {base}")


if __name__ == "__main__":
    main()
