"""Read a contiguous range of records column by column (one HDF5 read per column).

``reader[i]`` costs one small read per column per record; for batches and full scans that
per-call overhead dominates. :func:`read_block` reads rows ``offsets[start]:offsets[stop]`` of
each requested column at once and keeps the offsets rebased to the block, so record ``k`` of the
block owns rows ``block.offsets[table][k]:block.offsets[table][k + 1]``. numpy and h5py only.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable, Optional, Union

import numpy as np

from ..format import layout

if TYPE_CHECKING:  # a type only: blocks stay numpy and h5py at run time
    from ..internals.mapped_columns import MappedColumn


@dataclass
class DeferredRows:
    """Rows of a memory-mapped column not yet copied: ``rows`` is a ``slice`` or an int64 array.

    Blocks cut from a mapped collection hold these instead of arrays, so that a consumer can
    gather rows of several columns at once (see ``BlockGraphs``) or copy only what it uses.
    """
    column: MappedColumn
    rows: Union[slice, np.ndarray]

    @property
    def shape(self) -> tuple:
        count = self.rows.stop - self.rows.start if isinstance(self.rows, slice) else len(self.rows)
        return (count, *self.column.shape[1:])

    def row_numbers(self) -> np.ndarray:
        return np.arange(self.rows.start, self.rows.stop) if isinstance(self.rows, slice) else self.rows

    def materialise(self) -> np.ndarray:
        return self.column[self.rows]


def materialised(data):
    """``data`` as an array (copying :class:`DeferredRows`; arrays pass through)."""
    return data.materialise() if isinstance(data, DeferredRows) else data


@dataclass
class Block:
    """Rows of a range of records; a block joined from several ranges has ``start`` 0."""
    start: int
    stop: int
    offsets: dict          # ragged table -> int64 (n + 1,), rebased to 0
    columns: dict          # column path -> rows of the block

    def __len__(self) -> int:
        return self.stop - self.start

    def rows(self, path: str, k: int) -> np.ndarray:
        """Rows of column ``path`` owned by record ``k`` of the block (a view)."""
        table = layout.TABLE_OF[path]
        data = self.columns[path]
        if table == "records":
            return materialised(data)[k]
        off = self.offsets[table]
        return materialised(data)[off[k]:off[k + 1]]


def read_block(reader, start: int, stop: int, paths: Optional[Iterable[str]] = None,
               buffers: Optional[dict] = None) -> Block:
    """Columns ``paths`` (default: every numeric column present) of records ``start:stop``.

    Each column is one :meth:`CollectionReader.read_rows`; with ``buffers`` (a dict kept by the
    caller between calls) large columns are read into reused arrays instead of fresh ones, which
    saves the page faults of a new allocation per block; those arrays are then only valid until
    the next call with the same ``buffers``.
    """
    paths = list(reader.cols) if paths is None else [p for p in paths if p in reader.cols]
    offsets = {}
    for table in layout.RAGGED_TABLES:
        off = reader.offsets[table][start:stop + 1]
        offsets[table] = off - off[0]
    columns = {path: reader.read_rows(path, start, stop, buffers) for path in paths}
    return Block(start, stop, offsets, columns)


def slice_block(block: Block, start: int, stop: int) -> Block:
    """Records ``start:stop`` of ``block`` (positions within it) as a block of views."""
    offsets, columns = {}, {}
    for table, off in block.offsets.items():
        part = off[start:stop + 1]
        offsets[table] = part - part[0]
    for path, data in block.columns.items():
        table = layout.TABLE_OF[path]
        if table == "records":
            a, b = start, stop
        else:
            a, b = int(block.offsets[table][start]), int(block.offsets[table][stop])
        columns[path] = DeferredRows(data, slice(a, b)) if hasattr(data, "addresses") else data[a:b]
    return Block(block.start + start, block.start + stop, offsets, columns)


def take_block(block: Block, positions) -> Block:
    """Records at ``positions`` of ``block``, gathered in that order (one fancy index per column)."""
    positions = np.asarray(positions, np.int64)
    offsets, rows = {}, {}
    for table, off in block.offsets.items():
        starts, counts = off[positions], off[positions + 1] - off[positions]
        ends = np.cumsum(counts)
        offsets[table] = np.concatenate([[0], ends])
        # row j of the result comes from starts[k] + (j - ends[k-1]) for the record k it belongs to
        rows[table] = np.repeat(starts - (ends - counts), counts) + np.arange(int(ends[-1]) if ends.size else 0)
    columns = {}
    for path, data in block.columns.items():
        table = layout.TABLE_OF[path]
        taken = positions if table == "records" else rows[table]
        columns[path] = DeferredRows(data, taken) if hasattr(data, "addresses") else data[taken]
    return Block(0, int(positions.size), offsets, columns)


def concat_blocks(blocks: list) -> Block:
    """Blocks joined in order into one (``start`` 0, ``stop`` the total record count)."""
    if len(blocks) == 1:
        return blocks[0]
    offsets = {}
    for table in blocks[0].offsets:
        counts = np.concatenate([np.diff(b.offsets[table]) for b in blocks])
        offsets[table] = np.concatenate([[0], np.cumsum(counts)])
    columns = {path: np.concatenate([b.columns[path] for b in blocks]) for path in blocks[0].columns}
    return Block(0, sum(len(b) for b in blocks), offsets, columns)


def contiguous_runs(indices) -> list[tuple[int, int]]:
    """Sorted unique indices grouped into ``(start, stop)`` runs."""
    if isinstance(indices, list) and indices and indices == list(range(indices[0], indices[0] + len(indices))):
        return [(indices[0], indices[0] + len(indices))]  # a sequential batch, the common case
    idx = np.unique(np.asarray(indices, np.int64))
    if idx.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(idx) != 1) + 1
    starts = np.concatenate([[0], breaks])
    stops = np.concatenate([breaks, [idx.size]])
    return [(int(idx[a]), int(idx[b - 1]) + 1) for a, b in zip(starts, stops)]
