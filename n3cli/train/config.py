"""Training config: a YAML file validated against a fixed schema before anything runs."""
from __future__ import annotations

import copy
import math
import re
from pathlib import Path
from typing import Any

import yaml

from ..errors import ConfigError
from ..imaging.raw_noise import A_LOG_RANGE, B_OVER_A_LOG_RANGE
from ..models.registry import ARCHITECTURES

_REQ = object()  # marks a required key

# key -> default (nested dicts are sections); validated by _check below
SCHEMA: dict[str, Any] = {
    "name": _REQ,
    "seed": 0,
    "init": None,  # a model file to start from (fine-tuning), relative to the config; None: random init
    "model": {
        "arch": _REQ,
        "args": {},
        "task": "denoise",
        "color": "gray",
        "description": "",
        "license": "",
    },
    "data": {
        "train": _REQ,  # folder or list of folders
        "val": None,  # folder (optional)
        "val_max_images": 0,  # 0: all
        "patch": 80,
        "batch": 32,
        "workers": 0,  # ignored: batches are made on the training device (kept so older configs load)
        "rot90": True,
        "flip": True,
        "scales": [2, 3, 4],  # task sr: upscaling factors trained (one drawn per sample)
        "val_scale": None,  # task sr: validation factor [default: the first of scales]
        # training images are averaged over downsample x downsample blocks when loaded: 8-bit,
        # JPEG-compressed sources carry their own noise (an 8-bit step is 1.1e-3 in linear light at
        # mid-grey, as large as a low-ISO camera's noise); averaging n x n pixels divides it by n
        "downsample": 1,
    },
    "noise": {
        "kind": "fixed",  # fixed | blind | map | camera (realistic camera noise, the estimated sigma as map)
        "sigma": 25.0,  # fixed: training sigma (0-255 units); also the validation sigma
        "sigma_range": [0.0, 55.0],  # blind/map: uniform per sample
        "val_sigma": None,  # default: sigma (fixed) or 25
        "val_ab": [1.0e-3, 1.0e-5],  # task raw: the validation noise level (a, b) of var = a*x + b
        "gaussian_fraction": 0.0,  # kind camera: this share of the crops gets white Gaussian noise (sigma_range)
        # task raw: log10 a ~ U(a_log_range), log10 (b/a) ~ U(b_over_a_log_range) per crop
        # [default: n3cli.imaging.raw_noise.A_LOG_RANGE, B_OVER_A_LOG_RANGE]
        "a_log_range": None,
        "b_over_a_log_range": None,
        # task raw: this share of the crops gets noise correlated between neighbours and planes
        # (each correlation uniform over [0, max_correlation]), the maps what the fit reads of it
        "correlated_fraction": 0.0,
        "max_correlation": 0.3,
    },
    "optim": {
        "lr": 1e-3,
        "weight_decay": 1e-4,
        "epochs": 50,
        "steps_per_epoch": 1600,
        "decay": 3.0,
        "clip": 0.0,  # max gradient norm; 0: no clipping  # lr * 10**(-decay * epoch / epochs), epoch = whole epochs done
        # mse | noise_weighted | sigma_weighted (task raw: each crop's squared error over its noise
        # variance, or over its noise sigma, so that crops at low noise, whose plain MSE is up to
        # 1e5 times smaller, still steer the training)
        "loss": "mse",
        # fine-tuning: keep BatchNorm's running statistics, so the layers train as they run at
        # inference instead of on the statistics of small batches (docs/training.md)
        "freeze_bn": False,
    },
    "log_every": 50,
    "val_every": 1600,
    "checkpoint_every": 500,
    "precision": "fp32",  # fp32 | tf32 | bf16 (bf16: autocast convolutions; the N³ distances stay fp32)
    "compile": False,  # torch.compile the forward pass: true, or reduce-overhead (plus CUDA graphs); pays on long GPU runs
}

_CHOICES = {
    ("model", "task"): {"denoise", "sr", "raw"},
    ("model", "color"): {"gray", "rgb", "bayer"},
    ("noise", "kind"): {"fixed", "blind", "map", "camera"},
    ("precision",): {"fp32", "tf32", "bf16"},
    ("optim", "loss"): {"mse", "noise_weighted", "sigma_weighted"},
}
_POSITIVE = {("data", "patch"), ("data", "batch"), ("data", "downsample"), ("optim", "lr"), ("optim", "epochs"), ("optim", "steps_per_epoch"),
             ("log_every",), ("val_every",), ("checkpoint_every",)}


MAX_CONFIG_BYTES = 1 << 20  # a training config is a page of YAML; more is a mistake or an attack
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


