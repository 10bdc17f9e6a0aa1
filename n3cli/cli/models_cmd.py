"""`n3 models`: the shipped models and what was measured on them."""
from __future__ import annotations

import json

import click

from .common import reports_errors


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (for scripts).")
@reports_errors
def models(as_json: bool) -> None:
    """List the shipped models: name, task, channels, noise, size and measured PSNR."""
    from ..api import shipped_models

    listing = shipped_models()
    rows = listing["models"]
    if as_json:
        click.echo(json.dumps(listing, indent=2))
        return
    if not rows:
        click.echo(f"no shipped models found in {listing['weights_dir']}")
        return
    click.echo(f"{'name':<18} {'task':<8} {'color':<6} {'noise':<16} {'MB':>5}  {'default':<8} measured")
    for r in rows:
        n = r["noise"]
        if n.get("kind") == "fixed":
            noise = f"sigma {n['sigma']:g}"
        elif n.get("kind") == "poisson-gaussian":
            noise = "var a*x+b"
        elif n.get("trained_on") == "camera":
            noise = "camera (real)"
        elif n.get("kind"):
            noise = f"{n['kind']} {n.get('sigma_range')}"
        else:
            noise = "-"
        metrics = "; ".join(_fmt_metric(k, v) for k, v in r["metrics"].items() if k != "val_psnr") or "-"
        click.echo(f"{r['name']:<18} {r['task']:<8} {r['color']:<6} {noise:<16} {r['size_mb']:>5}  "
                   f"{','.join(r['default_for']) or '-':<8} {metrics}")


def _fmt_metric(key: str, v) -> str:
    if isinstance(v, dict) and "psnr" in v:
        return f"{key} {v['psnr']:.2f} dB"
    if isinstance(v, dict) and "map" in v:
        return f"{key} mAP@10 {v['map']['10']:.3f}"
    return f"{key} {v}"
