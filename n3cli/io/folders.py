"""Turning command-line inputs (files, folders, globs) into (input, output) jobs."""
from __future__ import annotations

import fnmatch
import glob
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable

from ..errors import N3Error

if TYPE_CHECKING:
    import numpy as np


@dataclass(frozen=True)
class Job:
    src: Path
    dst: Path
    error: str | None = None  # a problem found while planning (an unreadable folder): the job fails with it


def _walk(top: Path, unreadable: list[Path]) -> Iterable[Path]:
    """Every file under ``top``, sorted; symbolic links to folders are not followed (a link back
    up the tree would never end), and folders that cannot be listed are collected in ``unreadable``."""
    for dirpath, dirnames, filenames in os.walk(top, followlinks=False,
                                                onerror=lambda e: unreadable.append(Path(e.filename))):
        dirnames.sort()
        for name in sorted(filenames):
            yield Path(dirpath) / name


def _match_parts(parts: list[str], pattern: list[str]) -> bool:
    """Whether path segments ``parts`` match glob segments ``pattern``; ``**`` is any number of segments."""
    if not pattern:
        return not parts
    if pattern[0] == "**":
        return any(_match_parts(parts[i:], pattern[1:]) for i in range(len(parts) + 1))
    return bool(parts) and fnmatch.fnmatchcase(parts[0], pattern[0]) and _match_parts(parts[1:], pattern[1:])


def _glob(pattern: str, recursive: bool, unreadable: list[Path]) -> tuple[list[Path], Path]:
    """Paths matching ``pattern`` and the folder before its first wildcard (outputs mirror the
    tree below it). ``**`` spans folders only with ``recursive``, and never through a link."""
    parts = Path(pattern).parts
    fixed = next(i for i, p in enumerate(parts) if glob.has_magic(p))
    root = Path(*parts[:fixed]) if fixed else Path(".")
    rest = list(parts[fixed:])
    if not recursive:
        return [Path(m) for m in sorted(glob.glob(pattern.replace("**", "*")))], root
    found = []
    for f in _walk(root, unreadable) if root.is_dir() else []:
        rel = f.relative_to(root).parts
        if _match_parts(list(rel), rest):
            found.append(f if fixed else Path(*rel))
    return found, root


def expand_inputs(inputs: Iterable[str], recursive: bool, accept: Callable[[Path], bool],
                  unreadable: list[Path] | None = None) -> list[tuple[Path, Path]]:
    """(file, root) pairs: each input file with the folder its output path is taken relative to.

    Globs are expanded here too (for quoted patterns and shells that do not); with ``recursive``
    a ``**`` glob keeps the tree below its fixed part. A folder yields its accepted files (all
    levels with ``recursive``). Links to folders are not followed. Missing inputs are kept so they
    fail per file; folders that cannot be listed go to ``unreadable``.
    """
    unreadable = [] if unreadable is None else unreadable
    found: list[tuple[Path, Path]] = []
    for item in inputs:
        if glob.has_magic(item):
            matches, root = _glob(item, recursive, unreadable)
        else:
            matches, root = [Path(item)], Path(item).parent
        if not matches and not glob.has_magic(item):
            found.append((Path(item), Path(item).parent))
        for p in matches:
            if p.is_dir():
                if recursive:
                    found += [(f, p) for f in _walk(p, unreadable) if accept(f)]
                else:
                    try:
                        found += [(f, p) for f in sorted(p.iterdir()) if f.is_file() and accept(f)]
                    except OSError:
                        unreadable.append(p)
            else:
                found.append((p, root if glob.has_magic(item) else p.parent))
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
    unreadable: list[Path] = []
    files = expand_inputs(inputs, recursive, accept, unreadable)
    problems = [Job(d, d, f"{d}: folder cannot be read (permission denied?); its images were not processed")
                for d in unreadable]
    if not files and not problems:
        shown = ", ".join(inputs[:3]) + (f" and {len(inputs) - 3} more" if len(inputs) > 3 else "")
        raise N3Error(f"no input images found in {shown}")
    if suffix:  # outputs of an earlier run in the same folder are not inputs of this one
        files = [(f, root) for f, root in files if not f.stem.endswith(suffix)]
        if not files and not problems:
            raise N3Error(f"no input images found (names ending in {suffix!r} are taken for earlier outputs)")
    if output is None:
        if not suffix:
            raise N3Error("missing -o/--output (or --suffix, to write beside each input)")
        return _dedupe([Job(f, f.parent / (f.stem + suffix + _ext(f, ext, default_ext))) for f, _ in files]) + problems
    out = Path(output)
    single_file = len(files) == 1 and not Path(inputs[0]).is_dir() and out.suffix != "" and not out.is_dir()
    if single_file:
        if not out_ext_ok(out.suffix.lower()):
            raise N3Error(f"{out}: unsupported output type {out.suffix}")
        return [Job(files[0][0], out)] + problems
    if out.suffix and not out.is_dir() and len(files) > 1:
        raise N3Error(f"{out}: several inputs need an output folder, not a file name")
    jobs = []
    for f, root in files:
        rel = f.relative_to(root) if recursive and _is_under(f, root) else Path(f.name)
        jobs.append(Job(f, out / rel.parent / (rel.stem + suffix + _ext(f, ext, default_ext))))
    return _dedupe(jobs) + problems


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