class _NoAliasLoader(yaml.SafeLoader):
    """Safe YAML without anchors and aliases: a 700-byte file of nested aliases expands to
    gigabytes ("billion laughs"), and no config needs them."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark
            raise ConfigError(f"YAML aliases (*name) are not accepted in configs (line {mark.line + 1})")
        return super().compose_node(parent, index)


def read_yaml(path: str | Path) -> Any:
    """A YAML file's contents: UTF-8, at most MAX_CONFIG_BYTES, no aliases, no non-finite numbers;
    ConfigError (one line naming the file) otherwise."""
    path = Path(path)
    try:
        if path.stat().st_size > MAX_CONFIG_BYTES:
            raise ConfigError(f"{path}: {path.stat().st_size} bytes; a config may have at most {MAX_CONFIG_BYTES}")
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: a folder, not a config file") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text (byte {e.start})") from None
    try:
        raw = yaml.load(text, Loader=_NoAliasLoader)  # noqa: S506  (a SafeLoader subclass)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None
    _check_finite(raw, str(path), ())
    return raw


def _check_finite(v: Any, where: str, key: tuple) -> None:
    if isinstance(v, float) and not math.isfinite(v):
        raise ConfigError(f"{where}: {'.'.join(map(str, key)) or 'value'} is {v}; numbers must be finite")
    if isinstance(v, dict):
        for k, x in v.items():
            _check_finite(x, where, key + (k,))
    elif isinstance(v, list):
        for i, x in enumerate(v):
            _check_finite(x, where, key + (i,))


def check_name(name: Any, where: str) -> str:
    """A run's name is a plain name: it becomes a folder under runs/ and a model's name."""
    if not isinstance(name, str) or not _NAME.match(name) or ".." in name:
        raise ConfigError(f"{where}: name must be a plain name (letters, digits, '.', '_', '-'; no paths), "
                          f"got {name!r}")
    return name


def load_config(path: str | Path) -> dict[str, Any]:
    """Read and validate an image-task training config (denoise, raw, sr); relative data paths
    are taken from the config's folder. Match configs: :func:`n3cli.api.load_training_config`."""
    path = Path(path)
    return config_from_raw(read_yaml(path), path)


def config_from_raw(raw: Any, path: str | Path) -> dict[str, Any]:
    """:func:`load_config` for a config already read (``path`` names it and anchors relative paths)."""
    path = Path(path)
    cfg = validate(raw, str(path))
    check_name(cfg["name"], str(path))
    base = path.parent
    cfg["data"]["train"] = [str(rel_path(base, p)) for p in cfg["data"]["train"]]
    if cfg["data"]["val"]:
        cfg["data"]["val"] = str(rel_path(base, cfg["data"]["val"]))
    if cfg["init"]:
        cfg["init"] = str(rel_path(base, cfg["init"]))
    return cfg


def is_match_config(raw: Any) -> bool:
    return isinstance(raw, dict) and isinstance(raw.get("model"), dict) and raw["model"].get("task") == "match"


def rel_path(base: Path, p: str) -> Path:
    """``p`` as written in a config in folder ``base``: absolute as it is, relative from ``base``."""
    q = Path(p).expanduser()
    return q if q.is_absolute() else (base / q)


