"""Third-party noise kept off the user's terminal: what native decoders (libpng inside OpenCV,
libjpeg inside LibRaw) print on the process's stderr, caught so that it becomes part of n3's
one-line error instead of a stray line, and Python libraries' log warnings (tifffile)."""
from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
from collections.abc import Iterator


class Captured:
    """The text captured by :func:`captured_stderr` (complete once the ``with`` block ends)."""

    text: str = ""

    def first_line(self) -> str:
        lines = [ln.strip() for ln in self.text.splitlines() if ln.strip()]
        return lines[0][:200] if lines else ""


@contextlib.contextmanager
def captured_stderr() -> Iterator[Captured]:
    """Redirect file descriptor 2 to a temporary file for the block; OpenCV's own log is silenced
    too. Falls back to capturing nothing where fd 2 cannot be redirected."""
    out = Captured()
    _quiet_opencv()
    fd = 2  # where C libraries write, whatever Python's sys.stderr has become
    try:
        saved = os.dup(fd)
    except OSError:
        yield out
        return
    with tempfile.TemporaryFile() as tmp:
        try:
            sys.stderr.flush()
        except (AttributeError, OSError, ValueError):
            pass
        os.dup2(tmp.fileno(), fd)
        try:
            yield out
        finally:
            os.dup2(saved, fd)
            os.close(saved)
            tmp.seek(0)
            out.text = tmp.read().decode(errors="replace")


_opencv_quiet = False


def _quiet_opencv() -> None:
    """OpenCV logs warnings and errors itself before raising or returning None; n3 reports them."""
    global _opencv_quiet
    if _opencv_quiet:
        return
    _opencv_quiet = True
    try:
        import cv2

        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    except Exception:  # noqa: BLE001  (an OpenCV without the logging API: nothing to silence)
        pass


@contextlib.contextmanager
def quiet_logger(name: str) -> Iterator[None]:
    """Silence the Python logger ``name`` for the block (tifffile logs each odd tag it skips)."""
    log = logging.getLogger(name)
    level = log.level
    log.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        log.setLevel(level)
