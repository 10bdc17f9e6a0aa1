"""The training queue: runs that accumulate over many short device sessions.

A queue file (``configs/queue.yaml``) lists runs: a training config, its target steps, the shipped
model it would replace and the model card's evaluations. :func:`run_queue` continues the first
unfinished run (from its saved state) for a time budget, then the next; each run's state lives
in the queue's folder, small enough to come back from a device session and be committed.
:func:`promote` scores a finished run and the shipped model with the card's evaluations, in the
same process, and replaces the shipped model only when the run is better: a higher mean PSNR, and
no ``flat`` guard (noise left in real photos) risen by more than its ``max_rise``.
"""
from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..errors import ConfigError
from .config import check_name, config_from_raw, is_match_config, read_yaml, rel_path

STATE_FILES = ("latest.safetensors", "latest.state.pt", "log.jsonl", "config.json")
"""What a run needs to continue: the files a device session brings back (4 of its 8)."""

_EVAL_TASKS = {"denoise": {"data", "sigma"}, "sr": {"data", "scale"}, "raw": {"data", "a", "b"},
               "real": {"data"},  # real: pairs, clean images with synthesize: true, raw files with from_raw: true
               "flat": {"data"}}  # flat: real photos without a reference; a guard, not a score (FLAT_MAX_RISE)

FLAT_MAX_RISE = 0.02
"""How much a run may raise the noise left in real photos' flat windows (:mod:`n3cli.eval.flat`)
over the shipped model's and still replace it: on a CPU stage of n3net-color-real the synthetic
scores rose while this went from 0.29 to 0.40 and the grain showed (docs/training.md)."""


@dataclass
class QueuedRun:
    """One run of the queue."""

    name: str
    config: dict[str, Any]
    steps: int
    replaces: str | None
    evaluate: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Queue:
    path: Path
    out: Path
    runs: list[QueuedRun]


def parse_budget(text: str) -> float:
    """Seconds from ``90``, ``90s``, ``9m``, ``1.5h``."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([smh]?)\s*", str(text))
    if not m or float(m.group(1)) <= 0:
        raise ConfigError(f"budget {text!r}: give a duration such as 540, 540s, 9m or 1.5h")
    return float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[m.group(2)]


def load_queue(path: str | Path, out: str | Path | None = None) -> Queue:
    """Read and check a queue file: every run's config is loaded and validated, its target steps
    must be its schedule's length, and the names must be unique."""
    from .loop import total_steps

    path = Path(path)
    raw = read_yaml(path)
    where = str(path)
    if not isinstance(raw, dict) or not isinstance(raw.get("runs"), list) or not raw["runs"]:
        raise ConfigError(f"{where}: a queue is a mapping with a non-empty list 'runs'")
    unknown = sorted(set(raw) - {"out", "runs"})
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r}")
    runs, seen = [], set()
    for i, entry in enumerate(raw["runs"]):
        at = f"{where}: runs[{i}]"
        if not isinstance(entry, dict):
            raise ConfigError(f"{at} must be a mapping")
        bad = sorted(set(entry) - {"name", "config", "steps", "replaces", "evaluate"})
        if bad:
            raise ConfigError(f"{at}: unknown key {bad[0]!r}")
        name = check_name(entry.get("name"), at)
        if name in seen:
            raise ConfigError(f"{at}: the name {name!r} is used twice")
        seen.add(name)
        if not isinstance(entry.get("config"), str):
            raise ConfigError(f"{at}: config must be a config file path")
        cfg_path = rel_path(path.parent, entry["config"])
        cfg_raw = read_yaml(cfg_path)
        if is_match_config(cfg_raw):
            raise ConfigError(f"{at}: match models train outside the queue (their runs take minutes on a CPU)")
        cfg = config_from_raw(cfg_raw, cfg_path)
        steps = entry.get("steps")
        if steps != total_steps(cfg):
            raise ConfigError(f"{at}: steps is {steps!r} but {cfg_path.name}'s schedule is {total_steps(cfg)} steps "
                              "(optim.epochs x optim.steps_per_epoch)")
        evals = entry.get("evaluate") or []
        if not isinstance(evals, list):
            raise ConfigError(f"{at}: evaluate must be a list")
        checked = []
        for j, ev in enumerate(evals):
            if not isinstance(ev, dict) or ev.get("task") not in _EVAL_TASKS or not isinstance(ev.get("key"), str):
                raise ConfigError(f"{at}: evaluate[{j}] needs task ({' | '.join(_EVAL_TASKS)}) and key")
            need = _EVAL_TASKS[ev["task"]] - set(ev)
            if need:
                raise ConfigError(f"{at}: evaluate[{j}] ({ev['task']}) needs {sorted(need)[0]}")
            if ev["task"] == "flat":
                ev = _check_flat(ev, f"{at}: evaluate[{j}] (flat)")
            checked.append({**ev, "data": str(rel_path(path.parent, ev["data"]))})
        replaces = entry.get("replaces")
        if replaces is not None and not any(ev["task"] != "flat" for ev in checked):
            raise ConfigError(f"{at}: a run that replaces a shipped model needs the evaluations that decide it "
                              "(flat only guards: at least one PSNR evaluation)")
        runs.append(QueuedRun(name, cfg, int(steps), replaces, checked))
    out_dir = Path(out) if out else rel_path(path.parent, raw.get("out", "runs/queue"))
    return Queue(path, out_dir, runs)


