r"""Rows of unfiltered HDF5 datasets read straight from a read-only memory map of the file.

HDF5 stores a dataset without filters (no compression, shuffle or checksum) byte for byte: a
contiguous dataset is one run of ``n * row_bytes`` bytes at :meth:`DatasetID.get_offset`, and a
chunked one whose chunks span whole rows is a sequence of chunks, chunk :math:`c` holding rows
:math:`[c\,r, (c+1)\,r)` at its own file offset. Chunks written one after another lie next to
each other in the file, so they merge into a few *extents*; each extent is one numpy view of the
mapped file. Reading rows then costs no HDF5 call and no copy into a read buffer: a slice within
one extent is a view, and gathers copy straight from the page cache.

:func:`map_columns` maps only datasets for which this is exact: native-order numeric dtypes, no
filters, no external or virtual storage, every chunk allocated and unfiltered, chunks spanning the
full trailing shape, and every extent inside the file. It returns ``None`` for the others, and
callers read those through h5py.

Caveat of every memory map (numpy.memmap, safetensors): if another process truncates the file
while it is mapped, touching a page past the new end raises SIGBUS. The mapping is read-only,
so it can never change the file.
"""
from __future__ import annotations

import mmap
import os
from dataclasses import dataclass
from typing import Iterable, Optional

import h5py
import numpy as np

from .populated import populated_empty


@dataclass(frozen=True)
class Extent:
    """Rows ``start:stop`` of a dataset, stored back to back from byte ``offset`` of the file."""
    start: int
    stop: int
    offset: int


