r"""Records <-> PyTorch Geometric graphs (imports torch and torch_geometric when called).

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
from typing import Optional, Sequence, Union

import numpy as np

from ..record import Record

LabelSelector = Union[None, str, int, Sequence[Union[str, int]]]


def _label_columns(select: LabelSelector, label_names: Optional[Sequence[str]], count: int):
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
    import torch
    values = np.asarray(labels, np.float32)[columns]
    if label_dtype is not None and not label_dtype.is_floating_point and np.isnan(values).any():
        raise ValueError("unknown (NaN) label cannot be cast to an integer dtype; use a float label_dtype")
    y = torch.from_numpy(values.copy()).to(label_dtype or torch.float32)
    return y if single else y.reshape(1, -1)


def _entity_block(pf: np.ndarray, ef: Optional[np.ndarray], num_entities: int, entity_features: str, pad: str,
                  record_id: str) -> tuple[np.ndarray, np.ndarray]:
    if ef is None:
        if num_entities and entity_features != "zeros":
            raise ValueError(f"record {record_id!r} has {num_entities} entities but the collection stores no entity "
                             "features; pass entity_features='zeros' to use zero rows")
        ef = np.zeros((num_entities, pf.shape[1]), pf.dtype)
    if ef.shape[1] != pf.shape[1]:
        if pad != "zeros":
            raise ValueError(f"record {record_id!r}: entity feature width {ef.shape[1]} differs from patch width "
                             f"{pf.shape[1]}; pass pad='zeros' to right-pad the narrower block")
        width = max(ef.shape[1], pf.shape[1])
        pf = np.pad(pf, ((0, 0), (0, width - pf.shape[1])))
        ef = np.pad(ef, ((0, 0), (0, width - ef.shape[1])))
    return pf, ef


def data_from_fields(fields: dict):
    """A ``Data`` holding ``fields``, restored the way ``torch.load`` restores a pickled ``Data``.

    ``Data(**fields)`` routes every attribute through several ``__setattr__`` layers (about 15x
    slower for 8 fields). Unpickling instead fills ``Data.__dict__`` and its ``GlobalStorage``'s
    ``__dict__`` (``_mapping`` plus a weak ``_parent``), which is what this does, inline.
    tests/test_adapters_pyg.py checks the result equals ``Data(**fields)`` for every field kind.
    """
    pyg = _PYG.classes
    data = _NEW(pyg[0])
    store = _NEW(pyg[1])
    store.__dict__.update(_mapping=fields, _parent=weakref.ref(data))
    data.__dict__.update(_store=store, _edge_attr_cls=pyg[2], _tensor_attr_cls=pyg[3])
    return data


class _PygClasses:
    """torch_geometric classes, imported on first use (the core must import without torch)."""

    @property
    def classes(self) -> tuple:
        from torch_geometric.data.data import Data, DataEdgeAttr, DataTensorAttr
        from torch_geometric.data.storage import GlobalStorage
        value = (Data, GlobalStorage, DataEdgeAttr, DataTensorAttr)
        type(self).classes = value  # replace the property: later lookups are a class attribute
        return value


_PYG = _PygClasses()
_NEW = object.__new__


def build_block(block, record_ids: Sequence[str], **options) -> list:
    """The homogeneous ``Data`` of every record of a :class:`~neural_format.adapters.blocks.Block`.

    Equal to :func:`build_data` per record, but assembled for the whole block with a few numpy
    scatters; each graph's tensors are views into block-wide tensors (``torch.split``), and each
    graph's ``edge_index`` is a contiguous (2, E) view. The cyclic garbage collector is paused
    meanwhile: the thousands of new objects (which form no cycles) would otherwise trigger full
    collections over every live object, measured as most of the build time on a 10,000-graph pass.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _build_block(block, record_ids, **options)
    finally:
        if enabled:
            gc.enable()


