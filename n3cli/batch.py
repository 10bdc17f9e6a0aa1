"""Turning command-line inputs (files, folders, globs) into (input, output) jobs."""
from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from .errors import N3Error


@dataclass(frozen=True)
class Job:
    src: Path
    dst: Path


def expand_inputs(inputs: Iterable[str], recursive: bool, accept: Callable[[Path], bool]) -> list[tuple[Path, Path]]:
    """(file, root) pairs: each input file with the folder its output path is taken relative to.

    Globs are expanded here too (for quoted patterns and shells that do not); a folder yields its
    accepted files (all levels with ``recursive``). Missing inputs are kept so they fail per file.
    """
    found: list[tuple[Path, Path]] = []
    for item in inputs:
        matches = sorted(glob.glob(item, recursive=recursive)) if glob.has_magic(item) else [item]
        if not matches:
            found.append((Path(item), Path(item).parent))
        for m in matches:
            p = Path(m)
            if p.is_dir():
                it = p.rglob("*") if recursive else p.iterdir()
                found += [(f, p) for f in sorted(it) if f.is_file() and accept(f)]
            else:
                found.append((p, p.parent))
    seen, out = set(), []
    for f, root in found:
        key = os.path.abspath(f)
        if key not in seen:
            seen.add(key)
            out.append((f, root))
    return out


def plan_jobs(inputs: Iterable[str], output: str | None, recursive: bool, accept: Callable[[Path], bool],
              ext: str | None = None, out_ext_ok: Callable[[str], bool] = lambda e: True,
              default_ext: Callable[[Path], str] | None = None, suffix: str = "") -> list[Job]:
    """Map inputs to outputs.

    One input file and an output with a file extension: that file. Otherwise ``output`` is a
    folder; each output keeps its input's stem plus ``suffix`` (and, with ``recursive``, its
    sub-folder), with ``ext`` if given, else ``default_ext(input)``, else the input's extension.
    No ``output``: each output goes beside its input, named with ``suffix`` (which must then be
    non-empty, so that no output is its input).
    """
    inputs = list(inputs)
    files = expand_inputs(inputs, recursive, accept)
    if not files:
        raise N3Error("no input images found")
    if suffix:  # outputs of an earlier run in the same folder are not inputs of this one
        files = [(f, root) for f, root in files if not f.stem.endswith(suffix)]
        if not files:
            raise N3Error(f"no input images found (names ending in {suffix!r} are taken for earlier outputs)")
    if output is None:
        if not suffix:
            raise N3Error("missing -o/--output (or --suffix, to write beside each input)")
        return _dedupe([Job(f, f.parent / (f.stem + suffix + _ext(f, ext, default_ext))) for f, _ in files])
    out = Path(output)
    single_file = len(files) == 1 and not Path(inputs[0]).is_dir() and out.suffix != "" and not out.is_dir()
    if single_file:
        if not out_ext_ok(out.suffix.lower()):
            raise N3Error(f"{out}: unsupported output type {out.suffix}")
        return [Job(files[0][0], out)]
    if out.suffix and not out.is_dir() and len(files) > 1:
        raise N3Error(f"{out}: several inputs need an output folder, not a file name")
    jobs = []
    for f, root in files:
        rel = f.relative_to(root) if recursive and _is_under(f, root) else Path(f.name)
        jobs.append(Job(f, out / rel.parent / (rel.stem + suffix + _ext(f, ext, default_ext))))
    return _dedupe(jobs)


def _ext(f: Path, ext: str | None, default_ext: Callable[[Path], str] | None) -> str:
    e = ext if ext else default_ext(f) if default_ext else f.suffix
    return e if e.startswith(".") else "." + e


def _dedupe(jobs: list[Job]) -> list[Job]:
    """``jobs``, or an error when two inputs would be written to one output."""
    dsts = {}
    for j in jobs:
        k = os.path.abspath(j.dst)
        if k in dsts:
            raise N3Error(f"{j.src} and {dsts[k]} would both be written to {j.dst}; use --recursive or rename")
        dsts[k] = j.src
    return jobs


def _is_under(f: Path, root: Path) -> bool:
    try:
        f.relative_to(root)
        return True
    except ValueError:
        return False


def same_file(a: Path, b: Path) -> bool:
    """True when writing ``b`` would replace ``a`` (same path or hard link)."""
    if os.path.abspath(a) == os.path.abspath(b):
        return True
    try:
        return b.exists() and os.path.samefile(a, b)
    except OSError:
        return False
