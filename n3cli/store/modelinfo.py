"""The description every model carries (in a checkpoint's or an ONNX file's metadata).

Plain data, no torch: the ONNX inference path reads it too.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import CheckpointError

FORMAT_VERSION = 1
META_KEY = "n3cli"
REQUIRED = ("arch", "args", "task")
DEFAULT_CONTEXT = 64  # tile context (pixels) for a network that states none of its own


@dataclass
class ModelInfo:
    """What a caller needs to know about a model, whatever runs it."""

    name: str
    arch: str
    args: dict[str, Any]
    task: str = "denoise"  # denoise | raw | sr | match
    color: str = "gray"  # gray | rgb | bayer
    noise: dict[str, Any] = field(default_factory=dict)  # {"kind": fixed|blind|map, "sigma": .., "sigma_range": ..}
    scale: int = 1
    min_size: int = 1
    extra: dict[str, Any] = field(default_factory=dict)  # training, metrics, licence, description, ...

    @property
    def image_channels(self) -> int:
        return {"gray": 1, "rgb": 3, "bayer": 4}.get(self.color, 1)

    @property
    def takes_noise_map(self) -> bool:
        return self.noise.get("kind") == "map"

    def to_json(self) -> dict[str, Any]:
        d = {"format_version": FORMAT_VERSION, "name": self.name, "arch": self.arch, "args": self.args,
             "task": self.task, "color": self.color, "noise": self.noise, "scale": self.scale,
             "min_size": self.min_size}
        d.update(self.extra)
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any], where: str = "model") -> "ModelInfo":
        missing = [k for k in REQUIRED if k not in d]
        if missing:
            raise CheckpointError(f"{where}: config lacks {', '.join(missing)}")
        ver = d.get("format_version", FORMAT_VERSION)
        if not isinstance(ver, int) or ver > FORMAT_VERSION:
            raise CheckpointError(f"{where}: format version {ver} is newer than this n3 understands ({FORMAT_VERSION})")
        known = {"format_version", "name", "arch", "args", "task", "color", "noise", "scale", "min_size"}
        kinds = {"arch": str, "args": dict, "task": str, "color": str, "noise": dict}
        for key, kind in kinds.items():
            if key in d and d[key] is not None and not isinstance(d[key], kind):
                raise CheckpointError(f"{where}: config {key} must be a {'mapping' if kind is dict else 'string'}, "
                                      f"got {d[key]!r:.60}")
        for key, lo in (("scale", 1), ("min_size", 1)):
            v = d.get(key, 1)
            if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= 4096:
                raise CheckpointError(f"{where}: config {key} must be a whole number from {lo} to 4096, got {v!r:.60}")
        return cls(name=str(d.get("name", "")), arch=d["arch"], args=dict(d["args"]), task=d["task"],
                   color=d.get("color", "gray"), noise=dict(d.get("noise") or {}), scale=d.get("scale", 1),
                   min_size=d.get("min_size", 1), extra={k: v for k, v in d.items() if k not in known})