def _build_block(block, record_ids: Sequence[str], *, columns: list[int], single: bool, label_dtype=None,
                 dtype=None, entity_feature_policy: str = "raise", pad: str = "raise", extras: bool = True) -> list:
    import torch
    n = len(block)
    if n == 0:
        return []
    off = block.offsets
    P, M = np.diff(off["patches"]), np.diff(off["entities"])
    EA, ER = np.diff(off["patch_edges"]), np.diff(off["relations"])
    bridge = block.columns["/records/bridge"]
    B = (bridge[:, 0] >= 0).astype(np.int64)
    pf = block.columns["/patches/features"]
    ef = block.columns.get("/entities/features")
    pf, ef = _entity_block(pf, ef, int(M.sum()), entity_feature_policy, pad, record_ids[0] if record_ids else "")
    N = P + M
    xo = np.concatenate([[0], np.cumsum(N)])
    X = np.empty((int(xo[-1]), pf.shape[1]), np.result_type(pf.dtype, ef.dtype))
    # two slice copies per record beat one fancy-index scatter over the block (memcpy per run)
    po, eo_, xs, ps = off["patches"].tolist(), off["entities"].tolist(), xo.tolist(), P.tolist()
    for k in range(n):
        mid = xs[k] + ps[k]
        X[xs[k]:mid] = pf[po[k]:po[k + 1]]
        X[mid:xs[k + 1]] = ef[eo_[k]:eo_[k + 1]]
    x_all = torch.from_numpy(X).to(dtype or torch.float32)
    E = EA + ER + B
    eo = np.concatenate([[0], np.cumsum(E)])
    # record k's edge_index is flat[2*eo[k] : 2*eo[k+1]] laid out as (2, E_k), so views stay contiguous
    flat = np.empty(2 * int(eo[-1]), np.int64)
    base, rec_of_a, rec_of_r = 2 * eo[:-1], np.repeat(np.arange(n), EA), np.repeat(np.arange(n), ER)
    local_a = np.arange(EA.sum()) - np.repeat(off["patch_edges"][:-1], EA)
    dst = base[rec_of_a] + local_a
    pe = block.columns["/patch_edges/index"]
    flat[dst], flat[dst + E[rec_of_a]] = pe[:, 0], pe[:, 1]
    local_r = np.arange(ER.sum()) - np.repeat(off["relations"][:-1], ER) + EA[rec_of_r]
    dst = base[rec_of_r] + local_r
    rel = block.columns["/relations/index"].astype(np.int64) + P[rec_of_r, None]
    flat[dst], flat[dst + E[rec_of_r]] = rel[:, 0], rel[:, 1]
    has = np.flatnonzero(B)
    dst = base[has] + E[has] - 1
    flat[dst], flat[dst + E[has]] = bridge[has, 0], bridge[has, 1] + P[has]
    edge_parts = torch.from_numpy(flat).split((2 * E).tolist())
    x_parts = x_all.split(N.tolist())
    y_all = select_labels(block.columns["/records/labels"][:, columns].reshape(-1), list(range(n * len(columns))),
                          False, label_dtype).reshape(n, len(columns))
    y_parts = y_all.reshape(n, 1).unbind(0) if single else y_all.split(1)  # (1,) or (1, L) each
    if extras:
        node_type = np.zeros(int(xo[-1]), np.int64)
        node_type[np.repeat(xo[:-1] + P - off["entities"][:-1], M) + np.arange(M.sum())] = 1
        nt_parts = torch.from_numpy(node_type).split(N.tolist())
        kind = np.zeros(int(eo[-1]), np.int64)
        kind[np.repeat(eo[:-1] + EA - off["relations"][:-1], ER) + np.arange(ER.sum())] = 1
        kind[eo[1:][has] - 1] = 2
        ek_parts = torch.from_numpy(kind).split(E.tolist())
        pos = block.columns.get("/patches/positions")
        pos_parts = torch.from_numpy(pos.astype(np.int64)).split(P.tolist()) if pos is not None else None
    edges = [part.view(2, -1) for part in edge_parts]
    return _assemble(x_parts, edges, y_parts, ps, nt_parts if extras else None, ek_parts if extras else None,
                     pos_parts if extras else None, record_ids, extras)


def _assemble(x_parts, edges, y_parts, ps, nt_parts, ek_parts, pos_parts, record_ids, extras) -> list:
    if not extras:
        return [data_from_fields({"x": x, "edge_index": e, "y": y}) for x, e, y in zip(x_parts, edges, y_parts)]
    if pos_parts is None:
        return [data_from_fields({"x": x, "edge_index": e, "y": y, "num_patches": p, "node_type": nt,
                                  "edge_kind": ek, "record_id": rid})
                for x, e, y, p, nt, ek, rid in zip(x_parts, edges, y_parts, ps, nt_parts, ek_parts, record_ids)]
    return [data_from_fields({"x": x, "edge_index": e, "y": y, "num_patches": p, "node_type": nt, "edge_kind": ek,
                              "patch_pos": pos, "record_id": rid})
            for x, e, y, p, nt, ek, pos, rid in zip(x_parts, edges, y_parts, ps, nt_parts, ek_parts, pos_parts,
                                                    record_ids)]


