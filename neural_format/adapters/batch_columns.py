"""The rows of a batch of records, gathered column by column from one or more collections (numpy, h5py).

:class:`CollectionColumns` opens every shard of the given collections (files, shard lists,
collection directories: anything :func:`neural_format.open_collection` takes) in the process that
uses it, and keeps in memory only what is a few bytes per record: the ragged tables' offsets, the
per-record columns (labels, bridge) and the record IDs' bytes. The bulky columns (patch and entity
features, positions, edges, relations) stay in the file: read from a read-only memory map when
they are stored unfiltered (:mod:`neural_format.internals.mapped_columns`, the writer's default), otherwise
through HDF5, one read per column per contiguous run of the records asked for.

:meth:`CollectionColumns.gather` takes global record indices in any order and returns a
:class:`BatchColumns`: the records' per-table row counts in that order, and methods that copy
the rows of a column for exactly those records, in that order, with one fancy index per column
and shard (``rows``), or several columns interleaved into one array in one copy
(``gather_rows``, used for ``x``: each record's patch rows then its entity rows).

:func:`epoch_order` is the sampling rule of the batch loader: ``torch.utils.data.DistributedSampler``'s
(one permutation per epoch from ``seed + epoch``, padded by repetition to a multiple of the world
size, rank ``r`` taking every ``world``-th item from ``r``), computed here so that tests can
compare it with torch's.

Pickling carries the sources only; a process that finds an inherited state opens its own handles
(h5py handles and maps must not cross ``fork``).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from ..format import layout
from ..internals.mapped_columns import map_columns
from ..format.metadata import CollectionMeta
from ..files.blocks import contiguous_runs
from ..internals import optional_deps

# every numeric column of a ragged table (the column table's ROWS columns): they stay in the file,
# memory-mapped where stored unfiltered, and are read for the records of a batch only
RAGGED_COLUMNS = tuple(c.path for c in layout.COLUMNS if c.codec is layout.Codec.ROWS)
# the per-record columns a graph batch uses (``y`` and the fusion edge): bytes per record, loaded
# for all records at once; the other per-record columns (geometry, digests) are not needed for a graph
RECORD_COLUMNS = ("/records/bridge", "/records/labels")


def expand(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Row numbers ``starts[k] + j`` for ``j < counts[k]``, record after record (int64)."""
    counts = np.asarray(counts, np.int64)
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, np.int64)
    before = np.cumsum(counts) - counts
    return np.repeat(np.asarray(starts, np.int64) - before, counts) + np.arange(total, dtype=np.int64)


class _ShardColumns:
    """One shard in this process: its reader, in-memory per-record data, mapped or HDF5 columns."""

    def __init__(self, reader, path: Optional[str], mmap: bool, extras: bool):
        self.reader = reader
        self.offsets = {t: np.asarray(off, np.int64) for t, off in reader.offsets.items()}
        self.present = {p for p in RAGGED_COLUMNS if p in reader.cols}
        mapped = {}
        if mmap and path is not None and self.present:
            mapped = map_columns(path, [reader.cols[p] for p in sorted(self.present)])
        self.mapped = {p: c for p, c in mapped.items() if c is not None}
        self.ids = reader.ids.over(bytes(reader.ids.data[()])) if extras else None

    def rows(self, path: str, records: np.ndarray) -> tuple[object, np.ndarray]:
        """``(source, row numbers)``: the rows ``records`` own in column ``path`` of this shard.

        ``source`` is the mapped column, or, for a column read through HDF5, the rows of the
        records' contiguous runs read into memory (row numbers then index into those).
        """
        off = self.offsets[layout.TABLE_OF[path]]
        counts = off[records + 1] - off[records]
        column = self.mapped.get(path)
        if column is not None:
            return column, expand(off[records], counts)
        runs = contiguous_runs(records.tolist())
        parts = [self.reader.read_rows(path, a, b) for a, b in runs]
        data = parts[0] if len(parts) == 1 else np.concatenate(parts)
        # where each run starts in ``data``, then each record's first row within it
        run_starts = np.asarray([a for a, _ in runs], np.int64)
        run_rows = np.asarray([int(off[b] - off[a]) for a, b in runs], np.int64)
        run_base = np.cumsum(run_rows) - run_rows
        run = np.searchsorted(run_starts, records, side="right") - 1
        first = run_base[run] + off[records] - off[run_starts[run]]
        return data, expand(first, counts)


