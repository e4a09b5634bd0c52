r"""Records -> PyTorch Geometric graphs (imports torch and torch_geometric when called).

Homogeneous layout (:func:`record_to_pyg`), the one the NEURAL reference MPNN consumes:

* ``x``: patch rows :math:`0..P-1`, then entity rows :math:`P..P+M-1`, one width;
* ``edge_index``: patch adjacency edges, then KG relations shifted by :math:`P`, then the bridge
  :math:`(p, P + e)` as the last column (omitted when the record has none);
* ``y``: the selected label column(s);
* extras (``extras=True``): ``num_patches``, ``node_type`` (0 patch, 1 entity), ``edge_kind``
  (0 adjacency, 1 relation, 2 bridge), ``patch_pos`` (P, A) when the collection has positions,
  and ``record_id``.

Entity rows need entity features of the patch width. When a collection stores none,
``entity_features="zeros"`` uses zero rows; when widths differ, ``pad="zeros"`` right-pads the
narrower block with zeros to the wider width. Both default to raising ``ValueError`` so that a
model never silently sees made-up inputs.
"""
from __future__ import annotations

import gc
import weakref
from functools import cached_property
from typing import TYPE_CHECKING, Optional, Sequence, Union

import numpy as np

from ..internals.populated import populated_empty
from ..files.blocks import DeferredRows, materialised
from ..internals import optional_deps

if TYPE_CHECKING:  # the record calls this adapter (Record.to_pyg): a type, not an import
    from ..format.record import Record

LabelSelector = Union[None, str, int, Sequence[Union[str, int]]]


def label_columns(select: LabelSelector, label_names: Optional[Sequence[str]], count: int):
    """Column indices and whether ``y`` is one value per graph (shape (1,)) or a row (1, L)."""
    names = list(label_names) if label_names is not None else None

    def index(key):
        if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
            if not 0 <= int(key) < count:
                raise ValueError(f"label index {key} out of range for {count} labels")
            return int(key)
        if names is None:
            raise ValueError(f"label {key!r} selected by name needs label_names (the collection's meta.label_names)")
        if key not in names:
            raise ValueError(f"no label named {key!r}; the collection has {names}")
        return names.index(key)

    if select is None:
        return list(range(count)), count == 1
    if isinstance(select, (str, int, np.integer)):
        return [index(select)], True
    return [index(k) for k in select], False


def select_labels(labels: np.ndarray, columns: list[int], single: bool, label_dtype):
    torch = optional_deps.load("torch", needed_by="to_pyg")
    values = np.asarray(labels, np.float32)[columns]
    if label_dtype is not None and not label_dtype.is_floating_point and np.isnan(values).any():
        raise ValueError("unknown (NaN) label cannot be cast to an integer dtype; use a float label_dtype")
    y = torch.from_numpy(values.copy()).to(label_dtype or torch.float32)
    return y if single else y.reshape(1, -1)


def _entity_block(pf: np.ndarray, ef: Optional[np.ndarray], num_entities: int, entity_features: str, pad: str,
                  where: str) -> tuple[np.ndarray, np.ndarray]:
    if ef is None:
        if num_entities and entity_features != "zeros":
            raise ValueError(f"{where}: {num_entities} entities but the collection stores no entity "
                             "features; pass entity_features='zeros' to use zero rows")
        ef = np.zeros((num_entities, pf.shape[1]), pf.dtype)
    if ef.shape[1] != pf.shape[1]:
        if pad != "zeros":
            raise ValueError(f"{where}: entity feature width {ef.shape[1]} differs from patch width "
                             f"{pf.shape[1]}; pass pad='zeros' to right-pad the narrower block")
        width = max(ef.shape[1], pf.shape[1])
        pf = np.pad(pf, ((0, 0), (0, width - pf.shape[1])))
        ef = np.pad(ef, ((0, 0), (0, width - ef.shape[1])))
    return pf, ef