def build_data(*, record_id: str, patch_features: np.ndarray, entity_features: Optional[np.ndarray],
               num_entities: int, patch_edges: np.ndarray, relations: np.ndarray, bridge,
               labels: np.ndarray, positions: Optional[np.ndarray], columns: list[int], single: bool,
               label_dtype=None, dtype=None, entity_feature_policy: str = "raise", pad: str = "raise",
               extras: bool = True):
    """The homogeneous ``Data`` from plain arrays (shared by :func:`record_to_pyg` and the dataset)."""
    import torch
    pf, ef = _entity_block(patch_features, entity_features, num_entities, entity_feature_policy, pad, record_id)
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
    columns, single = _label_columns(label, label_names, int(np.asarray(record.labels).shape[0]))
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
    import torch
    from torch_geometric.data import HeteroData
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
    columns, single = _label_columns(label, label_names, int(np.asarray(record.labels).shape[0]))
    data.y = select_labels(record.labels, columns, single, label_dtype)
    data.record_id = record.record_id
    return data


def _graphs_from_pyg(data_list, patch_nodes):
    from ..convert.source_graphs import ArrayTensor, SourceGraphs
    attrs = []
    for data in data_list:
        entry = {}
        for key in data.keys():
            value = data[key]
            if hasattr(value, "detach"):
                value = ArrayTensor(value.detach().cpu().numpy())
            elif isinstance(value, (bool, int, float)):
                pass
            else:
                continue  # strings and other Python objects are not graph tensors
            entry[key] = value
        attrs.append(entry)
    graphs = SourceGraphs(None, "pyg-objects", attrs)
    if patch_nodes is None and attrs and all("num_patches" in a for a in attrs):
        patch_nodes = "num_patches"  # written by record_to_pyg: an explicit count, not a guess
    return graphs, patch_nodes


def record_from_pyg(data, *, record_id: str, patch_nodes: Optional[int] = None, unfused: Optional[str] = None,
                    dtype: str = "float32", label_count: Optional[int] = None) -> Record:
    """A :class:`Record` from a homogeneous ``Data`` in the reference layout.

    The split between patch and entity rows is ``patch_nodes`` when given, else ``data.num_patches``
    when present (as :func:`record_to_pyg` writes it), else the rule of
    :mod:`neural_format.convert.layout_recovery` (``unfused`` for graphs without fusion edge).
    Fields the layout does not hold are absent (scores NaN, types -1, no text or positions).
    """
    from ..convert.driver import _Converter
    graphs, declared = _graphs_from_pyg([data], patch_nodes)
    y = graphs[0].y()
    count = label_count if label_count is not None else (0 if y is None else int(np.asarray(y).size))
    converter = _Converter(graphs, patch_nodes=declared, unfused=unfused,
                           label_names=[f"label_{k}" for k in range(count)], dtype=dtype)
    converter.scan_width()
    record, _, _ = converter.record(graphs[0])
    record.record_id = record_id
    return record


def write_pyg(path, data_list, *, label_names: Sequence[str] = ("label",), patch_nodes=None,
              unfused: Optional[str] = None, dtype: str = "float32", source_name: str = "pyg-objects",
              overwrite: bool = False, skip_invalid: bool = False, compression: Optional[str] = None,
              progress: Optional[bool] = None):
    """Write PyG graphs built elsewhere to a collection file, verified like :func:`convert_pickle`.

    ``patch_nodes`` and ``unfused`` work as in :func:`~neural_format.convert.convert_pickle`;
    graphs that all carry ``num_patches`` use it. Returns the :class:`ConversionReport`.
    """
    from ..convert.driver import convert_graphs
    graphs, patch_nodes = _graphs_from_pyg(list(data_list), patch_nodes)
    return convert_graphs(graphs, path, source_name=source_name, patch_nodes=patch_nodes, unfused=unfused,
                          label_names=label_names, dtype=dtype, overwrite=overwrite, skip_invalid=skip_invalid,
                          compression=compression, progress=progress)
