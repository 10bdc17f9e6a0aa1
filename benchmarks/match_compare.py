"""Pose mAP of any CNNet and N³Net match model files side by side (with robust estimation on all
matches), on the synthetic test sets of the model card: what `n3 eval --task match` reports, but
with the CNNet baseline replaceable too (e.g. to score both after the same fine-tuning).

    python benchmarks/match_compare.py --cnnet runs/match_ft/cnnet/model.safetensors \\
        --n3net runs/match_ft/n3net/model.safetensors [--json OUT]
"""
from __future__ import annotations

import argparse
import json

SETS = ((500, (0.5, 0.95)), (300, (0.8, 0.95)), (300, (0.9, 0.97)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cnnet", default="cnnet-match", help="model name or file [shipped cnnet-match]")
    ap.add_argument("--n3net", default="n3net-match", help="model name or file [shipped n3net-match]")
    ap.add_argument("--json", default=None, help="also write the results here")
    a = ap.parse_args()

    from n3cli import zoo
    from n3cli.checkpoint import load_model
    from n3cli.match.evaluate import evaluate_match

    nets = {"robust": None}
    for key, ref in (("cnnet", a.cnnet), ("n3net", a.n3net)):
        path = zoo.find(ref).path if ref in zoo.names() else ref
        nets[key] = load_model(path).net.eval()
    out = []
    for pairs, outliers in SETS:
        res = evaluate_match(nets, pairs=pairs, outliers=outliers)["results"][0]
        out.append(res)
        print(f"{res['data']}, {res['pairs']} pairs")
        for k, m in res["map"].items():
            print(f"  {k:7s} " + " / ".join(f"{m[t]:.3f}" for t in ("5", "10", "20")))
        ahead = all(res["map"]["n3net"][t] > res["map"]["cnnet"][t] > res["map"]["robust"][t] for t in ("5", "10", "20"))
        print(f"  N³Net > CNNet > robust at every threshold: {ahead}", flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"cnnet": a.cnnet, "n3net": a.n3net, "results": out}, f, indent=1)


if __name__ == "__main__":
    main()