def data_from_fields(fields: dict):
    """A ``Data`` holding ``fields``, restored the way ``torch.load`` restores a pickled ``Data``.

    ``Data(**fields)`` routes every attribute through several ``__setattr__`` layers (~29 us for
    three fields against ~0.7 us here). Unpickling instead fills ``Data.__dict__`` and its ``GlobalStorage``'s
    ``__dict__`` (``_mapping`` plus a weak ``_parent``), which is what this does, inline.
    tests/test_adapters_pyg.py checks the result equals ``Data(**fields)`` for every field kind.
    """
    return _assemble((fields,))[0]


class _PygClasses:
    """torch_geometric classes, imported on first use (the core must import without torch)."""

    @cached_property
    def classes(self) -> tuple:
        pyg_data = optional_deps.load("torch_geometric.data", needed_by="to_pyg")
        Data, DataEdgeAttr, DataTensorAttr = pyg_data.data.Data, pyg_data.data.DataEdgeAttr, pyg_data.data.DataTensorAttr
        GlobalStorage = pyg_data.storage.GlobalStorage
        return (Data, GlobalStorage, DataEdgeAttr, DataTensorAttr)  # cached: later lookups read the instance dict


_PYG = _PygClasses()
_NEW = object.__new__


def build_block(block, record_ids: Sequence[str], **options) -> list:
    """The homogeneous ``Data`` of every record of a :class:`~neural_format.files.blocks.Block`.

    Equal to :func:`build_data` per record; see :class:`BlockGraphs`, which this wraps.
    """
    return BlockGraphs(block, **options).graphs(0, len(block), record_ids)


