"""A torch ``Dataset`` over a collection that reads records lazily (imports torch when used).

>>> from torch_geometric.loader import DataLoader                       # doctest: +SKIP
>>> dataset = CollectionDataset("graphs.h5", label="pneumonia")         # doctest: +SKIP
>>> for batch in DataLoader(dataset, batch_size=32, num_workers=2): ...  # doctest: +SKIP

Each item is the homogeneous ``Data`` of :func:`~neural_format.adapters.pyg.record_to_pyg`
(``hetero=True``: the ``HeteroData`` of :func:`~neural_format.adapters.pyg.record_to_pyg_hetero`).
The source is a collection file, or anything :func:`neural_format.open_collection` takes (a
sharded collection directory, its manifest, a list of shard files): a sharded source is served
by one dataset per shard, global index ``i`` going to the shard that holds it. Like PyG's
datasets it has ``num_features``, ``num_classes``, ``index_select``, ``shuffle`` and slicing
(``dataset[10:20]``, ``dataset[[3, 1]]`` give subset views that read the same file).

For training, :class:`~neural_format.adapters.pyg_batches.GraphBatchLoader` is faster: it
builds whole collated batches from the columns instead of one ``Data`` per record.

Worker safety: the dataset pickles without an HDF5 handle; each process opens its own reader (and
memory map) on its first ``__getitem__`` (h5py handles must not cross ``fork``). Speed:
``__getitems__`` (which torch's DataLoader calls with a whole batch of indices) serves a sequential
batch from a read-ahead block built once into block-wide tensors
(:class:`~neural_format.adapters.pyg.BlockGraphs`). Files whose columns are stored unfiltered (the
writer's default) are memory-mapped (``mmap=True``, :mod:`neural_format.internals.mapped_columns`): rows
come straight from the page cache with no HDF5 call, and a shuffled batch gathers the rows it
needs by their byte addresses, one copy per column. Other files are read with one HDF5 read per column and contiguous run of
indices (:func:`~neural_format.files.blocks.read_block`). An item's ``edge_index`` is a view
with the block's row stride, as PyG's ``InMemoryDataset`` hands out.
"""
from __future__ import annotations

import copy
import gc
import os
from typing import Any, Callable, Optional, Protocol

import numpy as np

from ..format import layout
from ..internals import optional_deps
from ..internals.mapped_columns import map_columns
from ..files.reader import CollectionReader
from ..files.blocks import Block, concat_blocks, contiguous_runs, read_block, slice_block, take_block
from .pyg_graphs import BlockGraphs, label_columns, build_block, record_to_pyg_hetero

# a torch Dataset: this module needs torch to be defined at all
torch = optional_deps.load("torch", needed_by="CollectionDataset")
optional_deps.load("torch.utils.data")
_TorchDataset: Any = torch.utils.data.Dataset  # a base class known only at run time (torch is optional)

_PATHS = ("/patches/features", "/patches/positions", "/entities/features", "/patch_edges/index",
          "/relations/index", "/records/bridge", "/records/labels")


class _IdStrings(Protocol):
    """Record IDs by range or position (the reader's ID array, or one over bytes read once)."""

    def range(self, start: int, stop: int) -> list[str]: ...

    def at(self, positions) -> list[str]: ...


