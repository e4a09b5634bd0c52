"""Destination arrays for bulk reads whose memory pages are populated in one system call.

A freshly allocated array costs one page fault per 4 KiB page on its first write. For a bulk read
of a column (hundreds of MB) those faults, not the copy, can be most of the time: on the
virtual machines this project is measured on, the hypervisor backs each faulted page anew, and
an 800 MB column filled through ``numpy.empty`` took 1.2-1.8 s where the same read into memory
populated up front by ``madvise(MADV_POPULATE_WRITE)`` took 0.8-0.95 s
(``docs/benchmarks-format.md``). The array is backed by a private anonymous mapping that is
unmapped when the array is garbage collected; it is an ordinary writable ``numpy.ndarray``.

Only on Linux (kernel 5.14+ for ``MADV_POPULATE_WRITE``) and only for arrays of at least
:data:`MIN_BYTES`; elsewhere, or if the kernel refuses, it is plain ``numpy.empty``.
"""
from __future__ import annotations

import mmap
import sys

import numpy as np

MIN_BYTES = 4 << 20
_POPULATE_WRITE = getattr(mmap, "MADV_POPULATE_WRITE", 23)  # the Linux value, absent from Python 3.11


def populated_empty(shape: tuple[int, ...], dtype) -> np.ndarray:
    """An uninitialised array like ``numpy.empty(shape, dtype)``, its pages already in place."""
    dtype = np.dtype(dtype)
    size = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if size < MIN_BYTES or not sys.platform.startswith("linux"):
        return np.empty(shape, dtype)
    try:
        region = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    except (OSError, ValueError):
        return np.empty(shape, dtype)
    try:
        region.madvise(_POPULATE_WRITE)
    except (OSError, ValueError):
        pass  # an older kernel: the pages fault in on first write, as with numpy.empty
    return np.frombuffer(region, dtype).reshape(shape)
