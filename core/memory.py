"""Reusing freed memory during runs that allocate many grid-sized arrays.

The hotspot model allocates and frees hundreds of arrays the size of its grid. glibc's malloc gives
each allocation above 32 MiB its own ``mmap`` and returns it to the system when freed, so the next
array of that size is faulted in and zeroed page by page all over again: on a 64-million-cell grid
that is tens of GiB of page faults, and the kernel may have to reclaim file cache for each. While
:func:`reuse_freed_memory` is active, large arrays come from malloc's heap and freed ones are reused
in place; when it ends, the defaults are back and the heap is trimmed. The peak is unchanged (the
same arrays are alive at once). On other C libraries and systems it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["available_memory", "format_bytes", "reuse_freed_memory"]

# mallopt(3) parameters and glibc's defaults.
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_DEFAULT_TRIM_THRESHOLD = 128 * 1024
_DEFAULT_MMAP_MAX = 65536
# mallopt takes an int, glibc keeps the threshold as a size_t: -1 is the largest, so never trim. The
# largest int (2 GiB) would still hand back a freed top of the heap larger than that, which on
# grids of tens of millions of cells is most frees of a stage's temporaries.
_NEVER_TRIM = -1


def _glibc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
        libc.gnu_get_libc_version  # noqa: B018 - only glibc has it
    except (OSError, AttributeError):
        return None
    return libc


@contextmanager
def reuse_freed_memory() -> Iterator[bool]:
    """Within the block, keep freed memory in malloc's heap for reuse; yields whether it applies."""
    libc = _glibc()
    if libc is None:
        yield False
        return
    applied = bool(libc.mallopt(_M_MMAP_MAX, 0)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, _NEVER_TRIM))
    try:
        yield applied
    finally:
        libc.mallopt(_M_MMAP_MAX, _DEFAULT_MMAP_MAX)
        libc.mallopt(_M_TRIM_THRESHOLD, _DEFAULT_TRIM_THRESHOLD)
        libc.malloc_trim(0)


def available_memory() -> int | None:
    """Bytes of memory a new allocation can get without swapping (Linux ``MemAvailable``); None if unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        import os

        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def format_bytes(n: float) -> str:
    """``n`` bytes for people: "3.2 GiB", "17 TiB"."""
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "bytes" or abs(n) >= 10 else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.0f} PiB"  # pragma: no cover - the loop returns