class CollectionDataset(_TorchDataset):
    """Records of a collection as PyG graphs, read on demand.

    ``label`` selects label columns by name (``str`` -> ``y`` of shape (1,), list -> (1, L),
    ``None`` -> all). ``label_dtype``, ``dtype``, ``entity_features``, ``pad`` and ``extras``
    are passed to :func:`~neural_format.adapters.pyg.record_to_pyg`, except that entity rows
    default to zeros when the collection stores no entity features and the narrower feature
    block is zero-padded (``node_type`` says which rows are entities), so that the builders'
    output loads as it is; pass ``entity_features="raise"`` / ``pad="raise"`` to refuse such
    files instead. ``transform`` is applied to
    each graph. ``readahead``: when a request is a contiguous run of 8 or more records (a
    sequential DataLoader batch), this many records are read and built at once and the following
    batches are served from that block (0 turns it off). Other requests (shuffled batches) build
    exactly the records asked for. ``preload=True`` reads every column into memory once per
    process (about the file's size per worker) so that shuffled batches cost no file reads.
    ``mmap=True`` (default) maps the file read-only when every column it needs is stored
    unfiltered, and reads rows from the map; a compressed file, or ``mmap=False``, reads through
    HDF5. Do not truncate or rewrite a file while a dataset maps it (see
    :mod:`neural_format.internals.mapped_columns`).
    """

    def __init__(self, path, *, label=None, hetero: bool = False, transform: Optional[Callable] = None,
                 label_dtype=None, dtype=None, entity_features: str = "zeros", pad: str = "zeros",
                 extras: bool = True, readahead: int = 512, preload: bool = False, mmap: bool = True):
        self._subset: Optional[np.ndarray] = None  # a view's global indices (index_select, slicing)
        self._shards: Optional[list] = None         # (starts, per-shard datasets) of a sharded source
        shards = _shard_files(path)
        if shards is not None:
            self._init_sharded(path, shards, label=label, hetero=hetero, transform=transform,
                               label_dtype=label_dtype, dtype=dtype, entity_features=entity_features, pad=pad,
                               extras=extras, readahead=readahead, preload=preload, mmap=mmap)
            return
        self.path = os.fspath(path)
        self.readahead = int(readahead)
        self.preload = bool(preload)
        self.mmap = bool(mmap)
        self._built: Optional[tuple] = None  # (start, stop, BlockGraphs) read ahead
        self._full: Optional[Block] = None
        self._all_ids: Optional[list[str]] = None
        self._id_strings: Optional[_IdStrings] = None
        self._buffers: dict = {}
        with CollectionReader(self.path) as reader:
            self._n = len(reader)
            self.meta = reader.meta
            _check_entity_rows(reader, self.path, entity_features, pad, hetero)
        self.label_names = list(self.meta.label_names)
        self._columns, self._single = label_columns(label, self.label_names, len(self.label_names))
        self.label = label
        self.hetero = hetero
        self.transform = transform
        self.options = dict(label_dtype=label_dtype, dtype=dtype, entity_feature_policy=entity_features,
                            pad=pad, extras=extras)
        self._build_options = dict(self.options, columns=self._columns, single=self._single)
        self._reader: Optional[CollectionReader] = None
        self._pid: Optional[int] = None

    def _init_sharded(self, source, files: list, **options) -> None:
        parts = [CollectionDataset(f, **options) for f in files]
        self.path = source if isinstance(source, (list, tuple)) else os.fspath(source)
        self._shards = parts
        self._starts = np.concatenate([[0], np.cumsum([len(p) for p in parts])]).astype(np.int64)
        self._n = int(self._starts[-1])
        first = parts[0]
        self.meta, self.label_names, self.label = first.meta, first.label_names, first.label
        self._columns, self._single = first._columns, first._single
        self.hetero, self.transform, self.options = first.hetero, first.transform, first.options
        self.readahead, self.preload, self.mmap = first.readahead, first.preload, first.mmap
        self._reader = None
        self._pid = None

    # -- what PyG users reach for ---------------------------------------------------------------
    @property
    def num_features(self) -> int:
        """Width of ``x`` (homogeneous graphs): the patch width, or the wider block when padded."""
        patch, entity = self.meta.patch_feature_dim, self.meta.entity_feature_dim
        return max(patch, entity) if entity and self.options["pad"] == "zeros" else patch

    @property
    def num_node_features(self) -> int:
        return self.num_features

    @property
    def num_classes(self) -> int:
        """2 for one selected label column (binary ``y``), else the number of label columns (multi-label)."""
        return 2 if self._single else len(self._columns)

    def indices(self) -> list[int]:
        """The global record indices this dataset (or subset view) serves, in order."""
        return list(range(self._n)) if self._subset is None else self._subset.tolist()

    def index_select(self, idx) -> "CollectionDataset":
        """A view of the items ``idx`` (a slice, integer sequence or boolean mask), in that order."""
        n = len(self)
        if isinstance(idx, slice):
            positions = np.arange(n)[idx]
        else:
            positions = np.asarray(idx)
            if positions.dtype == bool:
                if positions.shape != (n,):
                    raise IndexError(f"boolean mask of length {positions.shape} for {n} items")
                positions = np.flatnonzero(positions)
            positions = positions.astype(np.int64).reshape(-1)
            if positions.size and (positions.min() < -n or positions.max() >= n):
                raise IndexError(f"index out of range for {n} items")
            positions = np.where(positions < 0, positions + n, positions)
        view = copy.copy(self)
        view._subset = np.asarray(self.indices(), np.int64)[positions] if self._subset is not None else positions
        return view

    def shuffle(self, seed: Optional[int] = None, return_perm: bool = False):
        """A view in a random order (``torch.randperm``, seeded when ``seed`` is given)."""
        generator = None if seed is None else torch.Generator().manual_seed(int(seed))
        perm = torch.randperm(len(self), generator=generator)
        view = self.index_select(perm.numpy())
        return (view, perm) if return_perm else view

    # -- per-process handle ---------------------------------------------------------------
    def _open(self) -> CollectionReader:
        pid = os.getpid()
        if self._reader is None or self._pid != pid:
            # a handle inherited through fork is never used: open our own
            self._reader = CollectionReader(self.path)
            self._pid = pid
            self._built, self._full, self._all_ids, self._id_strings = None, None, None, None
            if self.mmap and not self.preload:
                self._map(self._reader)
        return self._reader

    def _map(self, reader: CollectionReader) -> None:
        """Serve every block from a read-only map of the file, when all columns used allow it."""
        paths = [p for p in _PATHS if p in reader.cols]
        # per-record columns are small (bytes per record) and read one row per record: kept in memory
        in_memory = {p for p in paths if layout.TABLE_OF[p] == "records"}
        wanted = [reader.cols[p] for p in paths if p not in in_memory]
        mapped = map_columns(self.path, wanted)
        if any(column is None for column in mapped.values()):
            return  # some column is compressed or otherwise not stored as plain bytes: read through HDF5
        columns = {p: reader.cols[p][()] if p in in_memory else mapped[p] for p in paths}
        self._full = Block(0, self._n, {t: off - off[0] for t, off in reader.offsets.items()}, columns)
        if self.options["extras"]:  # record IDs too are bytes per record: one read, then no file access
            self._id_strings = reader.ids.over(bytes(reader.ids.data[()]))

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_reader"] = None
        state["_pid"] = None
        state["_built"] = None
        state["_full"] = None
        state["_all_ids"] = None
        state["_id_strings"] = None
        state["_buffers"] = {}
        return state

    def close(self) -> None:
        if self._shards is not None:
            for part in self._shards:
                part.close()
            return
        self._built, self._full, self._all_ids, self._id_strings = None, None, None, None
        if self._reader is not None and self._pid == os.getpid():
            self._reader.close()
        self._reader = None

    # -- sequence -------------------------------------------------------------------------
    def __len__(self) -> int:
        return self._n if self._subset is None else int(self._subset.size)

    def _index(self, i) -> int:
        i = int(i)
        if i < 0:
            i += self._n
        if not 0 <= i < self._n:
            raise IndexError(f"record index {i} out of range for {self._n} records")
        return i

    def __getitem__(self, i):
        if isinstance(i, slice) or (not isinstance(i, (int, np.integer)) and np.ndim(i) == 1):
            return self.index_select(i)
        return self.__getitems__([i])[0]

    def __getitems__(self, indices) -> list:
        if self._subset is not None:
            n = len(self)
            indices = [int(i) + n if int(i) < 0 else int(i) for i in indices]
            if any(not 0 <= i < n for i in indices):
                raise IndexError(f"index out of range for {n} items")
            indices = self._subset[indices].tolist()
        if self._shards is not None:
            return self._sharded_items(self._shards, indices)
        return self._local_items(indices)

    def _sharded_items(self, shards: list, indices) -> list:
        """Items of a sharded source: each shard's dataset serves its indices, in one call per shard."""
        g = np.asarray([self._index(i) for i in indices], np.int64)
        shard = np.searchsorted(self._starts, g, side="right") - 1
        out: list = [None] * g.size
        for k in np.unique(shard).tolist():
            where = np.flatnonzero(shard == k)
            for position, item in zip(where.tolist(), shards[k].__getitems__((g[where] - self._starts[k]).tolist())):
                out[position] = item
        return out

    def _local_items(self, indices) -> list:
        # no reference cycles are made here; pausing the cyclic GC avoids full passes over every
        # live object while a batch is assembled (see build_block)
        enabled = gc.isenabled()
        gc.disable()
        try:
            out = self._items(indices)
        finally:
            if enabled:
                gc.enable()
        if self.transform is not None:
            out = [self.transform(g) for g in out]
        return out

    def _items(self, indices) -> list:
        indices = list(indices)
        if not (all(type(i) is int for i in indices) and indices and min(indices) >= 0 and max(indices) < self._n):
            indices = [self._index(i) for i in indices]  # the general case: negative, numpy or bad indices
        reader = self._open()
        if self.hetero:
            return [record_to_pyg_hetero(reader[i], label=self.label, label_names=self.label_names,
                                         label_dtype=self.options["label_dtype"], dtype=self.options["dtype"])
                    for i in indices]
        if not indices:
            return []
        first, count = indices[0], len(indices)
        if indices[-1] - first == count - 1 and indices == list(range(first, first + count)):
            return self._run(reader, first, first + count)
        whole = self._whole(reader)
        if whole is not None:  # mapped or preloaded: gather exactly these records, in this order
            return build_block(take_block(whole, indices), self._ids_at(reader, indices), **self._build_options)
        # shuffled indices through HDF5: read each run of neighbours, build all of them in one block
        runs = contiguous_runs(indices)
        block = concat_blocks([self._read(reader, a, b) for a, b in runs])
        ids = [rid for a, b in runs for rid in self._ids(reader, a, b)]
        built = dict(zip([i for a, b in runs for i in range(a, b)], build_block(block, ids, **self._build_options)))
        return [built[i] for i in indices]

    def _run(self, reader: CollectionReader, start: int, stop: int) -> list:
        """Records ``start:stop``; a run of 8 or more (a sequential batch) is served from read-ahead blocks."""
        if stop - start < 8 or self.readahead <= 0:
            block = BlockGraphs(self._read(reader, start, stop), **self._build_options)
            return block.graphs(0, stop - start, self._ids(reader, start, stop))
        out, i = [], start
        while i < stop:
            if self._built is None or not self._built[0] <= i < self._built[1]:
                end = max(stop, min(self._n, i + self.readahead))
                self._built = (i, end, BlockGraphs(self._read(reader, i, end, reuse=True), **self._build_options))
            begin, end, block = self._built
            j = min(stop, end)
            out += block.graphs(i - begin, j - begin, self._ids(reader, i, j))
            i = j
        return out

    def _whole(self, reader: CollectionReader) -> Optional[Block]:
        """Every record as one block when the columns are mapped or preloaded, else ``None``."""
        if self._full is None and self.preload:  # once per process: every column in memory
            self._full = read_block(reader, 0, self._n, _PATHS)
        return self._full

    def _read(self, reader: CollectionReader, start: int, stop: int, *, reuse: bool = False):
        whole = self._whole(reader)
        if whole is not None:
            return slice_block(whole, start, stop)
        # build_block copies everything it keeps, so a block read just before it is built may
        # go into reused arrays
        return read_block(reader, start, stop, _PATHS, buffers=self._buffers if reuse else None)

    def _ids(self, reader: CollectionReader, start: int, stop: int) -> list:
        if not self.options["extras"]:
            return [""] * (stop - start)
        if self.preload:
            if self._all_ids is None:
                self._all_ids = reader.ids.all()
            return self._all_ids[start:stop]
        return (reader.ids if self._id_strings is None else self._id_strings).range(start, stop)

    def _ids_at(self, reader: CollectionReader, order: list) -> list:
        if not self.options["extras"]:
            return [""] * len(order)
        if self.preload:
            return [self._ids(reader, i, i + 1)[0] for i in order]
        return (reader.ids if self._id_strings is None else self._id_strings).at(order)

    def __repr__(self) -> str:
        return f"CollectionDataset({self.path!r}, records={len(self)}, label={self.label!r})"


