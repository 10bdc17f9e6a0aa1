"""The shipped models: ``weights/manifest.json`` names them, each file describes itself."""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import CheckpointError


def weights_dir() -> Path:
    """Where shipped weights live: $N3_WEIGHTS, the installed copy, or the source tree's weights/."""
    env = os.environ.get("N3_WEIGHTS")
    if env:
        return Path(env)
    package = Path(__file__).resolve().parents[1]  # n3cli/
    for cand in (package / "weights", package.parent / "weights"):  # installed copy, source tree
        if (cand / "manifest.json").is_file():
            return cand
    return package.parent / "weights"


@dataclass(frozen=True)
class ZooEntry:
    name: str
    file: str
    sha256: str
    default_for: tuple[str, ...] = ()
    onnx: str | None = None  # the same model exported by `n3 export`, for the onnx backend
    onnx_sha256: str | None = None

    @property
    def path(self) -> Path:
        return weights_dir() / self.file

    @property
    def onnx_path(self) -> Path | None:
        return weights_dir() / self.onnx if self.onnx else None

    def file_for(self, backend: str) -> Path:
        """The file a backend (``torch`` or ``onnx``) runs, checked against the manifest."""
        if backend != "onnx":
            verify(self)
            return self.path
        if not self.onnx:
            raise CheckpointError(f"model {self.name} ships no ONNX file; make one with `n3 export {self.name}`")
        _check_file(self.onnx_path, self.onnx_sha256)
        return self.onnx_path


def entries() -> list[ZooEntry]:
    man = weights_dir() / "manifest.json"
    if not man.is_file():
        return []
    data = json.loads(man.read_text())
    return [ZooEntry(m["name"], m["file"], m["sha256"], tuple(m.get("default_for", [])), m.get("onnx"),
                     m.get("onnx_sha256")) for m in data["models"]]


def names() -> list[str]:
    return [e.name for e in entries()]


def find(name: str) -> ZooEntry:
    for e in entries():
        if e.name == name:
            return e
    known = ", ".join(names()) or "none installed"
    raise CheckpointError(f"unknown model {name!r} (shipped: {known}; or give a .safetensors file)")


def default_for(kind: str) -> ZooEntry:
    """The shipped model used when none is named, by input kind (``gray``, ``rgb``)."""
    for e in entries():
        if kind in e.default_for:
            return e
    if kind.startswith("sr_x"):
        raise CheckpointError(f"no shipped super-resolution model for x{kind[4:]} yet; pass --model "
                              "(train one with `n3 train --config configs/sr.yaml`)")
    if kind == "real":
        raise CheckpointError("no shipped real-noise model installed; pass --model "
                              "(train one with `n3 train --config configs/color_real.yaml`)")
    if kind == "bayer":
        raise CheckpointError("no shipped RAW model installed; pass --model "
                              "(train one with `n3 train --config configs/raw.yaml`)")
    raise CheckpointError(f"no shipped default model for {kind} images; pass --model")


def sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def verify(entry: ZooEntry) -> None:
    """Fail clearly when a shipped file is missing or altered (e.g. a Git LFS pointer)."""
    _check_file(entry.path, entry.sha256)


def _check_file(path: Path, digest: str | None) -> None:
    if not path.is_file():
        raise CheckpointError(f"{path}: shipped model file is missing")
    if digest and sha256(path) != digest:
        raise CheckpointError(f"{path}: checksum does not match weights/manifest.json (corrupt or replaced)")
