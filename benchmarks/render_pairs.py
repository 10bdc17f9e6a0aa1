"""Render two-view test pairs from photos (`n3cli.match.rendered`): photo-textured walls of a box
room seen by two cameras of known pose, written as PNGs plus a SuperGlue-format `pairs.txt` that
`n3 eval match --data OUT` scores. Real SIFT keypoints and mismatches on real texture; the
geometry is synthetic and exact.

    python benchmarks/render_pairs.py --textures ../shared/datasets/CBSD68 --out /tmp/rendered --pairs 100
    n3 eval match --data /tmp/rendered              # ratio-test matches, as `n3 match` makes them
    n3 eval match --data /tmp/rendered --ratio 1    # every nearest neighbour (CNNet's protocol)

The textures are read, never copied: the rendered pairs are derived from them and stay outside
the repository like the datasets themselves.
"""
from __future__ import annotations

import argparse
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--textures", required=True, help="folder of photos for the walls")
    ap.add_argument("--out", required=True, help="output folder (PNGs and pairs.txt)")
    ap.add_argument("--pairs", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--size", type=int, nargs=2, default=[640, 480], metavar=("W", "H"))
    a = ap.parse_args()

    from n3cli.match.rendered import load_textures, write_pairs

    t0 = time.time()
    path = write_pairs(a.out, load_textures(a.textures), a.pairs, a.seed, tuple(a.size), progress=True)
    print(f"wrote {path} ({a.pairs} pairs, seed {a.seed}) in {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