def validate(raw: Any, where: str = "config") -> dict[str, Any]:
    """Fill defaults and check every key; raises ConfigError naming the offending key."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: top level must be a mapping")
    cfg = _merge(SCHEMA, raw, (), where)
    if isinstance(cfg["data"]["train"], str):
        cfg["data"]["train"] = [cfg["data"]["train"]]
    if not cfg["data"]["train"] or not all(isinstance(p, str) for p in cfg["data"]["train"]):
        raise ConfigError(f"{where}: data.train must be a folder or a list of folders")
    for key, allowed in _CHOICES.items():
        v = _get(cfg, key)
        if v not in allowed:
            raise ConfigError(f"{where}: {'.'.join(key)} must be one of {sorted(allowed)}, got {v!r}")
    for key in _POSITIVE:
        v = _get(cfg, key)
        if not isinstance(v, (int, float)) or isinstance(v, bool) or v <= 0:
            raise ConfigError(f"{where}: {'.'.join(key)} must be a positive number, got {v!r}")
    for key in (("data", "patch"), ("data", "batch"), ("data", "downsample"), ("optim", "epochs"), ("optim", "steps_per_epoch"),
                ("data", "workers"), ("seed",), ("data", "val_max_images")):
        v = _get(cfg, key)
        if not isinstance(v, int) or isinstance(v, bool) or v < 0:
            raise ConfigError(f"{where}: {'.'.join(key)} must be a non-negative integer, got {v!r}")
    lo_hi = cfg["noise"]["sigma_range"]
    if not (isinstance(lo_hi, list) and len(lo_hi) == 2 and 0 <= lo_hi[0] <= lo_hi[1]):
        raise ConfigError(f"{where}: noise.sigma_range must be [low, high] with 0 <= low <= high, got {lo_hi!r}")
    if not isinstance(cfg["noise"]["sigma"], (int, float)) or cfg["noise"]["sigma"] < 0:
        raise ConfigError(f"{where}: noise.sigma must be >= 0, got {cfg['noise']['sigma']!r}")
    if cfg["model"]["arch"] not in ARCHITECTURES:
        raise ConfigError(f"{where}: model.arch {cfg['model']['arch']!r} is not one of {sorted(ARCHITECTURES)}")
    if not isinstance(cfg["model"]["args"], dict):
        raise ConfigError(f"{where}: model.args must be a mapping")
    if cfg["model"]["task"] == "sr":
        scales = cfg["data"]["scales"]
        if not (isinstance(scales, list) and scales and all(s in (2, 3, 4) for s in scales)):
            raise ConfigError(f"{where}: data.scales must be a non-empty list of 2, 3, 4, got {scales!r}")
        if cfg["data"]["val_scale"] is None:
            cfg["data"]["val_scale"] = scales[0]
        if cfg["data"]["val_scale"] not in scales:
            raise ConfigError(f"{where}: data.val_scale must be one of data.scales {scales}")
        bad = [s for s in scales if cfg["data"]["patch"] % s]
        if bad:
            raise ConfigError(f"{where}: data.patch ({cfg['data']['patch']}) must be a multiple of every scale (x{bad[0]})")
        if cfg["model"]["color"] != "gray":
            raise ConfigError(f"{where}: SR models work on the luma channel: model.color must be gray")
    if cfg["model"]["task"] == "raw":
        if cfg["model"]["color"] != "bayer":
            raise ConfigError(f"{where}: RAW models take packed Bayer planes: model.color must be bayer")
        if cfg["data"]["patch"] % 2 or cfg["data"]["patch"] < 2:
            raise ConfigError(f"{where}: data.patch (the mosaic crop) must be even for task raw")
    for key, default in (("a_log_range", A_LOG_RANGE), ("b_over_a_log_range", B_OVER_A_LOG_RANGE)):
        v, raw_task = cfg["noise"][key], cfg["model"]["task"] == "raw"
        if v is None:
            if raw_task:
                cfg["noise"][key] = list(default)
        elif not raw_task:
            raise ConfigError(f"{where}: noise.{key} is for task raw")
        elif not (isinstance(v, list) and len(v) == 2 and all(isinstance(e, (int, float)) and not isinstance(e, bool)
                                                             for e in v) and v[0] <= v[1]):
            raise ConfigError(f"{where}: noise.{key} must be [low, high] (log10 values, low <= high), got {v!r}")
    if cfg["optim"]["loss"] != "mse" and cfg["model"]["task"] != "raw":
        raise ConfigError(f"{where}: optim.loss {cfg['optim']['loss']} is for task raw (its crops carry their noise "
                          "level)")
    if cfg["noise"]["kind"] == "camera":
        if cfg["model"]["task"] != "denoise" or cfg["model"]["color"] != "rgb":
            raise ConfigError(f"{where}: noise.kind camera is for colour denoisers (model.task denoise, color rgb)")
        if cfg["data"]["patch"] % 16:
            raise ConfigError(f"{where}: data.patch ({cfg['data']['patch']}) must be a multiple of 16 for camera "
                              "noise (JPEG's 4:2:0 blocks)")
    f = cfg["noise"]["gaussian_fraction"]
    if not isinstance(f, (int, float)) or isinstance(f, bool) or not 0 <= f <= 1:
        raise ConfigError(f"{where}: noise.gaussian_fraction must be between 0 and 1, got {f!r}")
    from ..imaging.correlated_noise import MAX_CORRELATION

    for key, hi in (("correlated_fraction", 1.0), ("max_correlation", MAX_CORRELATION)):
        f = cfg["noise"][key]
        if not isinstance(f, (int, float)) or isinstance(f, bool) or not 0 <= f <= hi:
            raise ConfigError(f"{where}: noise.{key} must be between 0 and {hi:g}, got {f!r}")
    if cfg["noise"]["correlated_fraction"] and cfg["model"]["task"] != "raw":
        raise ConfigError(f"{where}: noise.correlated_fraction is for task raw")
    if cfg["compile"] not in (True, False, "reduce-overhead"):
        raise ConfigError(f"{where}: compile must be true, false or reduce-overhead, got {cfg['compile']!r}")
    if cfg["init"] is not None and not isinstance(cfg["init"], str):
        raise ConfigError(f"{where}: init must be a model file path")
    if cfg["noise"]["val_sigma"] is None:
        cfg["noise"]["val_sigma"] = cfg["noise"]["sigma"] if cfg["noise"]["kind"] == "fixed" else 25.0
    return cfg


def _merge(schema: dict, raw: dict, prefix: tuple, where: str) -> dict:
    unknown = sorted(set(raw) - set(schema))
    if unknown:
        key = ".".join(prefix + (unknown[0],))
        raise ConfigError(f"{where}: unknown key {key!r}")
    out = {}
    for k, default in schema.items():
        key = ".".join(prefix + (k,))
        if isinstance(default, dict) and default:
            sub = raw.get(k, {}) or {}
            if not isinstance(sub, dict):
                raise ConfigError(f"{where}: {key} must be a mapping")
            out[k] = _merge(default, sub, prefix + (k,), where)
        elif k in raw:
            out[k] = copy.deepcopy(raw[k])
        elif default is _REQ:
            raise ConfigError(f"{where}: missing required key {key!r}")
        else:
            out[k] = copy.deepcopy(default)
    return out


def _get(cfg: dict, key: tuple) -> Any:
    for k in key:
        cfg = cfg[k]
    return cfg