def list_images(folder: str | Path) -> list[Path]:
    """The images (PNG, JPEG, TIFF, BMP, WebP, HEIC) directly in ``folder``, sorted by name; an error for
    a missing or image-less folder (a data set is never empty)."""
    from .images import is_image_path

    folder = Path(folder)
    if not folder.is_dir():
        raise N3Error(f"{folder}: no such image folder")
    files = sorted(p for p in folder.iterdir() if p.is_file() and is_image_path(p))
    if not files:
        raise N3Error(f"{folder}: no PNG/JPEG/TIFF/BMP/WebP/HEIC images in it")
    return files


def read_folder(folder: str | Path, limit: int = 0) -> list[tuple[str, "np.ndarray"]]:
    """The folder's images (sorted by name; the first ``limit``, 0: all) as (name, float32 pixels)."""
    from .images import read_image

    files = list_images(folder)
    return [(p.name, read_image(p).pixels) for p in (files[:limit] if limit else files)]


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


PAIR_SUFFIXES = ("_real", "_mean")  # PolyU / Nam et al.: X_real.JPG (a shot), X_mean.JPG (the mean of many)


def list_pairs(folder: str | Path) -> list[tuple[str, Path, Path]]:
    """Noisy/clean image pairs in ``folder``, sorted by name, as (name, noisy, clean): either
    ``noisy/`` and ``clean/`` subfolders holding files of the same stem, or files named
    ``X_real.*`` (noisy) and ``X_mean.*`` (clean). A file without its partner is an error."""
    folder = Path(folder)
    if not folder.is_dir():
        raise N3Error(f"{folder}: no such folder")
    if (folder / "noisy").is_dir() and (folder / "clean").is_dir():
        noisy = {p.stem: p for p in list_images(folder / "noisy")}
        clean = {p.stem: p for p in list_images(folder / "clean")}
        where = ("noisy/", "clean/")
    else:
        from .images import is_image_path

        noisy, clean = {}, {}
        for p in sorted(folder.iterdir()):
            if p.is_file() and is_image_path(p):
                for side, suffix in zip((noisy, clean), PAIR_SUFFIXES):
                    if p.stem.endswith(suffix):
                        side[p.stem[: -len(suffix)]] = p
        where = ("X_real", "X_mean")
        if not noisy and not clean:
            raise N3Error(f"{folder}: no image pairs (noisy/ and clean/ subfolders, or X_real.* and X_mean.* files)")
    for a, b, (wa, wb) in ((noisy, clean, where), (clean, noisy, where[::-1])):
        lone = sorted(set(a) - set(b))
        if lone:
            raise N3Error(f"{a[lone[0]]}: no {wb} partner" + (f" (and {len(lone) - 1} more)" if len(lone) > 1 else ""))
    return [(stem, noisy[stem], clean[stem]) for stem in sorted(noisy)]