def dataset_extents(ds: h5py.Dataset) -> Optional[list[Extent]]:
    """The extents of ``ds`` when its rows can be read from the file's bytes as they are, else ``None``."""
    dtype = ds.dtype
    if dtype.fields is not None or dtype.kind not in "biuf" or not dtype.isnative or ds.ndim == 0:
        return None
    n = int(ds.shape[0])
    row_bytes = dtype.itemsize * int(np.prod(ds.shape[1:], dtype=np.int64))
    if n == 0 or row_bytes == 0:
        return []
    try:
        dcpl = ds.id.get_create_plist()
        if dcpl.get_nfilters() or dcpl.get_external_count() or ds.is_virtual:
            return None
        layout = dcpl.get_layout()
        if layout == h5py.h5d.CONTIGUOUS:
            offset = ds.id.get_offset()
            return None if offset is None else [Extent(0, n, int(offset))]
        if layout != h5py.h5d.CHUNKED or tuple(ds.chunks[1:]) != tuple(ds.shape[1:]):
            return None
        rows = int(ds.chunks[0])
        chunk_bytes = rows * row_bytes
        chunks: list[tuple[int, int, int, int]] = []  # first row, byte offset, size, filter mask

        def visit(info) -> None:
            chunks.append((int(info.chunk_offset[0]), int(info.byte_offset), int(info.size), int(info.filter_mask)))

        ds.id.chunk_iter(visit)
    except Exception:  # an HDF5 build without chunk queries, or a damaged index: read through h5py
        return None
    chunks.sort()
    expected = -(-n // rows)
    if len(chunks) != expected:
        return None  # unallocated chunks read as fill values, which the file's bytes do not hold
    extents: list[Extent] = []
    for c, (first_row, offset, size, mask) in enumerate(chunks):
        if first_row != c * rows or size != chunk_bytes or mask != 0:
            return None
        stop = min(n, first_row + rows)
        last = extents[-1] if extents else None
        if last is not None and last.offset + (last.stop - last.start) * row_bytes == offset:
            extents[-1] = Extent(last.start, stop, last.offset)
        else:
            extents.append(Extent(first_row, stop, offset))
    return extents


class MappedFile:
    """A read-only map of one file, and views of it as rows of a given byte width."""

    def __init__(self, region: mmap.mmap):
        self.region = region
        self.size = len(region)
        self._rows: dict[int, np.ndarray] = {}

    def rows_at_any_byte(self, row_bytes: int) -> np.ndarray:
        """Element ``a`` is the ``row_bytes`` bytes starting at byte ``a`` (one void item each).

        Fancy indexing this view with byte addresses gathers rows from anywhere in the file,
        across extents and at any alignment, in one numpy call that copies only the rows taken.
        """
        view = self._rows.get(row_bytes)
        if view is None:
            view = self._rows[row_bytes] = np.ndarray((self.size - row_bytes + 1,), np.dtype((np.void, row_bytes)),
                                                      buffer=self.region, strides=(1,))
        return view


class MappedColumn:
    """Rows of one dataset as views of the mapped file; supports ``[a:b]`` and ``[int array]``.

    A slice inside one extent is a read-only view; one that crosses extents, and every gather,
    is a new array. :meth:`addresses` gives rows' byte positions in the file, so that rows of
    several columns can be gathered together (:meth:`MappedFile.rows_at_any_byte`).
    """

    def __init__(self, name: str, shape: tuple, dtype: np.dtype, file: MappedFile, extents: list[Extent]):
        self.name = name
        self.shape = tuple(shape)
        self.dtype = np.dtype(dtype)
        self.ndim = len(self.shape)
        self.file = file
        self.row_items = int(np.prod(self.shape[1:], dtype=np.int64))
        self.row_bytes = self.dtype.itemsize * self.row_items
        self._starts = np.asarray([x.start for x in extents], np.int64)
        self._stops = np.asarray([x.stop for x in extents], np.int64)
        self._offsets = np.asarray([x.offset for x in extents], np.int64)
        self._views = [np.frombuffer(file.region, self.dtype, (x.stop - x.start) * self.row_items, x.offset)
                       .reshape(x.stop - x.start, *self.shape[1:]) for x in extents]

    def __len__(self) -> int:
        return self.shape[0]

    def _empty(self, rows: int) -> np.ndarray:
        return populated_empty((rows, *self.shape[1:]), self.dtype)

    def __getitem__(self, key) -> np.ndarray:
        if isinstance(key, slice):
            start, stop, step = key.indices(self.shape[0])
            if step != 1:
                raise IndexError("mapped columns take slices with step 1 only")
            return self._range(start, max(start, stop))
        return self.gather(np.asarray(key, np.int64))

    def _range(self, a: int, b: int) -> np.ndarray:
        if b <= a:
            return self._empty(0)
        e = int(np.searchsorted(self._stops, a, side="right"))
        if b <= self._stops[e]:
            first = int(self._starts[e])
            return self._views[e][a - first:b - first]
        return self.gather(np.arange(a, b, dtype=np.int64))

    @property
    def single_view(self) -> Optional[np.ndarray]:
        """The whole column as one typed view, when it is stored as one extent, else ``None``."""
        return self._views[0] if len(self._views) == 1 and self._starts[0] == 0 else None

    def addresses(self, rows: np.ndarray) -> np.ndarray:
        """Byte offset in the file of each row in ``rows`` (int64, checked to be in range)."""
        rows = np.asarray(rows, np.int64)
        if rows.ndim != 1:
            raise IndexError("mapped columns take a 1-D array of row numbers")
        if rows.size and (rows.min() < 0 or rows.max() >= self.shape[0]):
            raise IndexError(f"row out of range for {self.shape[0]} rows of {self.name}")
        extent = np.searchsorted(self._stops, rows, side="right")
        return self._offsets[extent] + (rows - self._starts[extent]) * self.row_bytes

    def gather(self, rows: np.ndarray) -> np.ndarray:
        """Rows ``rows`` copied into a new array, in that order."""
        if len(self._views) == 1 and self._starts[0] == 0:
            # one extent (a contiguous dataset, or chunks back to back): a typed take, which
            # costs a fraction of computing byte addresses and copying untyped rows
            rows = np.asarray(rows, np.int64)
            if rows.ndim != 1:
                raise IndexError("mapped columns take a 1-D array of row numbers")
            if rows.size and (rows.min() < 0 or rows.max() >= self.shape[0]):
                raise IndexError(f"row out of range for {self.shape[0]} rows of {self.name}")
            return np.take(self._views[0], rows, axis=0)
        addresses = self.addresses(rows)
        if self.row_bytes == 0 or addresses.size == 0:
            return np.zeros((addresses.size, *self.shape[1:]), self.dtype)
        raw = self.file.rows_at_any_byte(self.row_bytes)[addresses]
        return raw.view(self.dtype).reshape(addresses.size, *self.shape[1:])


def map_columns(path, datasets: Iterable[h5py.Dataset]) -> dict[str, Optional[MappedColumn]]:
    """Each dataset's :class:`MappedColumn` (``None`` where its storage cannot be mapped), by name.

    ``path`` is the file the datasets belong to; it is mapped once, read-only, and the mapping
    lives as long as any returned view does. An extent that reaches past the end of the file
    (a damaged index) leaves its dataset unmapped rather than mapping bytes that do not exist.
    """
    datasets = list(datasets)
    found = {ds.name: dataset_extents(ds) for ds in datasets}
    if all(extents is None for extents in found.values()):
        return {ds.name: None for ds in datasets}
    with open(os.fspath(path), "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        if size == 0:
            return {ds.name: None for ds in datasets}
        file = MappedFile(mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ))  # keeps its own descriptor
    out: dict[str, Optional[MappedColumn]] = {}
    for ds in datasets:
        extents = found[ds.name]
        row_items = int(np.prod(ds.shape[1:], dtype=np.int64))
        row_bytes = ds.dtype.itemsize * row_items
        if extents is None or any(x.offset < 0 or x.offset + (x.stop - x.start) * row_bytes > size for x in extents):
            out[ds.name] = None
            continue
        out[ds.name] = MappedColumn(ds.name, ds.shape, ds.dtype, file, extents)
    return out
