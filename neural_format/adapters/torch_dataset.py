"""A torch ``Dataset`` over a collection file that reads records lazily (imports torch when used).

>>> from torch_geometric.loader import DataLoader                       # doctest: +SKIP
>>> dataset = CollectionDataset("graphs.h5", label="pneumonia")         # doctest: +SKIP
>>> for batch in DataLoader(dataset, batch_size=32, num_workers=2): ...  # doctest: +SKIP

Each item is the homogeneous ``Data`` of :func:`~neural_format.adapters.pyg.record_to_pyg`
(``hetero=True``: the ``HeteroData`` of :func:`~neural_format.adapters.pyg.record_to_pyg_hetero`).

Worker safety: the dataset pickles without an HDF5 handle; each process opens its own reader on
its first ``__getitem__`` (h5py handles must not cross ``fork``). Speed: ``__getitems__`` (which
torch's DataLoader calls with a whole batch of indices) groups the indices into contiguous runs
and reads each run with one HDF5 read per column (:func:`~neural_format.adapters.blocks.read_block`),
so a sequential batch costs a handful of reads instead of a handful per record.
"""
from __future__ import annotations

import gc
import os
from typing import Callable, Optional

import torch.utils.data

from ..reader import CollectionReader
from .blocks import concat_blocks, contiguous_runs, read_block, slice_block, take_block
from .pyg import _label_columns, build_block, record_to_pyg_hetero

_PATHS = ("/patches/features", "/patches/positions", "/entities/features", "/patch_edges/index",
          "/relations/index", "/records/bridge", "/records/labels")


class CollectionDataset(torch.utils.data.Dataset):
    """Records of one collection file as PyG graphs, read on demand.

    ``label`` selects label columns by name (``str`` -> ``y`` of shape (1,), list -> (1, L),
    ``None`` -> all). ``label_dtype``, ``dtype``, ``entity_features``, ``pad`` and ``extras``
    are passed to :func:`~neural_format.adapters.pyg.record_to_pyg`. ``transform`` is applied to
    each graph. ``readahead``: when a request is a contiguous run of 8 or more records (a
    sequential DataLoader batch), this many records are read and built at once and the following
    batches are served from that block (0 turns it off). Shorter runs (shuffled batches) are read
    run by run and built together. ``preload=True`` reads every column into memory once per
    process (about the file's size per worker) so that shuffled batches cost no file reads.
    """

    def __init__(self, path, *, label=None, hetero: bool = False, transform: Optional[Callable] = None,
                 label_dtype=None, dtype=None, entity_features: str = "raise", pad: str = "raise",
                 extras: bool = True, readahead: int = 512, preload: bool = False):
        self.path = os.fspath(path)
        self.readahead = int(readahead)
        self.preload = bool(preload)
        self._cached: dict = {}
        self._full = None
        self._all_ids = None
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
        self._reader: Optional[CollectionReader] = None
        self._pid: Optional[int] = None

    # -- per-process handle ---------------------------------------------------------------
    def _open(self) -> CollectionReader:
        pid = os.getpid()
        if self._reader is None or self._pid != pid:
            # a handle inherited through fork is never used: open our own
            self._reader = CollectionReader(self.path)
            self._pid = pid
            self._cached, self._full, self._all_ids = {}, None, None
        return self._reader

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_reader"] = None
        state["_pid"] = None
        state["_cached"] = {}
        state["_full"] = None
        state["_all_ids"] = None
        state["_buffers"] = {}
        return state

    def close(self) -> None:
        self._cached, self._full, self._all_ids = {}, None, None
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
        indices = [self._index(i) for i in indices]
        reader = self._open()
        if self.hetero:
            out = [record_to_pyg_hetero(reader[i], label=self.label, label_names=self.label_names,
                                        label_dtype=self.options["label_dtype"], dtype=self.options["dtype"])
                   for i in indices]
        else:
            built, scattered = {}, []
            for start, stop in contiguous_runs(indices):
                if stop - start >= 8:  # a sequential batch: serve it from a read-ahead block
                    for i in range(start, stop):
                        graph = self._cached.pop(i, None)
                        if graph is None:
                            self._fill(reader, i, stop)
                            graph = self._cached.pop(i)
                        built[i] = graph
                else:
                    scattered.append((start, stop))
            if scattered:  # shuffled indices: read each run, build all of them in one block
                order = [i for a, b in scattered for i in range(a, b)]
                if self.preload:
                    self._read(reader, 0, 0)  # make sure the columns are in memory
                    block = take_block(self._full, order)
                    ids = [self._ids(reader, i, i + 1)[0] for i in order]
                else:
                    block = concat_blocks([self._read(reader, a, b) for a, b in scattered])
                    ids = [rid for a, b in scattered for rid in self._ids(reader, a, b)]
                built.update(zip(order, build_block(block, ids, columns=self._columns, single=self._single,
                                                    **self.options)))
            out = [built[i] for i in indices]
        return out

    def _read(self, reader: CollectionReader, start: int, stop: int, *, reuse: bool = False):
        if not self.preload:
            # build_block copies everything it keeps, so a block read just before it is built may
            # go into reused arrays
            return read_block(reader, start, stop, _PATHS, buffers=self._buffers if reuse else None)
        if self._full is None:  # once per process: every column in memory
            self._full = read_block(reader, 0, self._n, _PATHS)
        return slice_block(self._full, start, stop)

    def _ids(self, reader: CollectionReader, start: int, stop: int) -> list:
        if not self.options["extras"]:
            return [""] * (stop - start)
        if self.preload:
            if self._all_ids is None:
                self._all_ids = reader.ids.all()
            return self._all_ids[start:stop]
        return reader.ids.range(start, stop)

    def _fill(self, reader: CollectionReader, start: int, stop: int) -> None:
        """Build records ``start:stop`` extended to ``readahead`` records, and keep them for the next batches."""
        stop = max(stop, min(self._n, start + self.readahead))
        graphs = build_block(self._read(reader, start, stop, reuse=True), self._ids(reader, start, stop),
                             columns=self._columns, single=self._single, **self.options)
        self._cached = dict(zip(range(start, stop), graphs))

    def __repr__(self) -> str:
        return f"CollectionDataset({self.path!r}, records={self._n}, label={self.label!r})"
