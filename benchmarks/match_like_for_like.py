"""Like-for-like check of the kNN interpolation on `n3 match`: CNNet gets a kNN datastore built
exactly as the shipped N³Net's was (`n3 train --build-datastore`, into a temporary copy; nothing
in weights/ changes), then robust estimation, CNNet, CNNet+kNN, N³Net and N³Net+kNN are scored
on the same synthetic test pairs. Prints pose mAP at 5/10/20 degrees.

    python benchmarks/match_like_for_like.py [--pairs 500] [--outliers 0.5 0.95] [--json OUT]
        [--cnnet FILE --n3net FILE --cnnet-config configs/match_ft/cnnet.yaml]

The CNNet datastore is built from ``--cnnet-config``'s training pairs, which should be the config
that trained ``--cnnet`` last (the shipped N³Net's was built from its own final config).
"""
from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=500)
    ap.add_argument("--outliers", type=float, nargs=2, default=[0.5, 0.95])
    ap.add_argument("--json", default=None, help="also write the report here")
    ap.add_argument("--cnnet", default="cnnet-match", help="CNNet model name or file [shipped]")
    ap.add_argument("--n3net", default="n3net-match", help="N³Net model (with its datastore) name or file [shipped]")
    ap.add_argument("--cnnet-config", default="configs/match_ft/cnnet.yaml",
                    help="config whose training pairs build CNNet's datastore (relative to the repository)")
    a = ap.parse_args()

    from n3cli.api import load_training_config
    from n3cli.match.evaluate import evaluate_match
    from n3cli.match.knn_vote import scorer_for
    from n3cli.match.train import add_datastore
    from n3cli.store import zoo
    from n3cli.store.checkpoint import load_model

    root = Path(__file__).resolve().parents[1]
    with tempfile.TemporaryDirectory() as d:
        cnnet = Path(d) / "cnnet-match.safetensors"
        find = lambda ref: zoo.find(ref).path if ref in zoo.names() else Path(ref)  # noqa: E731
        shutil.copy(find(a.cnnet), cnnet)
        knn = add_datastore(load_training_config(root / a.cnnet_config), str(cnnet))
        print(f"cnnet-match datastore: k {knn['k']}, T {knn['temperature']}, lambda {knn['lambda']}", flush=True)
        nets: dict = {"robust": None}
        for key, path in (("cnnet", cnnet), ("n3net", find(a.n3net))):
            m = load_model(path)
            nets[key] = m.net.eval()
            nets[f"{key}+knn"] = (nets[key], scorer_for(path, m.info, True)[0])
        rep = evaluate_match(nets, None, a.pairs, outliers=tuple(a.outliers))
    for res in rep["results"]:
        print(f"pose mAP, {res['pairs']} synthetic pairs, {a.outliers[0]:.0%}-{a.outliers[1]:.0%} wrong")
        print(f"{'method':<12} {'5 deg':>7} {'10 deg':>7} {'20 deg':>7}")
        for k, v in res["map"].items():
            print(f"{k:<12} {v['5']:7.3f} {v['10']:7.3f} {v['20']:7.3f}")
    if a.json:
        Path(a.json).write_text(json.dumps(rep, indent=1))


if __name__ == "__main__":
    main()