class BlockGraphs:
    """The graphs of a block, assembled with a few numpy scatters and handed out by sub-range.

    The block's rows become block-wide tensors once (``x`` with each record's patch rows then
    its entity rows, one (2, T) ``edge_index`` whose columns are each record's edges in turn, the
    labels, node types, edge kinds and positions). :meth:`graphs` then cuts records ``a:b`` out
    of them as views (``torch.split``) and wraps each in a ``Data``: a loader that reads ahead
    keeps only these few tensors between batches, not thousands of ``Data`` objects for the
    cyclic GC to traverse. Every array kept is a copy, so the block may be reused afterwards.
    """

    def __init__(self, block, *, columns: list[int], single: bool, label_dtype=None, dtype=None,
                 entity_feature_policy: str = "raise", pad: str = "raise", extras: bool = True):
        torch = optional_deps.load("torch", needed_by="to_pyg")
        enabled = gc.isenabled()
        gc.disable()  # thousands of new objects, none in a reference cycle
        try:
            self._build(torch, block, columns, single, label_dtype, dtype, entity_feature_policy, pad, extras)
        finally:
            if enabled:
                gc.enable()

    def _build(self, torch, block, columns, single, label_dtype, dtype, entity_feature_policy, pad, extras):
        n = self.n = len(block)
        self.extras, self.single = extras, single
        off = block.offsets
        po, eo, ao, ro = off["patches"], off["entities"], off["patch_edges"], off["relations"]
        P, M, EA, ER = po[1:] - po[:-1], eo[1:] - eo[:-1], ao[1:] - ao[:-1], ro[1:] - ro[:-1]
        features = block.columns["/patches/features"], block.columns.get("/entities/features")
        columns_ = {path: materialised(data) for path, data in block.columns.items() if path not in _FEATURES}
        bridge = columns_["/records/bridge"]
        has = np.flatnonzero(bridge[:, 0] >= 0)
        N = P + M
        xo = np.zeros(n + 1, np.int64)
        np.cumsum(N, out=xo[1:])
        # patch row j of record k goes to x row j + xo[k] - po[k]; entity row j to j + xo[k] + P[k] - eo[k]
        patch_dst = np.arange(int(po[-1])) + np.repeat(xo[:-1] - po[:-1], P)
        entity_dst = np.arange(int(eo[-1])) + np.repeat(xo[:-1] + P - eo[:-1], M)
        X = _gathered_x(*features, patch_dst, entity_dst, int(xo[-1]))
        if X is None:
            pf, ef = _entity_block(materialised(features[0]), None if features[1] is None else materialised(features[1]),
                                   int(eo[-1]), entity_feature_policy, pad,
                                   f"records {block.start}..{block.start + n - 1} read together")
            # a read-ahead block's x is ~10 MB: recycled pages skip the first-touch faults of fresh memory
            X = populated_empty((int(xo[-1]), pf.shape[1]), np.result_type(pf.dtype, ef.dtype))
            X[patch_dst] = pf  # one fancy-index scatter per table: ~3x cheaper than slice copies per record
            X[entity_dst] = ef
        self.x = torch.from_numpy(X).to(dtype or torch.float32)
        E = EA + ER
        E[has] += 1
        eo2 = np.zeros(n + 1, np.int64)
        np.cumsum(E, out=eo2[1:])
        # record k's edges are columns eo2[k]:eo2[k+1] of one (2, T) array: adjacency, relations, bridge
        ei = np.empty((2, int(eo2[-1])), np.int64)
        cols_a = np.arange(int(ao[-1])) + np.repeat(eo2[:-1] - ao[:-1], EA)
        ei[:, cols_a] = columns_["/patch_edges/index"].T
        cols_r = np.arange(int(ro[-1])) + np.repeat(eo2[:-1] + EA - ro[:-1], ER)
        ei[:, cols_r] = columns_["/relations/index"].T + np.repeat(P, ER)
        last = eo2[1:][has] - 1
        ei[0, last], ei[1, last] = bridge[has, 0], bridge[has, 1] + P[has]
        # each graph gets a (2, E_k) view with the block's row stride, as PyG's own InMemoryDataset
        # hands out edge_index (a narrow of the collated tensor): one split, no copy per graph
        self.edge = torch.from_numpy(ei)
        y = select_labels(columns_["/records/labels"][:, columns].reshape(-1), list(range(n * len(columns))),
                          False, label_dtype)
        self.y = y.reshape(n, 1) if single else y.reshape(n, 1, len(columns))  # row k: (1,) or (1, L)
        self.xo, self.eo = xo.tolist(), eo2.tolist()
        self.N, self.E = N.tolist(), E.tolist()
        self.P, self.po = P.tolist(), po.tolist()
        self.node_type = self.kind = self.pos = None
        if extras:
            node_type = np.zeros(int(xo[-1]), np.int64)
            node_type[entity_dst] = 1
            kind = np.zeros(int(eo2[-1]), np.int64)
            kind[cols_r] = 1
            kind[eo2[1:][has] - 1] = 2
            self.node_type, self.kind = torch.from_numpy(node_type), torch.from_numpy(kind)
            pos = columns_.get("/patches/positions")
            if pos is not None:
                self.pos = torch.from_numpy(pos.astype(np.int64))

    def graphs(self, a: int, b: int, record_ids: Sequence[str]) -> list:
        """``Data`` of records ``a:b`` of the block (``record_ids`` names those records)."""
        if b <= a:
            return []
        enabled = gc.isenabled()
        gc.disable()
        try:
            return self._graphs(a, b, record_ids)
        finally:
            if enabled:
                gc.enable()

    def _graphs(self, a: int, b: int, record_ids: Sequence[str]) -> list:
        xo, eo = self.xo, self.eo
        N = self.N[a:b]
        xs = self.x[xo[a]:xo[b]].split(N)
        edges = self.edge[:, eo[a]:eo[b]].split(self.E[a:b], 1)
        ys = self.y[a:b].unbind(0)
        node_type, kind = self.node_type, self.kind
        if node_type is None or kind is None:  # set exactly when extras are asked for
            return _assemble({"x": x, "edge_index": e, "y": y} for x, e, y in zip(xs, edges, ys))
        nts, eks = node_type[xo[a]:xo[b]].split(N), kind[eo[a]:eo[b]].split(self.E[a:b])
        ps = self.P[a:b]
        if self.pos is None:
            return _assemble({"x": x, "edge_index": e, "y": y, "num_patches": p, "node_type": nt, "edge_kind": ek,
                              "record_id": rid}
                             for x, e, y, p, nt, ek, rid in zip(xs, edges, ys, ps, nts, eks, record_ids))
        poss = self.pos[self.po[a]:self.po[b]].split(ps)
        return _assemble({"x": x, "edge_index": e, "y": y, "num_patches": p, "node_type": nt, "edge_kind": ek,
                          "patch_pos": q, "record_id": rid}
                         for x, e, y, p, nt, ek, q, rid in zip(xs, edges, ys, ps, nts, eks, poss, record_ids))


