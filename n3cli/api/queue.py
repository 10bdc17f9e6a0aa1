"""The training queue for Python users and `n3 train --queue`: continue the queued runs for a
time budget, see where they stand, and put a finished run in place of the shipped model it was
trained to replace, when (and only when) the model card's own evaluations say it is better."""
from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any, Callable

from ..errors import N3Error
from ..store import zoo


def queue_status(queue: str | os.PathLike, out: str | os.PathLike | None = None) -> list[dict[str, Any]]:
    """Each queued run: steps done of its target, last validation PSNR, finished or not."""
    from ..train.queue import load_queue, status

    return status(load_queue(queue, out))


def run_queue(queue: str | os.PathLike, budget: float | str, out: str | os.PathLike | None = None,
              device: str = "auto", max_runs: int | None = None, progress: bool = True,
              on_run: Callable[[str, int, int], None] | None = None, only: str | None = None) -> list[dict[str, Any]]:
    """Continue the queue's unfinished runs in order (or the run ``only``) for ``budget`` (seconds,
    or ``"9m"``), each from its saved state; the states stay in the queue's folder (or ``out``)."""
    from ..train.queue import load_queue, parse_budget
    from ..train.queue import run_queue as run

    seconds = parse_budget(budget) if isinstance(budget, str) else float(budget)
    return run(load_queue(queue, out), seconds, device, max_runs, progress, on_run, only)


def _score(ev: dict[str, Any], model: str | Path, device: str) -> dict[str, Any]:
    """One of the card's evaluations of ``model``: {psnr, ssim?, condition}, or for real photos
    without a reference {noise_left, condition}."""
    from .evaluate import (
        evaluate_denoise,
        evaluate_raw_denoise,
        evaluate_real_noise,
        evaluate_upscale,
    )

    if ev["task"] == "denoise":
        est = bool(ev.get("estimate_noise", False))
        r = evaluate_denoise(model, ev["data"], [float(ev["sigma"])], estimate_noise=est, device=device,
                             backend="torch")["results"][0]
        return {"sigma": float(ev["sigma"]), **({"sigma_estimated": True} if est else {}), "psnr": r["mean_psnr"],
                "ssim": r["mean_ssim"]}
    if ev["task"] == "real":
        synth, from_raw = bool(ev.get("synthesize", False)), bool(ev.get("from_raw", False))
        r = evaluate_real_noise(model, ev["data"], synth, int(ev.get("seed", 0)), device=device,
                                backend="torch", from_raw=from_raw)["results"][0]
        return {"pairs": r["pairs_from"], "psnr": r["mean_psnr"], "ssim": r["mean_ssim"]}
    if ev["task"] == "flat":
        from ..io.camera_jpeg import parse_crop
        from .evaluate import evaluate_flat_noise

        r = evaluate_flat_noise(model, ev["data"], parse_crop(ev.get("crop")), int(ev.get("jpeg_quality", 92)),
                                device=device, backend="torch")["results"][0]
        return {"photos": r["photos"], **({"crop": r["crop"]} if "crop" in r else {}),
                "noise_left": r["mean_noise_left"]}
    if ev["task"] == "sr":
        r = evaluate_upscale(model, ev["data"], [int(ev["scale"])], device=device, backend="torch")["results"][0]
        return {"scale": int(ev["scale"]), "psnr": r["mean_psnr"], "ssim": r["mean_ssim"]}
    r = evaluate_raw_denoise(model, ev["data"], [(float(ev["a"]), float(ev["b"]))], baseline=None, device=device,
                             backend="torch")["results"][0]
    return {"a": float(ev["a"]), "b": float(ev["b"]), "psnr": r["mean_psnr"]}


def describe_score(score: dict[str, Any]) -> str:
    """An evaluation's figure as the card writes it: ``30.12 dB`` or ``noise left 0.288``."""
    return f"{score['psnr']:.2f} dB" if "psnr" in score else f"noise left {score['noise_left']:.3f}"


