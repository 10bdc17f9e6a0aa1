"""`n3 train` for Python users: any config the tool ships (denoise, raw, sr, match) read,
validated and trained into a run folder under the rules of every output."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..errors import ConfigError, N3Error


def load_training_config(path: str | os.PathLike) -> dict[str, Any]:
    """Read and validate a training config of any task (safe YAML, one-line errors)."""
    from ..train.config import (
        check_name,
        config_from_raw,
        is_match_config,
        read_yaml,
        rel_path,
    )

    path = Path(path)
    raw = read_yaml(path)
    if isinstance(raw, dict) and "runs" in raw and "model" not in raw:
        raise ConfigError(f"{path}: a training queue, not a config; run it with `n3 train --queue {path} --budget TIME`")
    if not is_match_config(raw):
        return config_from_raw(raw, path)
    from ..match.train import validate_match_config  # synthetic pairs: no data folders

    cfg = validate_match_config(raw, str(path))
    check_name(cfg["name"], str(path))
    if cfg["init"]:
        cfg["init"] = str(rel_path(path.parent, cfg["init"]))
    return cfg


def run_training(cfg: dict[str, Any], out_dir: str | os.PathLike | None = None, resume: bool = False,
                 overwrite: bool = False, max_steps: int | None = None, device: str = "auto") -> Path:
    """Train ``cfg`` into ``out_dir`` (default ``runs/<name>``); returns the final model file. A
    folder that holds a run needs ``resume`` or ``overwrite``."""
    from ..train.loop import prepare_run_dir

    out = Path(out_dir) if out_dir else Path("runs") / cfg["name"]
    prepare_run_dir(out, resume, overwrite)
    if cfg["model"]["task"] == "match":
        from ..match.train import train_match

        if resume:
            raise N3Error("--resume is not supported for match training yet (runs are short; start again)")
        return train_match(cfg, out, device=device, max_steps=max_steps)
    from ..train.loop import train

    return train(cfg, out, resume=resume, device=device, max_steps=max_steps)


def build_match_datastore(cfg: dict[str, Any], model_file: str | os.PathLike) -> dict[str, Any]:
    """The kNN datastore of a trained match model from its config's training pairs, with k, T and
    lambda tuned on validation and recorded in the model file."""
    if cfg["model"]["task"] != "match":
        raise N3Error("--build-datastore is for match models (model.task: match)")
    from ..match.train import add_datastore

    return add_datastore(cfg, str(model_file))