class CollectionColumns:
    """Column access to the records of one or more collections, by global index (module doc).

    ``sources``: one source or a list of sources for :func:`neural_format.open_collection`
    (their shards are concatenated in order). ``mmap=False`` reads every column through HDF5.
    ``extras=False`` skips the record IDs.
    """

    def __init__(self, sources, *, mmap: bool = True, extras: bool = True):
        self.sources = list(sources) if isinstance(sources, (list, tuple)) else [sources]
        self.mmap, self.extras = bool(mmap), bool(extras)
        from ..collections.collection import open_collection
        counts: list[int] = []
        first: Optional[CollectionMeta] = None
        for source in self.sources:
            with open_collection(source) as collection:
                meta = collection.meta
                if first is None:
                    first = meta
                elif (meta.patch_feature_dim, meta.entity_feature_dim, list(meta.label_names)) != \
                        (first.patch_feature_dim, first.entity_feature_dim, list(first.label_names)):
                    raise ValueError(f"{source}: feature widths or label names differ from {self.sources[0]}")
                counts += list(collection.counts)
        if first is None:
            raise ValueError("no collection given")
        self.meta: CollectionMeta = first
        self.counts = counts
        self.starts = np.concatenate([[0], np.cumsum(counts, dtype=np.int64)]).astype(np.int64)
        self._state: Optional[tuple] = None  # (pid, collections, shards, per-record arrays)

    def __len__(self) -> int:
        return int(self.starts[-1])

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_state"] = None
        return state

    # -- per-process state ---------------------------------------------------------------------
    def _open(self) -> tuple:
        pid = os.getpid()
        if self._state is not None and self._state[0] == pid:
            return self._state
        from ..collections.collection import open_collection
        collections, shards = [], []
        for source in self.sources:
            collection = open_collection(source)
            collections.append(collection)
            for k, path in enumerate(collection.shard_sources()):
                reader = collection.shard(k)
                path = os.fspath(path) if isinstance(path, (str, os.PathLike)) and "://" not in str(path) else None
                shards.append(_ShardColumns(reader, path, self.mmap, self.extras))
        # per-record data of every shard, concatenated: global index -> value with one fancy index
        per_record = {}
        for path in RECORD_COLUMNS:
            parts = [s.reader.cols[path][()] for s in shards if path in s.reader.cols]
            per_record[path] = np.concatenate(parts) if parts else None
        counts = {t: np.concatenate([np.diff(s.offsets[t]) for s in shards]) for t in layout.RAGGED_TABLES}
        self._state = (pid, collections, shards, per_record, counts)
        return self._state

    def close(self) -> None:
        if self._state is not None and self._state[0] == os.getpid():
            for collection in self._state[1]:
                collection.close()
        self._state = None

    def record_counts(self, table: str) -> np.ndarray:
        """Rows each record owns in ``table`` (patches, patch_edges, entities, relations), all records."""
        return self._open()[4][table]

    def labels(self) -> np.ndarray:
        """The labels column of every record, (N, L) float32."""
        return self._open()[3]["/records/labels"]

    def gather(self, indices) -> "BatchColumns":
        """The records at global ``indices`` (in that order) as a :class:`BatchColumns`."""
        _, _, shards, per_record, counts = self._open()
        g = np.asarray(indices, np.int64).reshape(-1)
        n = len(self)
        if g.size and (g.min() < 0 or g.max() >= n):
            bad = int(g[(g < 0) | (g >= n)][0])
            raise IndexError(f"record index {bad} out of range for {n} records")
        shard_of = np.searchsorted(self.starts, g, side="right") - 1
        local = g - self.starts[shard_of]
        if g.size == 0:
            parts = []
        elif shard_of[0] == shard_of[-1] and (shard_of == shard_of[0]).all():
            parts = [(int(shard_of[0]), np.arange(g.size))]
        else:
            parts = [(int(k), np.flatnonzero(shard_of == k)) for k in np.unique(shard_of)]
        # a sequential batch: every column's rows are one slice of its shard
        run = len(parts) == 1 and int(local[-1]) - int(local[0]) == g.size - 1 and \
            (g.size == 1 or bool((np.diff(local) == 1).all()))
        return BatchColumns(self, shards, g, shard_of, local, {t: c[g] for t, c in counts.items()},
                            {p: None if v is None else v[g] for p, v in per_record.items()}, parts, run)


