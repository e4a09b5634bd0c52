r"""Mini-batches of PyG graphs built straight from the columns (imports torch and PyG when used).

>>> loader = GraphBatchLoader("graphs.h5", label="pneumonia", batch_size=32, shuffle=True)  # doctest: +SKIP
>>> for epoch in range(10):                                                                 # doctest: +SKIP
...     loader.set_epoch(epoch)
...     for batch in loader: ...

The columnar layout already stores a batch the way PyG collates it: the patch rows of the
records asked for are rows of one column, their edges rows of another, each record's share
given by the offsets. :class:`PygBatchAssembler` therefore builds a
``torch_geometric.data.Batch`` for a list of records directly from their rows
(:class:`~neural_format.adapters.batch_columns.BatchColumns`): one gather per column per batch
(one copy for ``x``, patch and entity rows interleaved, when the file is memory-mapped), the
node offsets added to the edges, ``batch`` and ``ptr`` and the batch's slice and increment
tables (which ``Batch.get_example`` and ``to_data_list`` use) computed from the counts with a few
numpy operations. No per-record ``Data`` is made. The result is equal, tensor for tensor, dtype
for dtype, and in its slice/increment tables, to what ``torch_geometric.loader.DataLoader``
collates from :func:`~neural_format.adapters.pyg.record_to_pyg` of the same records in the same
order with the same options (``tests/test_adapters_batches.py`` checks this with hypothesis).
:class:`HeteroBatchAssembler` does the same for :func:`record_to_pyg_hetero` (``hetero=True``).

:class:`GraphBatchLoader` hands such batches out for training: over one file, a sharded
collection, or several (a list), optionally a subset (``indices``), in the order of
``DistributedSampler`` (``shuffle``, ``seed``, :meth:`set_epoch`, ``rank``/``world_size``
splitting, padding by repetition), with ``drop_last``. With ``num_workers > 0`` each worker
process opens its own handles and builds whole batches; only batches cross the process boundary
(through torch's shared memory). ``pin_memory`` pins batches when a CUDA device is present.
``x`` keeps the file's float16 when ``dtype=torch.float16`` is asked for;
:func:`to_device` then moves a batch and upcasts ``x`` on the device.
"""
from __future__ import annotations

import gc
import weakref
from typing import Callable, Optional, Sequence

import numpy as np

from .batch_columns import BatchColumns, CollectionColumns, epoch_order, expand
from .pyg_graphs import label_columns
from ..internals import optional_deps

PATCH_FEATURES, ENTITY_FEATURES = "/patches/features", "/entities/features"


_BATCH_CLASSES: Optional[tuple] = None


def _batch_classes() -> tuple:
    """torch_geometric's ``DataBatch``, ``GlobalStorage`` and attribute classes, imported on first use."""
    global _BATCH_CLASSES
    if _BATCH_CLASSES is None:
        pyg_data = optional_deps.load("torch_geometric.data", needed_by="PyG batches")
        Batch, Data = pyg_data.Batch, pyg_data.Data
        DataEdgeAttr, DataTensorAttr = pyg_data.data.DataEdgeAttr, pyg_data.data.DataTensorAttr
        GlobalStorage = pyg_data.storage.GlobalStorage
        _BATCH_CLASSES = (type(Batch(_base_cls=Data)), GlobalStorage, DataEdgeAttr, DataTensorAttr)
    return _BATCH_CLASSES


_NEW = object.__new__


def new_batch(fields: dict, slices: dict, incs: dict, num_graphs: int):
    """A ``Batch`` holding ``fields`` (in order), with the state ``Batch.from_data_list`` leaves.

    Filled the way unpickling restores one (``Batch(_base_cls=Data)`` costs ~0.2 ms in
    ``inspect`` per call): the ``DataBatch``'s ``__dict__`` and its ``GlobalStorage``'s
    (``_mapping``, a weak ``_parent``, and ``_num_graphs``, ``_slice_dict``, ``_inc_dict``,
    which ``Data.__setattr__`` would put there). The tests compare the result with PyG's own.
    """
    batch_cls, store_cls, edge_attr_cls, tensor_attr_cls = _batch_classes()
    batch, store = _NEW(batch_cls), _NEW(store_cls)
    store.__dict__.update(_mapping=fields, _parent=weakref.ref(batch), _num_graphs=num_graphs,
                          _slice_dict=slices, _inc_dict=incs)
    batch.__dict__.update(_edge_attr_cls=edge_attr_cls, _tensor_attr_cls=tensor_attr_cls, _store=store)
    return batch