def _check_flat(ev: dict[str, Any], at: str) -> dict[str, Any]:
    """A flat evaluation's options: crop (WxH), jpeg_quality (1-100), max_rise (>= 0)."""
    from ..io.camera_jpeg import parse_crop

    bad = sorted(set(ev) - {"task", "key", "data", "crop", "jpeg_quality", "max_rise"})
    if bad:
        raise ConfigError(f"{at}: unknown key {bad[0]!r}")
    try:
        parse_crop(ev.get("crop"))
    except ValueError as e:
        raise ConfigError(f"{at}: {e}") from None
    q = ev.get("jpeg_quality", 92)
    if not isinstance(q, int) or isinstance(q, bool) or not 1 <= q <= 100:
        raise ConfigError(f"{at}: jpeg_quality must be an integer 1-100")
    rise = ev.get("max_rise", FLAT_MAX_RISE)
    if not isinstance(rise, (int, float)) or isinstance(rise, bool) or rise < 0:
        raise ConfigError(f"{at}: max_rise must be a number >= 0")
    return {**ev, "jpeg_quality": q, "max_rise": float(rise)}


def run_progress(run_dir: Path) -> int:
    """Steps a run folder holds (0: not started)."""
    state = run_dir / "latest.state.pt"
    if not state.is_file():
        return 0
    last = 0
    log = run_dir / "log.jsonl"
    if log.is_file():
        for line in log.read_text().splitlines():
            try:
                last = max(last, int(json.loads(line).get("step", 0)))
            except (ValueError, AttributeError):
                continue
    return last


def status(queue: Queue) -> list[dict[str, Any]]:
    """Each run: steps done and to do, the last validation, finished or not."""
    rows = []
    for run in queue.runs:
        d = queue.out / run.name
        done = run_progress(d)
        val = None
        log = d / "log.jsonl"
        if log.is_file():
            vals = [json.loads(x) for x in log.read_text().splitlines() if '"val_psnr"' in x]
            val = vals[-1]["val_psnr"] if vals else None
        rows.append({"name": run.name, "steps": done, "target": run.steps, "val_psnr": val,
                     "finished": (d / "model.safetensors").is_file(), "replaces": run.replaces})
    return rows


def run_queue(queue: Queue, budget: float, device: str = "auto", max_runs: int | None = None, progress: bool = True,
              on_run: Callable[[str, int, int], None] | None = None, only: str | None = None) -> list[dict[str, Any]]:
    """Train the unfinished runs in order (or the run ``only``) for ``budget`` seconds in all, at
    most ``max_runs`` of them, each continued from its saved state; returns what each run did."""
    if only is not None and only not in [r.name for r in queue.runs]:
        raise ConfigError(f"{queue.path}: no run named {only!r}")
    from .loop import prepare_run_dir, train

    deadline = time.time() + budget
    done = []
    for run in queue.runs:
        if (done and time.time() >= deadline) or (max_runs is not None and len(done) >= max_runs):
            break  # (a queue call always trains at least one step)
        d = queue.out / run.name
        if (d / "model.safetensors").is_file() or (only is not None and run.name != only):
            continue
        before = run_progress(d)
        resume = (d / "latest.state.pt").is_file()
        prepare_run_dir(d, resume, overwrite=False)
        if on_run:
            on_run(run.name, before, run.steps)
        train(run.config, d, resume=resume, device=device, progress=progress, deadline=deadline)
        done.append({"name": run.name, "from": before, "to": run_progress(d), "target": run.steps,
                     "finished": (d / "model.safetensors").is_file()})
    return done