def _check_entity_rows(reader: CollectionReader, path: str, entity_features: str, pad: str, hetero: bool) -> None:
    """Refuse at once, naming a record, a file whose entity rows the chosen options cannot build."""
    if hetero:
        return
    meta = reader.meta
    counts = np.diff(reader.offsets["entities"])
    if not meta.entity_feature_dim and entity_features != "zeros" and counts.any():
        k = int(np.flatnonzero(counts)[0])
        raise ValueError(f"{path}: record {reader.ids.get(k)!r} (index {k}) has {int(counts[k])} entities but the "
                         "collection stores no entity features; pass entity_features='zeros' to give entity "
                         "nodes zero rows")
    if meta.entity_feature_dim and meta.entity_feature_dim != meta.patch_feature_dim and pad != "zeros":
        raise ValueError(f"{path}: entity feature width {meta.entity_feature_dim} differs from patch width "
                         f"{meta.patch_feature_dim}; pass pad='zeros' to right-pad the narrower block")


def _shard_files(source) -> Optional[list]:
    """The shard files of a sharded source, or ``None`` for one collection file (served directly)."""
    if isinstance(source, (str, os.PathLike)) and os.path.isfile(source) and not os.fspath(source).endswith(".json"):
        return None
    from ..collections.collection import open_collection
    with open_collection(source) as collection:
        files = collection.shard_sources()
        counts = collection.counts
    if any(not isinstance(f, (str, os.PathLike)) or "://" in str(f) for f in files):
        raise ValueError("CollectionDataset reads local files; open remote collections with neural_format.open_collection")
    return [os.fspath(f) for f, c in zip(files, counts) if c] or [os.fspath(files[0])]