def _entity_error(columns: BatchColumns, where: np.ndarray) -> ValueError:
    k = int(where[0])
    return ValueError(f"record {columns.record_id(k)!r} (index {int(columns.indices[k])}) has "
                      f"{int(columns.counts['entities'][k])} entities but the collection stores no entity "
                      "features; pass entity_features='zeros' to give entity nodes zero rows")


class PygBatchAssembler:
    """Builds the collated homogeneous ``Batch`` of :func:`record_to_pyg` from a :class:`BatchColumns`.

    Options as :func:`~neural_format.adapters.pyg.record_to_pyg`: ``label`` (selected against
    ``label_names``), ``label_dtype``, ``dtype``, ``entity_features``, ``pad``, ``extras``.
    Picklable, so that loader workers build batches themselves.
    """

    def __init__(self, *, label_names: Sequence[str], label=None, label_dtype=None, dtype=None,
                 entity_features: str = "raise", pad: str = "raise", extras: bool = True):
        self.columns, self.single = label_columns(label, list(label_names), len(label_names))
        self.label_dtype, self.dtype = label_dtype, dtype
        self.entity_features, self.pad, self.extras = entity_features, pad, bool(extras)

    def __call__(self, columns: BatchColumns):
        enabled = gc.isenabled()
        gc.disable()  # a few dozen new objects, none in a cycle: no collector pass mid-batch
        try:
            return self._assemble(columns)
        finally:
            if enabled:
                gc.enable()

    def _assemble(self, c: BatchColumns):
        torch = optional_deps.load("torch", needed_by="PyG batches")
        n = len(c)
        P, M = c.counts["patches"], c.counts["entities"]
        EA, ER = c.counts["patch_edges"], c.counts["relations"]
        bridge = c.records["/records/bridge"]
        has = bridge[:, 0] >= 0
        N = P + M
        E = EA + ER + has
        total, edges = int(N.sum()), int(E.sum())
        width = self._width(c, M)
        single = self.single
        positions = self.extras and c.has("/patches/positions")
        long = torch.long
        # x: one gather from the file, then a cast only when another dtype is asked for
        x = torch.from_numpy(self._features(c, P, M, total, width)).to(self.dtype or torch.float32)
        # every other tensor of the batch is a view of one buffer: a worker hands two shared-memory
        # storages to the main process instead of one per tensor (each costs a file descriptor)
        shapes = {"edge_index": ((2, edges), long),
                  "y": ((n,) if single else (n, len(self.columns)), self.label_dtype or torch.float32),
                  "xo": ((n + 1,), long), "eo": ((n + 1,), long), "counter": ((n + 1,), long),
                  "zeros": ((n,), long), "inc_edges": ((n,), long), "batch": ((total,), long)}
        if self.extras:
            shapes.update(num_patches=((n,), long), node_type=((total,), long), edge_kind=((edges,), long))
            if positions:
                axes = c.shards[0].reader.cols["/patches/positions"].shape[1]
                shapes.update(po=((n + 1,), long), patch_pos=((int(P.sum()), axes), long))
        t = one_buffer(shapes)
        ei, y, xo, eo = t["edge_index"], t["y"], t["xo"], t["eo"]
        counter, zeros, inc_edges, batch_vector = t["counter"], t["zeros"], t["inc_edges"], t["batch"]

        xo_n, eo_n = xo.numpy(), eo.numpy()
        xo_n[0] = eo_n[0] = 0
        np.cumsum(N, out=xo_n[1:])
        np.cumsum(E, out=eo_n[1:])
        first = xo_n[:-1]

        ei_n = ei.numpy()
        cols_a = expand(eo_n[:-1], EA)
        _scatter_edges(ei_n, cols_a, c.rows("/patch_edges/index"), np.repeat(first, EA))
        cols_r = expand(eo_n[:-1] + EA, ER)
        _scatter_edges(ei_n, cols_r, c.rows("/relations/index"), np.repeat(first + P, ER))
        last = eo_n[1:][has] - 1
        ei_n[0, last] = bridge[has, 0] + first[has]
        ei_n[1, last] = bridge[has, 1] + first[has] + P[has]

        values = np.asarray(c.records["/records/labels"], np.float32)[:, self.columns]
        if not y.is_floating_point() and np.isnan(values).any():
            raise ValueError("unknown (NaN) label cannot be cast to an integer dtype; use a float label_dtype")
        y.copy_(torch.from_numpy(np.ascontiguousarray(values)).reshape(y.shape))

        counter.numpy()[:] = np.arange(n + 1)
        zeros.numpy()[:] = 0
        inc_edges.numpy()[:] = first
        batch_vector.numpy()[:] = np.repeat(np.arange(n), N)
        fields = {"x": x, "edge_index": ei, "y": y}
        slices = {"x": xo, "edge_index": eo, "y": counter}
        incs = {"x": zeros, "edge_index": inc_edges, "y": zeros}
        if self.extras:
            num_patches, node_type, edge_kind = t["num_patches"], t["node_type"], t["edge_kind"]
            num_patches.numpy()[:] = P
            nt = node_type.numpy()
            nt[:] = 0
            nt[expand(first + P, M)] = 1
            kind = edge_kind.numpy()
            kind[:] = 0
            kind[cols_r] = 1
            kind[last] = 2
            fields.update(num_patches=num_patches, node_type=node_type, edge_kind=edge_kind)
            slices.update(num_patches=counter, node_type=xo, edge_kind=eo)
            incs.update(num_patches=zeros, node_type=zeros, edge_kind=zeros)
            if positions:
                po, pos_t = t["po"], t["patch_pos"]
                po_n = po.numpy()
                po_n[0] = 0
                np.cumsum(P, out=po_n[1:])
                pos_t.numpy()[:] = c.rows("/patches/positions")
                fields["patch_pos"] = pos_t
                slices["patch_pos"], incs["patch_pos"] = po, zeros
            fields["record_id"] = c.record_ids()
            slices["record_id"], incs["record_id"] = counter, None
        fields["batch"] = batch_vector
        fields["ptr"] = xo
        return new_batch(fields, slices, incs, n)

    def _width(self, c: BatchColumns, M) -> int:
        """Width of ``x``; raises as :func:`record_to_pyg` would for this batch's records."""
        D = c.shards[0].reader.cols[PATCH_FEATURES].shape[1]
        if not c.has(ENTITY_FEATURES):
            if M.any() and self.entity_features != "zeros":
                raise _entity_error(c, np.flatnonzero(M))
            return D
        De = c.shards[0].reader.cols[ENTITY_FEATURES].shape[1]
        if D != De and self.pad != "zeros":
            raise ValueError(f"entity feature width {De} differs from patch width {D}; "
                             "pass pad='zeros' to right-pad the narrower block")
        return max(D, De)

    def _features(self, c: BatchColumns, P, M, total: int, width: int) -> np.ndarray:
        """``x`` in the file's dtype: each record's patch rows, then its entity rows."""
        first = np.cumsum(P + M) - (P + M)
        stored = c.has(ENTITY_FEATURES)
        specs = [(PATCH_FEATURES, first)] + ([(ENTITY_FEATURES, first + P)] if stored else [])
        # entity rows without stored features are zeros (a width mismatch is handled below)
        X = c.gather_rows(specs, total, None if stored else (first + P, M))  # one copy, when mapped
        if X is not None:
            return X
        pf = c.rows(PATCH_FEATURES)
        ef = c.rows(ENTITY_FEATURES) if stored else None
        X = np.zeros((total, width), pf.dtype if ef is None else np.result_type(pf.dtype, ef.dtype))
        X[expand(first, P), :pf.shape[1]] = pf
        if ef is not None:
            X[expand(first + P, M), :ef.shape[1]] = ef
        return X


