"""A torch ``Dataset`` over a collection file that reads records lazily (imports torch when used).

>>> from torch_geometric.loader import DataLoader                       # doctest: +SKIP
>>> dataset = CollectionDataset("graphs.h5", label="pneumonia")         # doctest: +SKIP
>>> for batch in DataLoader(dataset, batch_size=32, num_workers=2): ...  # doctest: +SKIP

Each item is the homogeneous ``Data`` of :func:`~neural_format.adapters.pyg.record_to_pyg`
(``hetero=True``: the ``HeteroData`` of :func:`~neural_format.adapters.pyg.record_to_pyg_hetero`).

Worker safety: the dataset pickles without an HDF5 handle; each process opens its own reader (and
memory map) on its first ``__getitem__`` (h5py handles must not cross ``fork``). Speed:
``__getitems__`` (which torch's DataLoader calls with a whole batch of indices) serves a sequential
batch from a read-ahead block built once into block-wide tensors
(:class:`~neural_format.adapters.pyg.BlockGraphs`). Files whose columns are stored unfiltered (the
writer's default) are memory-mapped (``mmap=True``, :mod:`neural_format.mapped_columns`): rows
come straight from the page cache with no HDF5 call, and a shuffled batch gathers the rows it
needs by their byte addresses, one copy per column. Other files are read with one HDF5 read per column and contiguous run of
indices (:func:`~neural_format.adapters.blocks.read_block`). An item's ``edge_index`` is a view
with the block's row stride, as PyG's ``InMemoryDataset`` hands out.
"""
from __future__ import annotations

import gc
import os
from typing import Callable, Optional

import torch.utils.data

from .. import layout
from ..mapped_columns import map_columns
from ..reader import CollectionReader
from .blocks import Block, concat_blocks, contiguous_runs, read_block, slice_block, take_block
from .pyg import BlockGraphs, _label_columns, build_block, record_to_pyg_hetero

_TABLE_OF = {c.path: c.table for c in layout.COLUMNS}
_PATHS = ("/patches/features", "/patches/positions", "/entities/features", "/patch_edges/index",
          "/relations/index", "/records/bridge", "/records/labels")


class CollectionDataset(torch.utils.data.Dataset):
    """Records of one collection file as PyG graphs, read on demand.

    ``label`` selects label columns by name (``str`` -> ``y`` of shape (1,), list -> (1, L),
    ``None`` -> all). ``label_dtype``, ``dtype``, ``entity_features``, ``pad`` and ``extras``
    are passed to :func:`~neural_format.adapters.pyg.record_to_pyg`. ``transform`` is applied to
    each graph. ``readahead``: when a request is a contiguous run of 8 or more records (a
    sequential DataLoader batch), this many records are read and built at once and the following
    batches are served from that block (0 turns it off). Other requests (shuffled batches) build
    exactly the records asked for. ``preload=True`` reads every column into memory once per
    process (about the file's size per worker) so that shuffled batches cost no file reads.
    ``mmap=True`` (default) maps the file read-only when every column it needs is stored
    unfiltered, and reads rows from the map; a compressed file, or ``mmap=False``, reads through
    HDF5. Do not truncate or rewrite a file while a dataset maps it (see
    :mod:`neural_format.mapped_columns`).
    """

    def __init__(self, path, *, label=None, hetero: bool = False, transform: Optional[Callable] = None,
                 label_dtype=None, dtype=None, entity_features: str = "raise", pad: str = "raise",
                 extras: bool = True, readahead: int = 512, preload: bool = False, mmap: bool = True):
        self.path = os.fspath(path)
        self.readahead = int(readahead)
        self.preload = bool(preload)
        self.mmap = bool(mmap)
        self._built: Optional[tuple] = None  # (start, stop, BlockGraphs) read ahead
        self._full = None
        self._all_ids = None
        self._id_strings = None
        self._buffers: dict = {}
        with CollectionReader(self.path) as reader:
            self._n = len(reader)
            self.meta = reader.meta
        self.label_names = list(self.meta.label_names)
        self._columns, self._single = _label_columns(label, self.label_names, len(self.label_names))
        self.label = label
        self.hetero = hetero
        self.transform = transform
        self.options = dict(label_dtype=label_dtype, dtype=dtype, entity_feature_policy=entity_features,
                            pad=pad, extras=extras)
        self._build_options = dict(self.options, columns=self._columns, single=self._single)
        self._reader: Optional[CollectionReader] = None
        self._pid: Optional[int] = None

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
        in_memory = {p for p in paths if _TABLE_OF[p] == "records"}
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
        self._built, self._full, self._all_ids, self._id_strings = None, None, None, None
        if self._reader is not None and self._pid == os.getpid():
            self._reader.close()
        self._reader = None

    # -- sequence -------------------------------------------------------------------------
    def __len__(self) -> int:
        return self._n

    def _index(self, i) -> int:
        i = int(i)
        if i < 0:
            i += self._n
        if not 0 <= i < self._n:
            raise IndexError(f"record index {i} out of range for {self._n} records")
        return i

    def __getitem__(self, i):
        return self.__getitems__([i])[0]

    def __getitems__(self, indices) -> list:
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
        return f"CollectionDataset({self.path!r}, records={self._n}, label={self.label!r})"