@dataclass
class BatchColumns:
    """Records of one batch, in batch order: counts per table and the means to copy their rows."""
    source: CollectionColumns
    shards: list
    indices: np.ndarray     # global record indices
    shard_of: np.ndarray    # shard of each record
    local: np.ndarray       # index within its shard
    counts: dict            # table -> rows per record (n,)
    records: dict           # per-record column path -> (n, ...) values
    parts: list             # (shard, batch positions) for each shard the batch touches
    run: bool               # the records are consecutive in one shard

    def __len__(self) -> int:
        return int(self.indices.size)

    def has(self, path: str) -> bool:
        return path in self.shards[0].present if self.shards else False

    def record_ids(self) -> list[str]:
        out = [""] * len(self)
        for k, positions in self._parts():
            ids = self.shards[k].ids
            if ids is None:
                continue
            for p, text in zip(positions.tolist(), ids.at(self.local[positions])):
                out[p] = text
        return out

    def record_id(self, k: int) -> str:
        """The ID of the batch's record ``k`` (read even when IDs were not loaded)."""
        return self.shards[int(self.shard_of[k])].reader.ids.get(int(self.local[k]))

    def _parts(self) -> list[tuple[int, np.ndarray]]:
        return self.parts

    def _slice(self, path: str) -> tuple:
        """``(shard, first row, stop row)`` of column ``path`` for a batch of consecutive records."""
        k = self.parts[0][0]
        off = self.shards[k].offsets[layout.TABLE_OF[path]]
        return self.shards[k], int(off[self.local[0]]), int(off[self.local[-1] + 1])

    def rows(self, path: str, select: Optional[np.ndarray] = None) -> np.ndarray:
        """Rows of column ``path`` of every record (or of the records ``select``, a bool mask), in order.

        The result may be a read-only view of the memory map: copy it before writing to it.
        """
        table = layout.TABLE_OF[path]
        if self.run and select is None:  # one slice: a view of the map, or one HDF5 read
            shard, a, b = self._slice(path)
            column = shard.mapped.get(path)
            if column is not None:
                return column[a:b]
            return shard.reader.read_rows(path, int(self.local[0]), int(self.local[-1]) + 1)
        counts = self.counts[table] if select is None else np.where(select, self.counts[table], 0)
        parts = self._parts()
        if len(parts) == 1:
            k, _ = parts[0]
            records = self.local if select is None else self.local[select]
            data, rows = self.shards[k].rows(path, records)
            return data[rows]
        dst_start = np.cumsum(counts) - counts
        out = None
        for k, positions in parts:
            if select is not None:
                positions = positions[select[positions]]
            if positions.size == 0:
                continue
            data, rows = self.shards[k].rows(path, self.local[positions])
            taken = data[rows]
            if out is None:
                out = np.empty((int(counts.sum()), *taken.shape[1:]), taken.dtype)
            out[expand(dst_start[positions], counts[positions])] = taken
        if out is None:
            column = self.shards[0].reader.cols[path]
            out = np.zeros((0, *column.shape[1:]), column.dtype)
        return out

    def gather_rows(self, specs: Sequence[tuple[str, np.ndarray]], total: int,
                    blank: Optional[tuple[np.ndarray, np.ndarray]] = None) -> Optional[np.ndarray]:
        """Rows of several columns interleaved into one ``(total, ...)`` array in one copy, or ``None``.

        ``specs`` lists ``(path, first destination row per record)``; record ``k``'s rows of
        that column go to rows ``first[k]:first[k] + count``. ``blank`` (first row, row count per
        record) names rows to leave zero. Possible when every column named is memory-mapped with
        one dtype and row width in each shard touched. A sequential batch copies each column's
        slice into place; one column stored as one extent is one typed ``np.take``; otherwise
        each destination row's byte address in the file is computed and one fancy index copies
        them all (into a new array: ``np.take(..., out=)`` would first copy the byte-strided view).
        """
        parts = self._parts()
        if not parts:
            return None
        for k, _ in parts:
            columns = [self.shards[k].mapped.get(path) for path, _ in specs]
            if any(c is None for c in columns) or len({(c.dtype, c.shape[1:]) for c in columns}) != 1 \
                    or columns[0].row_bytes == 0:
                return None
        column = self.shards[parts[0][0]].mapped[specs[0][0]]
        shape = (total, *column.shape[1:])
        blank_rows = None if blank is None else expand(*blank)
        if blank_rows is not None and blank_rows.size and \
                any(self.shards[k].mapped[specs[0][0]].shape[0] == 0 for k, _ in parts):
            return None  # blank rows borrow row 0 of the first column until zeroed: there is none
        whole_rows = np.dtype((np.void, column.row_bytes))  # one item per row: faster scatters
        if self.run:  # each column's rows are one slice: copied into place, no addresses needed
            out = np.empty(shape, column.dtype)
            for path, first in specs:
                shard, a, b = self._slice(path)
                rows = np.ascontiguousarray(shard.mapped[path][a:b]).view(whole_rows).reshape(b - a)
                out.view(whole_rows).reshape(total)[expand(first, self.counts[layout.TABLE_OF[path]])] = rows
        elif len(parts) == 1 and len(specs) == 1 and column.single_view is not None:
            path, first = specs[0]
            shard = self.shards[parts[0][0]]
            off = shard.offsets[layout.TABLE_OF[path]]
            counts = self.counts[layout.TABLE_OF[path]]
            source = np.zeros(total, np.int64)  # blank rows take row 0, zeroed below
            source[expand(first, counts)] = expand(off[self.local], counts)
            out = np.take(column.single_view, source, axis=0)
        else:
            single = len(parts) == 1
            out = np.empty(shape if not single else (0,), column.dtype)  # one shard: the gather makes it
            for k, positions in parts:
                shard = self.shards[k]
                addresses = np.empty(total if single else 0, np.int64)
                if single and blank_rows is not None and blank_rows.size:
                    addresses[blank_rows] = shard.mapped[specs[0][0]].addresses(np.zeros(1, np.int64))[0]
                dst_all, addr_all = [], []
                for path, first in specs:
                    mapped = shard.mapped[path]
                    off = shard.offsets[layout.TABLE_OF[path]]
                    records = self.local[positions]
                    counts = self.counts[layout.TABLE_OF[path]][positions]
                    dst = expand(first[positions], counts)
                    addr = mapped.addresses(expand(off[records], counts))
                    if single:
                        addresses[dst] = addr
                    else:
                        dst_all.append(dst)
                        addr_all.append(addr)
                view = mapped.file.rows_at_any_byte(mapped.row_bytes)
                if single:
                    out = view[addresses].view(column.dtype).reshape(shape)
                    break
                out.view(whole_rows).reshape(total)[np.concatenate(dst_all)] = view[np.concatenate(addr_all)]
        if blank_rows is not None and blank_rows.size:
            out[blank_rows] = 0
        return out


def epoch_order(count: int, *, shuffle: bool, seed: int, epoch: int, rank: int = 0, world: int = 1) -> np.ndarray:
    """Positions ``0..count-1`` this rank visits in ``epoch``, as ``DistributedSampler`` orders them.

    Shuffled: ``torch.randperm(count)`` from a generator seeded ``seed + epoch`` (torch is
    imported only then). The list is padded by repeating its head to a multiple of ``world``
    and rank ``rank`` takes items ``rank, rank + world, ...``; with ``world == 1`` it is the
    whole permutation (or ``0..count-1`` unshuffled).
    """
    if not 0 <= rank < world:
        raise ValueError(f"rank {rank} is not in 0..{world - 1}")
    if shuffle:
        torch = optional_deps.load("torch", needed_by="shuffled batches")
        generator = torch.Generator()
        generator.manual_seed(int(seed) + int(epoch))
        order = torch.randperm(count, generator=generator).numpy().astype(np.int64)
    else:
        order = np.arange(count, dtype=np.int64)
    total = -(-count // world) * world
    if total > count and count:
        order = np.concatenate([order, np.resize(order, total - count)])
    return order[rank:total:world]
