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
    from ..store import zoo
    from ..store.checkpoint import read_info

    rows = []
    for e in zoo.entries():
        info = read_info(e.path)
        rows.append({"name": e.name, "task": info.task, "color": info.color, "channels": info.image_channels,
                     "noise": info.noise, "size_mb": round(e.path.stat().st_size / 1e6, 2),
                     "default_for": list(e.default_for), "metrics": info.extra.get("metrics", {}),
                     "training": info.extra.get("training", {}), "file": str(e.path),
                     "onnx": str(e.onnx_path) if e.onnx_path else None})
    if as_json:
        click.echo(json.dumps({"weights_dir": str(zoo.weights_dir()), "models": rows}, indent=2))
        return
    if not rows:
        click.echo(f"no shipped models found in {zoo.weights_dir()}")
        return
    click.echo(f"{'name':<18} {'task':<8} {'color':<6} {'noise':<16} {'MB':>5}  {'default':<8} measured")
    for r in rows:
        n = r["noise"]
        if n.get("kind") == "fixed":
            noise = f"sigma {n['sigma']:g}"
        elif n.get("kind") == "poisson-gaussian":
            noise = "var a*x+b"
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