def promote_run(queue: str | os.PathLike, name: str, out: str | os.PathLike | None = None, device: str = "auto",
                dry_run: bool = False, on_eval: Callable[[str, str, dict[str, Any]], None] | None = None
                ) -> dict[str, Any]:
    """Score the finished run ``name`` and the shipped model it would replace with the queue's
    evaluations (the card's), and replace the shipped files (weights, ONNX copy, manifest,
    metrics, training log, card) only when the run's mean PSNR over them is higher and no
    ``flat`` guard (noise left in real photos, :mod:`n3cli.eval.flat`) rose by more than its
    ``max_rise``. ``on_eval(key, "run" | "shipped", score)`` follows the scoring."""
    from ..train.queue import FLAT_MAX_RISE, load_queue

    q = load_queue(queue, out)
    run = next((r for r in q.runs if r.name == name), None)
    if run is None:
        raise N3Error(f"{queue}: no run named {name!r} (runs: {', '.join(r.name for r in q.runs)})")
    if not run.replaces:
        raise N3Error(f"{queue}: run {name} replaces no shipped model")
    candidate = q.out / name / "model.safetensors"
    if not candidate.is_file():
        raise N3Error(f"{q.out / name}: the run has not finished (no model.safetensors); continue it with --queue")
    entry = zoo.find(run.replaces)
    rows = []
    for ev in run.evaluate:
        scores = {}
        for who, model in (("run", candidate), ("shipped", entry.path)):
            scores[who] = _score(ev, model, device)
            if on_eval:
                on_eval(ev["key"], who, scores[who])
        row = {"key": ev["key"], "data": Path(ev["data"]).name, **scores}
        if ev["task"] == "flat":
            row["max_rise"] = float(ev.get("max_rise", FLAT_MAX_RISE))
        rows.append(row)
    scored = [r for r in rows if "psnr" in r["run"]]
    run_mean = sum(r["run"]["psnr"] for r in scored) / len(scored)
    shipped_mean = sum(r["shipped"]["psnr"] for r in scored) / len(scored)
    held_back = [r["key"] for r in rows if "noise_left" in r["run"]
                 and r["run"]["noise_left"] > r["shipped"]["noise_left"] + r["max_rise"]]
    better = run_mean > shipped_mean and not held_back
    report = {"name": name, "replaces": run.replaces, "evaluations": rows, "run_mean_psnr": run_mean,
              "shipped_mean_psnr": shipped_mean, "held_back_by": held_back, "better": better, "replaced": False}
    if better and not dry_run:
        _install(candidate, entry, rows, q.out / name / "log.jsonl")
        report["replaced"] = True
    return report


def _install(candidate: Path, entry: zoo.ZooEntry, rows: list[dict[str, Any]], log: Path) -> None:
    """The run's model in place of the shipped one: renamed, with the card's metrics measured now."""
    from ..store.checkpoint import load_model, save_model
    from ..store.modelinfo import ModelInfo

    m = load_model(candidate)
    extra = dict(m.info.extra)
    metrics = {k: v for k, v in extra.get("metrics", {}).items() if k == "val_psnr"}  # the old card's are stale
    for r in rows:
        cond = {k: v for k, v in r["run"].items() if k not in ("psnr", "ssim", "noise_left")}
        rec = {"data": r["data"], **cond}
        if "psnr" in r["run"]:
            rec["psnr"] = round(r["run"]["psnr"], 2)
        if "ssim" in r["run"]:
            rec["ssim"] = round(r["run"]["ssim"], 4)
        if "noise_left" in r["run"]:
            rec["noise_left"] = round(r["run"]["noise_left"], 3)
        metrics[r["key"]] = rec
    extra["metrics"] = metrics
    i = m.info
    save_model(entry.path, m.net, ModelInfo(entry.name, i.arch, i.args, i.task, i.color, i.noise, i.scale,
                                            i.min_size, extra))
    wdir = zoo.weights_dir()
    man_path = wdir / "manifest.json"
    man = json.loads(man_path.read_text())
    for e in man["models"]:
        if e["name"] != entry.name:
            continue
        e["sha256"] = zoo.sha256(entry.path)
        if entry.onnx:
            from ..store.onnx_export import export_onnx

            export_onnx(entry.path, entry.onnx_path)
            e["onnx_sha256"] = zoo.sha256(entry.onnx_path)
    man_path.write_text(json.dumps(man, indent=2) + "\n")
    if log.is_file():
        (wdir / "logs").mkdir(exist_ok=True)
        # a fine-tune's log goes beside the logs of the stages before it, not over the first one's
        stage = f".{log.parent.name}-{time.strftime('%Y-%m-%d')}" if extra.get("training", {}).get("init") else ""
        shutil.copyfile(log, wdir / "logs" / f"{entry.name}{stage}.jsonl")
    _update_card(wdir / "README.md", entry.name, rows, extra.get("training", {}))


def _update_card(card: Path, name: str, rows: list[dict[str, Any]], training: dict[str, Any]) -> None:
    """The measured table of ``name`` between its markers in the card (appended when absent)."""
    begin, end = f"<!-- measured:{name} -->", f"<!-- /measured:{name} -->"
    lines = [begin, f"Measured by `n3 train --queue ... --promote` on {time.strftime('%Y-%m-%d')} "
                    f"({training.get('steps', '?')} steps of batch {training.get('batch', '?')} on "
                    f"{training.get('hardware', '?')}"
             + (f", fine-tuned from {training['init']['file']}" if isinstance(training.get("init"), dict) else "")
             + "):", "",
             "| evaluation | data | this model | model it replaced |", "|---|---|---|---|"]
    for r in rows:
        cond = ", ".join(f"{k} {v:g}" if isinstance(v, float) and not isinstance(v, bool) else f"{k} {v}"
                         for k, v in r["run"].items() if k not in ("psnr", "ssim", "noise_left"))
        lines.append(f"| {r['key']} ({cond}) | {r['data']} | **{describe_score(r['run'])}** | "
                     f"{describe_score(r['shipped'])} |")
    block = "\n".join(lines + [end])
    text = card.read_text() if card.is_file() else "# Shipped models\n"
    if begin in text and end in text:
        text = text[: text.index(begin)] + block + text[text.index(end) + len(end) :]
    else:
        text = text.rstrip("\n") + f"\n\n## {name}\n\n{block}\n"
    card.write_text(text)