_FEATURES = ("/patches/features", "/entities/features")


def _gathered_x(patches, entities, patch_dst, entity_dst, rows: int) -> Optional[np.ndarray]:
    """``x`` of a block gathered straight from a memory-mapped file in one copy, or ``None``.

    Possible when both feature columns are deferred rows of one mapped file with the same dtype
    and width: each ``x`` row's byte address is computed, and one fancy index of the file's
    byte-addressed row view copies them all in order (no intermediate copy of either column).
    """
    if not (isinstance(patches, DeferredRows) and isinstance(entities, DeferredRows)):
        return None
    pc, ec = patches.column, entities.column
    if pc.file is not ec.file or pc.dtype != ec.dtype or pc.shape[1:] != ec.shape[1:] or pc.row_bytes == 0:
        return None
    addresses = np.empty(rows, np.int64)
    addresses[patch_dst] = pc.addresses(patches.row_numbers())
    addresses[entity_dst] = ec.addresses(entities.row_numbers())
    return pc.file.rows_at_any_byte(pc.row_bytes)[addresses].view(pc.dtype).reshape(rows, *pc.shape[1:])


def _assemble(mappings) -> list:
    """A ``Data`` per mapping of fields, restored as :func:`data_from_fields` describes (a loop, no call per graph)."""
    data_cls, store_cls, edge_attr_cls, tensor_attr_cls = _PYG.classes
    ref, new = weakref.ref, _NEW
    out: list = []  # torch_geometric Data objects
    keep = out.append
    for fields in mappings:
        data, store = new(data_cls), new(store_cls)
        # item stores into the fresh __dict__s: 2x cheaper than dict.update with keywords
        attrs = store.__dict__
        attrs["_mapping"] = fields
        attrs["_parent"] = ref(data)
        attrs = data.__dict__
        attrs["_store"] = store
        attrs["_edge_attr_cls"] = edge_attr_cls
        attrs["_tensor_attr_cls"] = tensor_attr_cls
        keep(data)
    return out


def build_data(*, record_id: str, patch_features: np.ndarray, entity_features: Optional[np.ndarray],
               num_entities: int, patch_edges: np.ndarray, relations: np.ndarray, bridge,
               labels: np.ndarray, positions: Optional[np.ndarray], columns: list[int], single: bool,
               label_dtype=None, dtype=None, entity_feature_policy: str = "raise", pad: str = "raise",
               extras: bool = True):
    """The homogeneous ``Data`` from plain arrays (shared by :func:`record_to_pyg` and the dataset)."""
    torch = optional_deps.load("torch", needed_by="to_pyg")
    pf, ef = _entity_block(patch_features, entity_features, num_entities, entity_feature_policy, pad,
                           f"record {record_id!r}")
    p, m = pf.shape[0], ef.shape[0]
    x = torch.from_numpy(np.concatenate([pf, ef]) if m else np.ascontiguousarray(pf))
    x = x.to(dtype or torch.float32)
    has_bridge = bridge is not None and bridge[0] >= 0
    e_adj, e_rel = patch_edges.shape[0], relations.shape[0]
    ei = np.empty((2, e_adj + e_rel + int(has_bridge)), np.int64)
    ei[:, :e_adj] = patch_edges.T
    ei[:, e_adj:e_adj + e_rel] = relations.T
    ei[:, e_adj:e_adj + e_rel] += p
    if has_bridge:
        ei[0, -1], ei[1, -1] = int(bridge[0]), int(bridge[1]) + p
    fields = {"x": x, "edge_index": torch.from_numpy(ei),
              "y": select_labels(labels, columns, single, label_dtype)}
    if extras:
        fields["num_patches"] = p
        node_type = np.zeros(p + m, np.int64)
        node_type[p:] = 1
        fields["node_type"] = torch.from_numpy(node_type)
        kind = np.zeros(ei.shape[1], np.int64)
        kind[e_adj:e_adj + e_rel] = 1
        if has_bridge:
            kind[-1] = 2
        fields["edge_kind"] = torch.from_numpy(kind)
        if positions is not None:
            fields["patch_pos"] = torch.from_numpy(positions.astype(np.int64))
        fields["record_id"] = record_id
    return data_from_fields(fields)


