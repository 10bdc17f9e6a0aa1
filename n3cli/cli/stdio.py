"""`-` for standard input and output, for pipelines: ``convert in.heic png:- | n3 denoise - -o - | ...``.

The data goes through a private temporary folder: standard input is saved there under the
extension its bytes say (:func:`n3cli.api.guess_ext`), the output is written there as any output
is, and copied to standard output only when the command succeeded, so a failure leaves the pipe
empty and the exit code says why. Messages name ``<stdin>`` and ``<stdout>``, not those files.
"""
from __future__ import annotations

import functools
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from .batchrun import forget_shown, show_as
from .common import fail

STDIN, STDOUT = "<stdin>", "<stdout>"


def with_stdio(default_ext: Callable[[Path], str]):
    """Let a batch command (``inputs``, ``-o``, ``--ext``, ``--suffix``, ``--json``, ``--compare``)
    take ``-`` as its one input and ``-o -``; ``default_ext(input)``: the output's format when
    ``--ext`` does not give it."""

    def wrap(fn):
        @functools.wraps(fn)
        def run(**kw):
            inputs, output = list(kw["inputs"]), kw["output"]
            if "-" not in inputs and output != "-":
                return fn(**kw)
            _check(inputs, output, kw)
            tmp = Path(tempfile.mkdtemp(prefix="n3-stdio-"))
            result = None
            try:
                if "-" in inputs:
                    kw["inputs"] = (str(_save_stdin(tmp)),)
                    show_as(kw["inputs"][0], STDIN)
                if output == "-":
                    src = Path(kw["inputs"][0])
                    ext = f".{kw['ext']}" if kw.get("ext") else default_ext(src)
                    result = tmp / f"stdout{ext}"
                    kw["output"] = str(result)
                    show_as(str(result), STDOUT)
                return fn(**kw)
            except SystemExit as e:
                if result is not None and not e.code and result.is_file():
                    with open(result, "rb") as f:
                        shutil.copyfileobj(f, sys.stdout.buffer)
                    sys.stdout.buffer.flush()
                raise
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
                for path in (kw["inputs"][0], str(result)):
                    forget_shown(path)

        return run

    return wrap


def _check(inputs: list[str], output: str | None, kw: dict) -> None:
    if "-" in inputs and len(inputs) > 1:
        fail("- (standard input) must be the only input")
    if kw.get("ray_address") not in (None, "local"):  # its workers elsewhere cannot read this machine's files
        fail("standard input and output stay on this machine: --ray with - takes only `local`")
    if "-" in inputs and output is None and not kw.get("print_noise"):
        fail("standard input has no folder to write beside: give -o FILE or -o -")
    if output == "-":
        one = len(inputs) == 1 and not Path(inputs[0]).is_dir() and not any(c in inputs[0] for c in "*?[")
        if not one and not kw.get("burst"):
            fail("-o - (standard output) takes one input image (or a --burst)")
        if kw.get("as_json"):
            fail("--json prints on standard output, which -o - fills with the image")
        if kw.get("compare"):
            fail("--compare writes a file beside the output: give -o a file name")
        if kw.get("suffix"):
            fail("--suffix names files beside each input; it does not go with -o -")
        if sys.stdout.isatty():
            fail("-o - would print the image on the terminal: pipe or redirect standard output")


def _save_stdin(tmp: Path) -> Path:
    from ..api import guess_ext

    raw = tmp / "stdin"
    with open(raw, "wb") as f:
        shutil.copyfileobj(sys.stdin.buffer, f)
    if raw.stat().st_size == 0:
        fail("standard input is empty")
    return raw.rename(tmp / f"stdin{guess_ext(raw)}")
