"""Process-wide allocator setting for the command line: keep freed memory for reuse.

glibc serves every allocation over 32 MB with a fresh ``mmap`` and unmaps it on free, so each
layer of a network on a megapixel tile (64 channels x 1 MP x 4 bytes = 256 MB) faults its output's
pages in anew: about a third of CPU inference time (measured with torch 2.13 on 2 cores: DnCNN-17
on 1024x1024 3.66 s -> 2.54 s, N³Net 6.72 s -> 4.81 s with this setting). Served from the heap
instead, freed blocks are reused by the next layer. Only the CLI and the benchmarks call this;
library users keep their process's allocator as it is.

The price is peak memory: torch asks for 64-byte aligned blocks, which a freed block of the same
size cannot always serve, so the heap fragments (denoising a 2 MP image in 512 px tiles peaked at
805 MB instead of 565 MB). ``N3_DEFAULT_MALLOC=1`` turns the setting off.

Held memory would also fragment over many tiles (a 16 MP image grew to 2x the peak of a 2 MP one), so
:func:`release_freed_memory` hands the free pages back after each tile: a tile's ~20 layers reuse
each other's memory, and the next tile starts from the working set alone.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4


_libc = None


def keep_freed_memory() -> bool:
    """Ask glibc to serve large blocks from the heap and not to trim it; False where unsupported or
    where the environment sets ``N3_DEFAULT_MALLOC=1`` (lower peak memory, slower)."""
    if not sys.platform.startswith("linux") or os.environ.get("N3_DEFAULT_MALLOC", "") not in ("", "0"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    if not (mallopt(_M_MMAP_MAX, 0) and mallopt(_M_TRIM_THRESHOLD, 2**31 - 1)):
        return False
    global _libc
    _libc = libc
    return True


def release_freed_memory() -> None:
    """Return free heap pages to the system (after a tile); a no-op unless :func:`keep_freed_memory` ran."""
    if _libc is not None:
        _libc.malloc_trim(0)


def restore_default_malloc() -> None:
    """Undo :func:`keep_freed_memory`: glibc's defaults (64 Ki mmapped blocks at most, heap trimmed
    above 128 KiB free) for a process that goes on after the CLI's work (tests, notebooks)."""
    global _libc
    if _libc is None:
        return
    _libc.mallopt(_M_MMAP_MAX, 65536)
    _libc.mallopt(_M_TRIM_THRESHOLD, 128 * 1024)
    _libc.malloc_trim(0)
    _libc = None
