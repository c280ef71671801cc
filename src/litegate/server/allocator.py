"""The serving process's C allocator (glibc's malloc): two arenas and a fixed mmap threshold,
so what native work frees (NumPy's arrays in the encoder's threads, a large batch line) goes
back to the system instead of staying resident in one arena per thread.

With glibc's defaults a 10,000-line nano batch left the server about 50 MB larger than with
these settings (``bench/big_line.py``). An operator's own ``MALLOC_ARENA_MAX`` or
``MALLOC_MMAP_THRESHOLD_`` is kept; other C libraries (musl, macOS) are left alone.
"""

from __future__ import annotations

import ctypes
import os
import sys

M_MMAP_THRESHOLD = -3  # mallopt's parameter numbers (glibc malloc.h)
M_ARENA_MAX = -8
ARENAS = 2
MMAP_THRESHOLD = 4 << 20  # blocks this large are mapped alone and unmapped when freed; fixed, not raised


def tune_allocator() -> dict[str, int]:
    """Set what the environment does not; returns what was set (empty: nothing was)."""
    if not sys.platform.startswith("linux"):
        return {}
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):  # not glibc
        return {}
    wanted = {"MALLOC_ARENA_MAX": (M_ARENA_MAX, ARENAS), "MALLOC_MMAP_THRESHOLD_": (M_MMAP_THRESHOLD, MMAP_THRESHOLD)}
    done = {}
    for name, (param, value) in wanted.items():
        if name not in os.environ and mallopt(param, value) == 1:
            done[name] = value
    return done