def _scatter_edges(ei: np.ndarray, columns: np.ndarray, rows: np.ndarray, shift: np.ndarray) -> None:
    """``ei[:, columns] = rows.T + shift``, one row at a time (half the time of the 2-D scatter)."""
    ei[0, columns] = rows[:, 0] + shift
    ei[1, columns] = rows[:, 1] + shift


_ITEMSIZE: dict = {}


def one_buffer(shapes: dict) -> dict:
    """Tensors of the given ``(shape, dtype)`` as views of one uint8 buffer (64-byte aligned)."""
    torch = optional_deps.load("torch", needed_by="PyG batches")
    layout, size = {}, 0
    for name, (shape, dtype) in shapes.items():
        itemsize = _ITEMSIZE.get(dtype)
        if itemsize is None:
            itemsize = _ITEMSIZE[dtype] = torch.empty((), dtype=dtype).element_size()
        count = 1
        for extent in shape:
            count *= extent
        nbytes = count * itemsize
        layout[name] = (size, nbytes)
        size += -(-nbytes // 64) * 64
    buffer = torch.empty(size, dtype=torch.uint8)
    return {name: buffer[a:a + nbytes].view(shapes[name][1]).view(shapes[name][0])
            for name, (a, nbytes) in layout.items()}


class HeteroBatchAssembler:
    """Builds the collated ``HeteroData`` batch of :func:`record_to_pyg_hetero` from a :class:`BatchColumns`.

    Options as :func:`~neural_format.adapters.pyg.record_to_pyg_hetero` (``label``,
    ``label_dtype``, ``dtype``). Built through PyG's own ``HeteroData`` attribute API (once per
    batch, not per record), then given the slice and increment tables ``Batch.from_data_list``
    computes; equal to PyG's collation (tested like the homogeneous batches).
    """

    def __init__(self, *, label_names: Sequence[str], label=None, label_dtype=None, dtype=None):
        self.columns, self.single = label_columns(label, list(label_names), len(label_names))
        self.label_dtype, self.dtype = label_dtype, dtype

    def __call__(self, c: BatchColumns):
        torch = optional_deps.load("torch", needed_by="PyG batches")
        pyg_data = optional_deps.load("torch_geometric.data", needed_by="PyG batches")
        Batch, HeteroData = pyg_data.Batch, pyg_data.HeteroData

        def long(values):
            return torch.from_numpy(np.ascontiguousarray(values, np.int64))

        def cut(counts):
            out = np.zeros(len(counts) + 1, np.int64)
            np.cumsum(counts, out=out[1:])
            return torch.from_numpy(out)

        n = len(c)
        P, M = c.counts["patches"], c.counts["entities"]
        EA, ER = c.counts["patch_edges"], c.counts["relations"]
        bridge = c.records["/records/bridge"]
        has = ~((bridge[:, 0] < 0) & (bridge[:, 1] < 0))  # Record.bridge is None only when both are
        before_p, before_m = np.cumsum(P) - P, np.cumsum(M) - M
        counter, zeros = torch.arange(n + 1), torch.zeros(n, dtype=torch.long)
        dtype = self.dtype or torch.float32

        batch = Batch(_base_cls=HeteroData)
        values = np.asarray(c.records["/records/labels"], np.float32)[:, self.columns]
        if self.label_dtype is not None and not self.label_dtype.is_floating_point and np.isnan(values).any():
            raise ValueError("unknown (NaN) label cannot be cast to an integer dtype; use a float label_dtype")
        y = torch.from_numpy(np.ascontiguousarray(values)).to(self.label_dtype or torch.float32)
        patch, entity = batch["patch"], batch["entity"]
        patch.x = torch.from_numpy(_owned(c.rows("/patches/features"))).to(dtype)
        patch.score = torch.from_numpy(np.asarray(c.rows("/patches/scores"), np.float32).copy())
        positions = c.has("/patches/positions")
        if positions:
            patch.pos = long(c.rows("/patches/positions"))
        patch._num_nodes, patch.num_nodes = P.tolist(), int(P.sum())
        entity._num_nodes, entity.num_nodes = M.tolist(), int(M.sum())
        features = c.has("/entities/features")
        if features:
            entity.x = torch.from_numpy(_owned(c.rows("/entities/features"))).to(dtype)
        entity.type = long(c.rows("/entities/type"))
        entity.assertion = long(c.rows("/entities/assertion"))
        for store, counts in ((patch, P), (entity, M)):
            store.batch = torch.repeat_interleave(torch.arange(n), torch.from_numpy(counts))
            store.ptr = cut(counts)
        adjacent = batch["patch", "adjacent", "patch"]
        adjacent.edge_index = long(c.rows("/patch_edges/index").T + np.repeat(before_p, EA))
        related = batch["entity", "related", "entity"]
        related.edge_index = long(c.rows("/relations/index").T + np.repeat(before_m, ER))
        related.edge_type = long(c.rows("/relations/type"))
        batch["patch", "bridge", "entity"].edge_index = long(
            np.stack([bridge[has, 0] + before_p[has], bridge[has, 1] + before_m[has]]).reshape(2, -1))
        # the global store's fields come first, as in the graphs (y and record_id were set last
        # there, but PyG collates the global store before the node and edge stores)
        batch.y = y.reshape(n) if self.single else y
        batch.record_id = c.record_ids()

        def incs(src, dst):
            return torch.from_numpy(np.stack([src, dst], 1).reshape(n, 2, 1).astype(np.int64))

        patch_cut, entity_cut = cut(P), cut(M)
        patch_slices = {"x": patch_cut, "score": patch_cut}
        if positions:
            patch_slices["pos"] = patch_cut
        entity_slices = {"x": entity_cut} if features else {}
        entity_slices.update(type=entity_cut, assertion=entity_cut)
        batch._num_graphs = n
        batch._slice_dict = {
            "y": counter, "record_id": counter, "patch": patch_slices, "entity": entity_slices,
            ("patch", "adjacent", "patch"): {"edge_index": cut(EA)},
            ("entity", "related", "entity"): {"edge_index": cut(ER), "edge_type": cut(ER)},
            ("patch", "bridge", "entity"): {"edge_index": cut(has.astype(np.int64))}}
        batch._inc_dict = {
            "y": zeros, "record_id": None, "patch": {k: zeros for k in patch_slices},
            "entity": {k: zeros for k in entity_slices},
            ("patch", "adjacent", "patch"): {"edge_index": incs(before_p, before_p)},
            ("entity", "related", "entity"): {"edge_index": incs(before_m, before_m), "edge_type": zeros},
            ("patch", "bridge", "entity"): {"edge_index": incs(before_p, before_m)}}
        return batch


def _owned(rows: np.ndarray) -> np.ndarray:
    """``rows`` as a writable array of its own: a sequential batch's rows may be a view of the read-only map."""
    return rows if rows.flags.writeable and rows.flags.c_contiguous else np.array(rows)


def to_device(batch, device, dtype=None, non_blocking: bool = True):
    """``batch`` on ``device`` with floating ``x`` cast to ``dtype`` (default float32) there, after the copy.

    A float16 batch thus crosses to the GPU at half the bytes and is upcast by the GPU.
    """
    torch = optional_deps.load("torch", needed_by="PyG batches")
    batch = batch.to(device, non_blocking=non_blocking)
    x = getattr(batch, "x", None)
    target = dtype or torch.float32
    if x is not None and x.is_floating_point() and x.dtype != target:
        batch.x = x.to(target)
    return batch


class _Batches:
    """Map-style dataset whose items are whole batches: ``ds[global indices] -> assemble(gather(...))``."""

    def __init__(self, columns: CollectionColumns, assemble: Callable, transform: Optional[Callable]):
        self.columns, self.assemble, self.transform = columns, assemble, transform

    def __getitem__(self, indices):
        batch = self.assemble(self.columns.gather(indices))
        return batch if self.transform is None else self.transform(batch)

    def __len__(self) -> int:  # torch asks only with an automatic sampler; ours is explicit
        return len(self.columns)


class _EpochSampler:
    """The current epoch's batches of global indices; read anew each time torch iterates it."""

    def __init__(self, loader: "GraphBatchLoader"):
        self.loader = loader

    def __iter__(self):
        return iter(self.loader.batch_indices())

    def __len__(self) -> int:
        return len(self.loader)


class GraphBatchLoader:
    """Collated PyG batches of a collection's records, read from the file (module doc).

    ``sources``: a collection file, directory, manifest, shard list, or a list of collections.
    ``indices``: the global record indices to draw from (default all). Sampling: ``shuffle``,
    ``seed`` and :meth:`set_epoch` as ``DistributedSampler``; ``rank``/``world_size`` (default:
    from ``torch.distributed`` when it is initialised, else 0/1) give each rank its share;
    ``drop_last`` drops the last incomplete batch. ``num_workers``, ``pin_memory``,
    ``persistent_workers``, ``prefetch_factor`` work as in torch's ``DataLoader``. The graph
    options are those of :func:`record_to_pyg`; by default entity rows are zeros when the
    collection stores no entity features and the narrower feature block is zero-padded (both
    flagged by ``node_type``), so builder output loads as is. ``assemble`` replaces the
    :class:`PygBatchAssembler` (a picklable ``BatchColumns -> batch`` callable, e.g. a model's
    input layout); ``transform`` is applied to each batch.
    """

    def __init__(self, sources, *, batch_size: int = 32, shuffle: bool = False, drop_last: bool = False,
                 seed: int = 0, indices=None, num_workers: int = 0, rank: Optional[int] = None,
                 world_size: Optional[int] = None, pin_memory: bool = False, persistent_workers: bool = False,
                 prefetch_factor: Optional[int] = None, label=None, label_dtype=None, dtype=None,
                 entity_features: str = "zeros", pad: str = "zeros", extras: bool = True, mmap: bool = True,
                 assemble: Optional[Callable] = None, transform: Optional[Callable] = None,
                 columns: Optional[CollectionColumns] = None, hetero: bool = False):
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, not {batch_size}")
        # record IDs: a homogeneous batch carries them as an extra, a heterogeneous one always
        self.columns = columns if columns is not None else CollectionColumns(sources, mmap=mmap,
                                                                             extras=extras or hetero)
        self.meta = self.columns.meta
        n = len(self.columns)
        self.indices = np.arange(n, dtype=np.int64) if indices is None else np.asarray(indices, np.int64).reshape(-1)
        if self.indices.size and (self.indices.min() < 0 or self.indices.max() >= n):
            raise IndexError(f"indices must lie in 0..{n - 1}")
        if rank is None or world_size is None:
            rank, world_size = _distributed_rank()
        self.rank, self.world_size = int(rank), int(world_size)
        self.batch_size, self.shuffle, self.drop_last, self.seed = int(batch_size), bool(shuffle), bool(drop_last), int(seed)
        self.epoch = 0
        self.num_workers, self.pin_memory = int(num_workers), bool(pin_memory)
        self.persistent_workers, self.prefetch_factor = bool(persistent_workers), prefetch_factor
        if assemble is None and hetero:
            assemble = HeteroBatchAssembler(label_names=self.meta.label_names, label=label,
                                            label_dtype=label_dtype, dtype=dtype)
        self.assemble = assemble or PygBatchAssembler(
            label_names=self.meta.label_names, label=label, label_dtype=label_dtype, dtype=dtype,
            entity_features=entity_features, pad=pad, extras=extras)
        self.transform = transform
        self._torch_loader = None

    def set_epoch(self, epoch: int) -> None:
        """Use the permutation of ``epoch`` (as ``DistributedSampler.set_epoch``)."""
        self.epoch = int(epoch)

    def rank_indices(self) -> np.ndarray:
        """Global record indices this rank visits this epoch, in order (padding repeats included)."""
        return self.indices[epoch_order(self.indices.size, shuffle=self.shuffle, seed=self.seed, epoch=self.epoch,
                                        rank=self.rank, world=self.world_size)]

    def batch_indices(self) -> list[np.ndarray]:
        mine = self.rank_indices()
        cuts = range(0, mine.size, self.batch_size)
        batches = [mine[a:a + self.batch_size] for a in cuts]
        if self.drop_last and batches and batches[-1].size < self.batch_size:
            batches.pop()
        return batches

    def __len__(self) -> int:
        per_rank = -(-self.indices.size // self.world_size)
        return per_rank // self.batch_size if self.drop_last else -(-per_rank // self.batch_size)

    def labels(self, column: int) -> np.ndarray:
        """Label ``column`` of every record in ``indices`` (float64), for class weights and metrics."""
        return self.columns.labels()[self.indices, column].astype(np.float64)

    def __iter__(self):
        if self.num_workers <= 0:
            return self._in_process()
        loader = self._torch_loader
        if loader is None or not self.persistent_workers:
            torch = optional_deps.load("torch", needed_by="PyG batches")
            optional_deps.load("torch.utils.data")
            options = dict(batch_size=None, sampler=_EpochSampler(self), num_workers=self.num_workers,
                           pin_memory=self.pin_memory and _accelerator(), persistent_workers=self.persistent_workers)
            if self.prefetch_factor is not None:
                options["prefetch_factor"] = self.prefetch_factor
            loader = self._torch_loader = torch.utils.data.DataLoader(
                _Batches(self.columns, self.assemble, self.transform), **options)
        return iter(loader)

    def _in_process(self):
        pin = self.pin_memory and _accelerator()
        source = _Batches(self.columns, self.assemble, self.transform)
        for indices in self.batch_indices():
            batch = source[indices]
            yield batch.pin_memory() if pin else batch

    def close(self) -> None:
        self._torch_loader = None
        self.columns.close()

    def __repr__(self) -> str:
        return (f"GraphBatchLoader({self.columns.sources!r}, records={self.indices.size}, batch_size={self.batch_size}, "
                f"shuffle={self.shuffle}, rank={self.rank}/{self.world_size})")


def _distributed_rank() -> tuple[int, int]:
    dist = optional_deps.load("torch.distributed", needed_by="PyG batches")
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _accelerator() -> bool:
    torch = optional_deps.load("torch", needed_by="PyG batches")
    return torch.cuda.is_available()
