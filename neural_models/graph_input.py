"""How records become model inputs: node features, edges and the binary target.

Node features (one spec per collection, :class:`NodeFeatures`):

* a patch node carries its stored feature vector ``f_i`` (``D`` values);
* an entity node carries ``[e_k, onehot(type_k), onehot(assertion_k)]``: its stored entity
  features (``De`` values, none if the collection has none), a one-hot of its type over the
  collection's ``entity_types`` vocabulary plus one slot for "not recorded", and a one-hot of
  present/absent/uncertain/not recorded.

The homogeneous graph (for :class:`~neural_models.gcn.FusedGCN`) stacks patch rows then entity
rows in one matrix of width ``D + E + 2``: ``[f_i, 0, 1, 0]`` for patches and ``[0, g_k, 0, 1]``
for entities (``g_k`` the entity features above, ``E`` their width; the last two columns say
which kind of node a row is). Its edges are the patch adjacency, the KG relations (entity
indices shifted by ``P``) and the bridge, all made undirected.

The heterogeneous graph (for :class:`~neural_models.hetero.HeteroFusedGNN`) keeps node types
``patch`` and ``entity`` apart and has edge types ``(patch, adjacent, patch)``, one
``(entity, <relation type>, entity)`` per relation vocabulary term, ``(patch, bridge, entity)``
and ``(entity, bridged_by, patch)``. Every edge type is present in every graph (possibly with
no edges), so batches always have the same schema.

Records whose label is unknown (NaN) are not turned into training examples.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass

import numpy as np

from neural_format.metadata import CollectionMeta
from neural_format.record import Record

PATCH_ADJACENCY = ("patch", "adjacent", "patch")
BRIDGE = ("patch", "bridge", "entity")
BRIDGE_REVERSE = ("entity", "bridged_by", "patch")
ASSERTION_SLOTS = 4  # present, absent, uncertain, not recorded


def relation_edge_name(term: str) -> str:
    """A relation vocabulary term as an edge-type name usable as a module key."""
    return "rel_" + re.sub(r"[^A-Za-z0-9_]", "_", term)


@dataclass(frozen=True)
class NodeFeatures:
    """The feature layout a model was trained on; saved in the model's JSON config."""
    patch_dim: int
    entity_feature_dim: int
    entity_types: tuple[str, ...]
    relation_types: tuple[str, ...]

    @classmethod
    def from_meta(cls, meta: CollectionMeta) -> "NodeFeatures":
        return cls(meta.patch_feature_dim, meta.entity_feature_dim, tuple(meta.entity_types),
                   tuple(meta.relation_types))

    @classmethod
    def from_dict(cls, data: dict) -> "NodeFeatures":
        return cls(int(data["patch_dim"]), int(data["entity_feature_dim"]), tuple(data["entity_types"]),
                   tuple(data["relation_types"]))

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @property
    def entity_dim(self) -> int:
        return self.entity_feature_dim + len(self.entity_types) + 1 + ASSERTION_SLOTS

    @property
    def homogeneous_dim(self) -> int:
        return self.patch_dim + self.entity_dim + 2

    @property
    def relation_edge_types(self) -> list[tuple[str, str, str]]:
        names = [relation_edge_name(t) for t in self.relation_types] or ["rel_related"]
        return [("entity", name, "entity") for name in dict.fromkeys(names)]

    def check(self, meta: CollectionMeta) -> None:
        """Refuse a collection whose features do not fit this layout."""
        other = NodeFeatures.from_meta(meta)
        if other != self:
            raise ValueError(f"collection features {other} do not match the model's {self}")

    # -- per-node-type feature matrices ------------------------------------------------------
    def patch_matrix(self, record: Record) -> np.ndarray:
        return np.asarray(record.patch_features, np.float32).reshape(-1, self.patch_dim)

    def entity_matrix(self, record: Record) -> np.ndarray:
        M = record.num_entities
        T = len(self.entity_types)
        types = np.asarray(record.entity_types, np.int64)
        types = np.where((types >= 0) & (types < T), types, T)
        assertions = np.asarray(record.entity_assertions, np.int64)
        assertions = np.where((assertions >= 0) & (assertions < 3), assertions, 3)
        parts = []
        if self.entity_feature_dim:
            if record.entity_features is not None:
                parts.append(np.asarray(record.entity_features, np.float32).reshape(M, -1))
            else:
                parts.append(np.zeros((M, self.entity_feature_dim), np.float32))
        parts.append(np.eye(T + 1, dtype=np.float32)[types].reshape(M, T + 1))
        parts.append(np.eye(ASSERTION_SLOTS, dtype=np.float32)[assertions].reshape(M, ASSERTION_SLOTS))
        return np.concatenate(parts, axis=1)


