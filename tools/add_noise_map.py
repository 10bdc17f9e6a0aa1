"""Maintainer tool: a fixed-sigma model as a noise-map model, the start of a noise-aware fine-tune.

    python tools/add_noise_map.py SOURCE LOW HIGH NAME OUT
    python tools/add_noise_map.py weights/n3net-gray-s25.safetensors 0 75 n3net-gray runs/cpu/n3net-gray-init.safetensors

OUT is SOURCE with one more input channel (the sigma/255 map, zero weights) and the noise
convention {kind: map, sigma_range: [LOW, HIGH]}; train it with a config whose ``init`` names it.
"""
import sys

from n3cli.errors import CheckpointError
from n3cli.store.checkpoint import save_model
from n3cli.store.noise_map import with_noise_map


def main() -> None:
    if len(sys.argv) != 6:
        sys.exit(__doc__)
    source, low, high, name, out = sys.argv[1:]
    try:
        sigma_range = (float(low), float(high))
    except ValueError:
        sys.exit(f"error: LOW and HIGH must be numbers (sigma, 0-255 units), got {low!r} and {high!r}")
    try:
        m = with_noise_map(source, sigma_range, name)
    except (CheckpointError, ValueError) as e:
        sys.exit(f"error: {e}")
    save_model(out, m.net, m.info)
    print(f"{out}: {source} with a noise-map input (sigma {low}-{high})")


if __name__ == "__main__":
    main()
