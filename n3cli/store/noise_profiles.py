"""Noise profiles: a camera's raw noise ``var = a*x + b`` by ISO, measured on the user's own files.

One file's fit of (a, b) reads texture as noise, so it only ever errs upwards, and a file full of
foliage can read many times its true noise. A camera at one ISO has the same noise whatever it
shoots, so the readings of several of its files, pooled, are steadier than any one of them:
``n3 noise-profile add`` records each file's reading under its camera and ISO, and RAW denoising
uses the table for files whose metadata does not carry the maker's own profile.

The file is JSON: ``{"format": "n3-noise-profiles/1", "cameras": {CAMERA: {ISO: [READING, ...]}}}``,
a reading ``{"file", "a", "b", "source"}``, values on the mosaic normalised by each file's own
black and white levels (what the RAW models see).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import N3Error

FORMAT = "n3-noise-profiles/1"
ENV = "N3_NOISE_PROFILES"
# the pooled value per ISO: texture only adds to a reading, so the low readings are the truthful
# ones; the lower quartile rather than the minimum, so one file read too low cannot pull it down
POOL_QUANTILE = 0.25
_DARK, _BRIGHT = 0.05, 0.5  # levels the readings are pooled at (a line through two pooled variances)
MAX_EXTRAPOLATION = 2.0  # ISOs at most this factor beyond the measured ones are scaled from the nearest


def default_path() -> Path:
    """``$N3_NOISE_PROFILES``, else ``$XDG_CONFIG_HOME/n3/noise-profiles.json`` (``~/.config`` by default)."""
    if os.environ.get(ENV):
        return Path(os.environ[ENV]).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "n3" / "noise-profiles.json"


@dataclass(frozen=True)
class ProfileEntry:
    """The pooled (a, b) of one camera at one ISO."""

    iso: int
    a: float
    b: float
    files: int


@dataclass
class NoiseProfiles:
    """Readings of (a, b) per camera and ISO; :meth:`lookup` gives the pooled value for an ISO."""

    cameras: dict[str, dict[int, list[dict]]] = field(default_factory=dict)

    @classmethod
    def load(cls, path: str | os.PathLike) -> NoiseProfiles:
        """Read a profile file; N3Error (one line naming it) if it is not one."""
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise N3Error(f"{path}: no such noise-profile file") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise N3Error(f"{path}: not a noise-profile file ({e})") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("cameras"), dict):
            raise N3Error(f"{path}: not a noise-profile file (expected \"format\": \"{FORMAT}\")")
        cameras: dict[str, dict[int, list[dict]]] = {}
        try:
            for cam, by_iso in data["cameras"].items():
                cameras[str(cam)] = {int(iso): [_checked(r) for r in readings] for iso, readings in by_iso.items()}
        except (AttributeError, TypeError, ValueError, KeyError) as e:
            raise N3Error(f"{path}: broken noise-profile file ({e})") from None
        return cls(_without_empty(cameras))

    def save(self, path: str | os.PathLike) -> None:
        """Write the profile file (atomically)."""
        from ..io.atomic import atomic_write

        data = {"format": FORMAT, "cameras": {cam: {str(iso): readings for iso, readings in sorted(by_iso.items())}
                                              for cam, by_iso in sorted(self.cameras.items())}}
        text = json.dumps(data, indent=1) + "\n"
        atomic_write(path, lambda tmp: Path(tmp).write_text(text))

    def add(self, camera: str, iso: int, a: float, b: float, file: str, source: str) -> None:
        """Record one file's reading; a file read before is replaced, not counted twice."""
        for by_iso in self.cameras.values():
            for readings in by_iso.values():
                readings[:] = [r for r in readings if r["file"] != file]
        self.cameras.setdefault(camera, {}).setdefault(int(iso), []).append(
            _checked({"file": file, "a": float(a), "b": float(b), "source": source}))
        self.cameras = _without_empty(self.cameras)

    def table(self, camera: str) -> list[ProfileEntry]:
        """The pooled (a, b) of each ISO measured for ``camera``, by ISO."""
        out = []
        for iso, readings in sorted(self.cameras.get(camera, {}).items()):
            a = np.array([r["a"] for r in readings])
            b = np.array([r["b"] for r in readings])
            dark = float(np.quantile(a * _DARK + b, POOL_QUANTILE))
            bright = float(np.quantile(a * _BRIGHT + b, POOL_QUANTILE))
            slope = max((bright - dark) / (_BRIGHT - _DARK), 0.0)
            out.append(ProfileEntry(iso, slope, max(dark - slope * _DARK, 0.0), len(readings)))
        return out

    def lookup(self, camera: str, iso: float) -> tuple[float, float, str] | None:
        """(a, b, how) for ``camera`` at ``iso``: the pooled value of that ISO; between two measured
        ISOs, linear in ISO; up to 2x beyond them, the nearest scaled (a with the gain, b with its
        square); else None (too far from anything measured to trust)."""
        rows = self.table(camera)
        if not rows or not iso or iso <= 0:
            return None
        for r in rows:
            if r.iso == iso:
                return r.a, r.b, f"ISO {r.iso}, {r.files} file{'s' if r.files > 1 else ''}"
        lo = [r for r in rows if r.iso < iso]
        hi = [r for r in rows if r.iso > iso]
        if lo and hi:
            p, q = lo[-1], hi[0]
            t = (iso - p.iso) / (q.iso - p.iso)
            return (p.a + t * (q.a - p.a), p.b + t * (q.b - p.b),
                    f"ISO {iso:g}, between ISO {p.iso} and {q.iso}")
        near = lo[-1] if lo else hi[0]
        g = iso / near.iso
        if max(g, 1 / g) > MAX_EXTRAPOLATION:
            return None
        return near.a * g, near.b * g * g, f"ISO {iso:g}, scaled from ISO {near.iso}"


def _checked(r: dict) -> dict:
    a, b = float(r["a"]), float(r["b"])
    if not (np.isfinite(a) and np.isfinite(b)) or a < 0 or b < 0:
        raise ValueError(f"reading of {r.get('file')!r} has a={a}, b={b}")
    return {"file": str(r["file"]), "a": a, "b": b, "source": str(r.get("source", ""))}


def _without_empty(cameras: dict[str, dict[int, list[dict]]]) -> dict[str, dict[int, list[dict]]]:
    """No ISO without readings and no camera without ISOs (a hand-edited file may hold them)."""
    out = {cam: {iso: r for iso, r in by_iso.items() if r} for cam, by_iso in cameras.items()}
    return {cam: by_iso for cam, by_iso in out.items() if by_iso}
