"""The CLI's allocator setting: large freed blocks stay in the heap for reuse until released."""
import ctypes
import platform
import resource
import subprocess
import sys

import pytest

from n3cli.runtime.malloc import (
    release_freed_memory,
)

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's mallopt only")


def _faults_of_touching(libc, nbytes: int) -> int:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    p = libc.malloc(nbytes)
    assert p
    ctypes.memset(p, 1, nbytes)
    libc.free(p)
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


def test_freed_layer_sized_blocks_are_reused_until_released():
    """Checked in a fresh process: in this one, the heap that earlier tests left (free blocks of any
    size, and their trimming) decides what a 96 MB malloc faults, not the setting."""
    code = (
        "import ctypes, sys\n"
        f"sys.path.insert(0, {str(__import__('pathlib').Path(__file__).parent)!r})\n"
        "from test_malloc import _check_reuse\n"
        "from n3cli.runtime.malloc import keep_freed_memory\n"
        "libc = ctypes.CDLL('libc.so.6')\n"
        "libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]\n"
        "libc.free.argtypes = [ctypes.c_void_p]\n"
        "assert keep_freed_memory()\n"
        "_check_reuse(libc)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_default_allocator_comes_back():
    """After restore_default_malloc, large blocks are mmapped again (fault on every use). Checked in
    a fresh process: in this one, earlier tests' heap (free blocks of any size) can serve them."""
    code = (
        "import ctypes, resource\n"
        "from n3cli.runtime.malloc import keep_freed_memory, restore_default_malloc\n"
        "libc = ctypes.CDLL('libc.so.6')\n"
        "libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]\n"
        "libc.free.argtypes = [ctypes.c_void_p]\n"
        "def faults(n):\n"
        "    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt\n"
        "    p = libc.malloc(n); ctypes.memset(p, 1, n); libc.free(p)\n"
        "    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before\n"
        "n = 96 * 2**20\n"
        "assert keep_freed_memory(); faults(n); kept = faults(n)\n"
        "restore_default_malloc(); faults(n); print(kept, faults(n), n // 4096)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    kept, restored, pages = (int(v) for v in out)
    assert kept < pages // 10 and restored > pages // 2  # defaults again: mmap, faults every time


def _check_reuse(libc) -> None:
    n = 96 * 2**20  # a 64-channel 0.4 MP float32 feature map: served by mmap without the setting
    pages = n // 4096
    _faults_of_touching(libc, n)  # the heap grows once
    assert _faults_of_touching(libc, n) < pages // 10  # reused, no page faults
    release_freed_memory()
    assert _faults_of_touching(libc, n) > pages // 2  # handed back: faults again
