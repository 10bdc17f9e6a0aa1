"""Writing files so that readers never see a partial one."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path


def atomic_write(path: str | os.PathLike, write) -> None:
    """Call ``write(tmp_path)`` then rename onto ``path``: readers never see a partial file.

    The temporary file (``.<name>.n3-<pid>-<random>.part`` beside ``path``) is removed on any
    exception, Ctrl-C and SIGTERM included (the CLI turns SIGTERM into one); what a killed process
    leaves, :func:`remove_stale_parts` removes on the next run."""
    from ..errors import N3Error

    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.n3-{os.getpid()}-", suffix=".part", dir=path.parent)
    except OSError as e:  # the error names the output, not the temporary file it never made
        raise N3Error(f"{path}: cannot write there ({e.strerror or e})") from None
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; outputs get the usual permissions
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def remove_stale_parts(path: str | os.PathLike) -> list[Path]:
    """Remove the temporary files of ``path`` that n3 processes no longer running left (killed
    with SIGKILL, or a machine that went down); returns what was removed."""
    path = Path(path)
    removed = []
    try:
        candidates = list(path.parent.glob(f".{glob_escape(path.name)}.n3-*-*.part"))
    except OSError:
        return removed
    for f in candidates:
        pid = f.name[len(path.name) + 5 :].split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            try:
                f.unlink()
                removed.append(f)
            except OSError:
                pass
    return removed


def glob_escape(name: str) -> str:
    import glob

    return glob.escape(name)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
