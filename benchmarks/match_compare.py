"""Pose mAP of any CNNet and N³Net match model files side by side (with robust estimation on all
matches), on the synthetic test sets of the model card and, with ``--rendered``, on rendered
photo pairs (benchmarks/render_pairs.py) with ratio-test and with nearest-neighbour SIFT matches:
what `n3 eval match` reports, but with the CNNet baseline replaceable too (e.g. to score
both after the same fine-tuning), and with the N³Net - CNNet gap's 95% interval from a paired
bootstrap over the test pairs.

    python benchmarks/match_compare.py --cnnet runs/match_ft/cnnet/model.safetensors \\
        --n3net runs/match_ft/n3net/model.safetensors [--pairs 500 300 300 200] \\
        [--rendered /tmp/rendered] [--knn] [--no-verify] [--json OUT]
"""
from __future__ import annotations

import argparse
import json

SETS = ((0.5, 0.95), (0.8, 0.95), (0.9, 0.97), (0.0, 0.5))
THRESHOLDS = ("5", "10", "20")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cnnet", default="cnnet-match", help="model name or file [shipped cnnet-match]")
    ap.add_argument("--n3net", default="n3net-match", help="model name or file [shipped n3net-match]")
    ap.add_argument("--pairs", type=int, nargs=4, default=[500, 300, 300, 200], metavar="N",
                    help="synthetic test pairs with 50-95%%, 80-95%%, 90-97%% and 0-50%% wrong matches "
                         "[500 300 300 200]; 0 skips a set")
    ap.add_argument("--rendered", default=None, metavar="DIR", help="also a folder of rendered pairs (pairs.txt)")
    ap.add_argument("--knn", action="store_true", help="also score each model that has a kNN datastore with it")
    ap.add_argument("--no-verify", action="store_true",
                    help="the networks' pose from their kept matches only (no check against all matches)")
    ap.add_argument("--bootstrap", type=int, default=2000, help="resamples of the paired bootstrap [2000]")
    ap.add_argument("--json", default=None, help="also write the results (and per-pair errors) here")
    a = ap.parse_args()

    from n3cli.match.evaluate import (
        TEST_SEED,
        paired_bootstrap,
        pairs_file,
        pose_errors,
        real_pairs,
        synthetic_set,
    )
    from n3cli.match.geometry import pose_map
    from n3cli.match.knn_vote import scorer_for
    from n3cli.store import zoo
    from n3cli.store.checkpoint import load_model

    methods = {"robust": None}
    for key, ref in (("cnnet", a.cnnet), ("n3net", a.n3net)):
        path = zoo.find(ref).path if ref in zoo.names() else ref
        m = load_model(path)
        methods[key] = m.net.eval()
        if a.knn and "knn" in m.info.extra:
            methods[f"{key}+knn"] = (methods[key], scorer_for(path, m.info, True)[0])
    tests = [(f"synthetic (seed {TEST_SEED}, {lo:.0%}-{hi:.0%} wrong matches)", n, (lambda n=n, lo=lo, hi=hi:
              synthetic_set(n, 1000, TEST_SEED, (lo, hi)))) for n, (lo, hi) in zip(a.pairs, SETS) if n > 0]
    if a.rendered:
        f = pairs_file(a.rendered)
        for ratio in (0.8, None):
            tests.append((f"{f} ({'ratio test 0.8' if ratio else 'nearest neighbours'})", None,
                          lambda ratio=ratio: real_pairs(f, ratio=ratio)))
    out = []
    for name, _, make in tests:
        test = make()
        errs = {k: pose_errors(test, m, verify=not a.no_verify) for k, m in methods.items()}
        res = {"data": name, "pairs": len(test), "inlier_fraction": round(float(sum(p.labels.mean() for p in test) / len(test)), 4),
               "map": {k: pose_map(e) for k, e in errs.items()},
               "n3net_minus_cnnet": paired_bootstrap(errs["n3net"], errs["cnnet"], a.bootstrap),
               "errors": {k: [round(float(x), 4) for x in e] for k, e in errs.items()}}
        out.append(res)
        print(f"{name}, {len(test)} pairs ({res['inlier_fraction']:.0%} right matches)")
        for k, m in res["map"].items():
            print(f"  {k:10s} " + " / ".join(f"{m[t]:.3f}" for t in THRESHOLDS))
        gap = res["n3net_minus_cnnet"]
        print("  N³Net - CNNet " + "   ".join(f"{t}°: {g['diff']:+.3f} [{g['low']:+.3f}, {g['high']:+.3f}]"
                                             for t, g in gap.items()))
        ahead = all(res["map"]["n3net"][t] > res["map"]["cnnet"][t] > res["map"]["robust"][t] for t in THRESHOLDS)
        print(f"  N³Net > CNNet > robust at every threshold: {ahead}", flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"cnnet": a.cnnet, "n3net": a.n3net, "verify": not a.no_verify, "results": out}, f, indent=1)


if __name__ == "__main__":
    main()