def record_to_pyg(record: Record, *, label: LabelSelector = None, label_names: Optional[Sequence[str]] = None,
                  label_dtype=None, dtype=None, entity_features: str = "raise", pad: str = "raise",
                  extras: bool = True):
    """A homogeneous ``torch_geometric.data.Data`` shaped like the reference MPNN input (module doc).

    ``label`` selects label columns by name (needs ``label_names``) or index; one name gives
    ``y`` of shape (1,), a list gives (1, L), ``None`` gives all labels. ``label_dtype`` defaults
    to float32 (unknown labels are NaN); ``dtype`` is the dtype of ``x`` (default float32).
    """
    columns, single = label_columns(label, label_names, int(np.asarray(record.labels).shape[0]))
    return build_data(
        record_id=record.record_id, patch_features=np.asarray(record.patch_features),
        entity_features=None if record.entity_features is None else np.asarray(record.entity_features),
        num_entities=record.num_entities, patch_edges=np.asarray(record.patch_edges).reshape(-1, 2),
        relations=np.asarray(record.relations).reshape(-1, 2), bridge=record.bridge, labels=record.labels,
        positions=record.patch_positions, columns=columns, single=single, label_dtype=label_dtype, dtype=dtype,
        entity_feature_policy=entity_features, pad=pad, extras=extras)


def record_to_pyg_hetero(record: Record, *, label: LabelSelector = None,
                         label_names: Optional[Sequence[str]] = None, label_dtype=None, dtype=None):
    """A ``HeteroData`` with node types ``patch`` and ``entity`` and three edge types.

    * ``patch``: ``x`` (P, D), ``score`` (P,), ``pos`` (P, A) when present;
    * ``entity``: ``x`` (M, De) when the collection has entity features, ``type`` and
      ``assertion`` codes (M,) (-1 = not recorded), ``num_nodes`` always;
    * ``('patch', 'adjacent', 'patch')``: patch adjacency;
    * ``('entity', 'related', 'entity')``: KG relations with ``edge_type`` (R,) codes into the
      collection's ``relation_types`` vocabulary;
    * ``('patch', 'bridge', 'entity')``: the bridge, zero or one column.

    Use ``torch_geometric.transforms.ToUndirected()`` to add reverse edge types for message passing.
    """
    torch = optional_deps.load("torch", needed_by="to_pyg_hetero")
    HeteroData = optional_deps.load("torch_geometric.data", needed_by="to_pyg_hetero").HeteroData
    data = HeteroData()
    p, m = record.num_patches, record.num_entities
    data["patch"].x = torch.from_numpy(np.asarray(record.patch_features)).to(dtype or torch.float32)
    data["patch"].score = torch.from_numpy(np.asarray(record.patch_scores, np.float32).copy())
    if record.patch_positions is not None:
        data["patch"].pos = torch.from_numpy(np.asarray(record.patch_positions, np.int64))
    data["entity"].num_nodes = m
    if record.entity_features is not None:
        data["entity"].x = torch.from_numpy(np.asarray(record.entity_features)).to(dtype or torch.float32)
    data["entity"].type = torch.from_numpy(np.asarray(record.entity_types, np.int64))
    data["entity"].assertion = torch.from_numpy(np.asarray(record.entity_assertions, np.int64))
    data["patch"].num_nodes = p
    data["patch", "adjacent", "patch"].edge_index = torch.from_numpy(
        np.asarray(record.patch_edges, np.int64).reshape(-1, 2).T.copy())
    rel = data["entity", "related", "entity"]
    rel.edge_index = torch.from_numpy(np.asarray(record.relations, np.int64).reshape(-1, 2).T.copy())
    rel.edge_type = torch.from_numpy(np.asarray(record.relation_types, np.int64))
    bridge = np.zeros((2, 0), np.int64) if record.bridge is None else np.array(record.bridge, np.int64).reshape(2, 1)
    data["patch", "bridge", "entity"].edge_index = torch.from_numpy(bridge)
    columns, single = label_columns(label, label_names, int(np.asarray(record.labels).shape[0]))
    data.y = select_labels(record.labels, columns, single, label_dtype)
    data.record_id = record.record_id
    return data
