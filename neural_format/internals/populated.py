"""Destination arrays for bulk reads: memory populated in one system call, and recycled.

A freshly allocated array costs one page fault per 4 KiB page on its first write. For a bulk read
of a column (hundreds of MB) those faults, not the copy, can be most of the time: on the virtual
machines this project is measured on, the hypervisor backs each faulted page anew, and an 800 MB
column filled through ``numpy.empty`` took 1.2-1.8 s where the same read into memory populated up
front by ``madvise(MADV_POPULATE_WRITE)`` took 0.8-0.95 s (``docs/benchmarks-format.md``).

Memory given back to the kernel is cold again by the next read, so the regions of arrays that
have died are kept, up to :func:`cache_limit` bytes (default: 2 GiB or an eighth of physical
memory, whichever is less; ``NEURAL_FORMAT_BUFFER_CACHE`` sets it in bytes, 0 turns recycling
off), and handed to the next request of a similar size, as PyTorch's caching allocator does for
GPU memory. :func:`release_cached` unmaps them. Each array is an ordinary writable, uninitialised
``numpy.ndarray`` backed by a private anonymous mapping; its region returns to the cache only when
the array and every view of it are gone.

Only on Linux (kernel 5.14+ for ``MADV_POPULATE_WRITE``) and only for arrays of at least
:data:`MIN_BYTES`; elsewhere, or if the kernel refuses, it is plain ``numpy.empty``.
"""
from __future__ import annotations

import mmap
import os
import sys
import threading
import weakref

import numpy as np

MIN_BYTES = 4 << 20
_POPULATE_WRITE = getattr(mmap, "MADV_POPULATE_WRITE", 23)  # the Linux value, absent from Python 3.11
_LINUX = sys.platform.startswith("linux")


def cache_limit() -> int:
    """Bytes of dead arrays' regions kept for reuse."""
    configured = os.environ.get("NEURAL_FORMAT_BUFFER_CACHE")
    if configured is not None:
        return max(0, int(configured))
    try:
        physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        physical = 16 << 30
    return min(2 << 30, physical // 8)


class _RegionCache:
    """Mappings of dead arrays, for reuse by requests of at least half their size."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._free: list[mmap.mmap] = []

    def take(self, size: int):
        with self._lock:
            fits = [r for r in self._free if size <= len(r) <= 2 * size]
            if not fits:
                return None
            region = min(fits, key=len)
            self._free.remove(region)
            return region

    def give(self, region: mmap.mmap) -> None:
        with self._lock:
            limit = cache_limit()
            self._free.append(region)
            self._free.sort(key=len)
            while self._free and sum(len(r) for r in self._free) > limit:
                # the largest go first; dropping the reference unmaps it once the dying array's
                # buffer export is released (closing it here would raise: it is still exported)
                self._free.pop()

    def release(self) -> int:
        with self._lock:
            freed = sum(len(r) for r in self._free)
            for region in self._free:
                try:
                    region.close()
                except BufferError:
                    pass  # still exported: unmapped when the export goes
            self._free.clear()
            return freed

    def cached_bytes(self) -> int:
        with self._lock:
            return sum(len(r) for r in self._free)


_CACHE = _RegionCache()


def release_cached() -> int:
    """Unmap every cached region; returns the bytes released."""
    return _CACHE.release()


def cached_bytes() -> int:
    return _CACHE.cached_bytes()


def _new_region(size: int):
    try:
        region = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    except (OSError, ValueError):
        return None
    try:
        region.madvise(_POPULATE_WRITE)
    except (OSError, ValueError):
        pass  # an older kernel: the pages fault in on first write, as with numpy.empty
    return region


def populated_empty(shape: tuple[int, ...], dtype) -> np.ndarray:
    """An uninitialised array like ``numpy.empty(shape, dtype)``, its pages already in place."""
    dtype = np.dtype(dtype)
    count = int(np.prod(shape, dtype=np.int64))
    size = count * dtype.itemsize
    if size < MIN_BYTES or not _LINUX:
        return np.empty(shape, dtype)
    region = _CACHE.take(size) or _new_region(size)
    if region is None:
        return np.empty(shape, dtype)
    base = np.frombuffer(region, dtype, count=count)
    if cache_limit() > 0:
        weakref.finalize(base, _CACHE.give, region).atexit = False  # nothing to keep at exit
    return base.reshape(shape)