def label_of(record: Record, label_index: int) -> float:
    return float(record.labels[label_index]) if record.labels.size > label_index else float("nan")


def _undirected(edges: np.ndarray) -> np.ndarray:
    edges = np.asarray(edges, np.int64).reshape(-1, 2)
    both = np.concatenate([edges, edges[:, ::-1]], axis=0)
    return np.unique(both, axis=0) if both.size else both


def to_homogeneous(record: Record, features: NodeFeatures, label_index: int):
    """A ``torch_geometric.data.Data`` with patch rows then entity rows (see module docstring)."""
    import torch
    from torch_geometric.data import Data

    P, M = record.num_patches, record.num_entities
    x = np.zeros((P + M, features.homogeneous_dim), np.float32)
    x[:P, :features.patch_dim] = features.patch_matrix(record)
    x[P:, features.patch_dim:features.patch_dim + features.entity_dim] = features.entity_matrix(record)
    x[:P, -2] = 1.0
    x[P:, -1] = 1.0
    parts = [np.asarray(record.patch_edges, np.int64).reshape(-1, 2),
             np.asarray(record.relations, np.int64).reshape(-1, 2) + P]
    if record.bridge is not None:
        parts.append(np.array([[record.bridge[0], P + record.bridge[1]]], np.int64))
    edges = _undirected(np.concatenate(parts, axis=0))
    return Data(x=torch.from_numpy(x), edge_index=torch.from_numpy(np.ascontiguousarray(edges.T)),
                y=torch.tensor([label_of(record, label_index)], dtype=torch.float32),
                num_nodes=P + M)


def to_heterogeneous(record: Record, features: NodeFeatures, label_index: int):
    """A ``torch_geometric.data.HeteroData`` with every edge type of ``features`` present."""
    import torch
    from torch_geometric.data import HeteroData

    data = HeteroData()
    data["patch"].x = torch.from_numpy(features.patch_matrix(record).copy())
    data["entity"].x = torch.from_numpy(features.entity_matrix(record))
    data["patch"].num_nodes = record.num_patches
    data["entity"].num_nodes = record.num_entities

    def put(edge_type, edges):
        data[edge_type].edge_index = torch.from_numpy(np.ascontiguousarray(np.asarray(edges, np.int64).reshape(-1, 2).T))

    put(PATCH_ADJACENCY, _undirected(record.patch_edges))
    relation_names = [relation_edge_name(t) for t in features.relation_types]
    rel = np.asarray(record.relations, np.int64).reshape(-1, 2)
    rtypes = np.asarray(record.relation_types, np.int64)
    for edge_type in features.relation_edge_types:
        chosen = [k for k, t in enumerate(rtypes) if (relation_names[t] if 0 <= t < len(relation_names)
                                                         else "rel_related") == edge_type[1]]
        put(edge_type, _undirected(rel[chosen]))
    bridge = np.array([record.bridge], np.int64) if record.bridge is not None else np.zeros((0, 2), np.int64)
    put(BRIDGE, bridge)
    put(BRIDGE_REVERSE, bridge[:, ::-1])
    data.y = torch.tensor([label_of(record, label_index)], dtype=torch.float32)
    return data


def convert(record: Record, features: NodeFeatures, label_index: int, model_kind: str):
    """The input graph for ``model_kind`` ('gcn' or 'hetero')."""
    if model_kind == "gcn":
        return to_homogeneous(record, features, label_index)
    if model_kind == "hetero":
        return to_heterogeneous(record, features, label_index)
    raise ValueError(f"model kind must be 'gcn' or 'hetero', not {model_kind!r}")
