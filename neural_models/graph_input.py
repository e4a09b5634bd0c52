"""How records become model inputs: node features, edges and the binary target.

The graphs come from the SDK's adapters (:meth:`Record.to_pyg` and :meth:`Record.to_pyg_hetero`);
this module decides the node features and makes message passing go both ways.

Node features (one layout per collection, :class:`NodeFeatures`):

* a patch node carries its stored feature vector ``f_i`` (``D`` values);
* an entity node carries ``g_k = [e_k, onehot(type_k), onehot(assertion_k)]`` (``E`` values):
  its stored entity features (``De`` values, none if the collection has none), a one-hot of its
  type over the collection's ``entity_types`` vocabulary plus one slot for "not recorded", and a
  one-hot of present/absent/uncertain/not recorded. Type and assertion are what the KG says
  even when no text embedding is stored, so the text-only model always has an input.

Homogeneous graph (for :class:`~neural_models.gcn.FusedGCN`): the adapter's reference layout,
patch rows then entity rows, the narrower block right-padded with zeros to ``W = max(D, E)``,
plus two columns saying which kind of node a row is: ``[f_i, 0.., 1, 0]`` and ``[g_k, 0.., 0, 1]``
(width ``W + 2``). Edges are the adapter's patch adjacency, KG relations (shifted by ``P``) and
bridge, made undirected (each edge in both directions, duplicates removed).

Heterogeneous graph (for :class:`~neural_models.hetero.HeteroFusedGNN`): the adapter's node
types ``patch`` (x = ``f_i``) and ``entity`` (x = ``g_k``) with edge types
``(patch, adjacent, patch)`` and ``(entity, related, entity)`` (with ``edge_type`` codes into
the relation vocabulary; unknown codes map to one extra slot) made undirected, and
``(patch, bridge, entity)`` plus its reverse ``(entity, bridged_by, patch)``.

Records whose label is unknown (NaN) are not turned into training examples.
"""
from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass

import numpy as np

from neural_format.format.metadata import CollectionMeta
from neural_format.format.record import Record
from . import optional_deps

PATCH_ADJACENCY = ("patch", "adjacent", "patch")
RELATED = ("entity", "related", "entity")
BRIDGE = ("patch", "bridge", "entity")
BRIDGE_REVERSE = ("entity", "bridged_by", "patch")
ASSERTION_SLOTS = 4  # present, absent, uncertain, not recorded


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
        return max(self.patch_dim, self.entity_dim) + 2

    @property
    def num_relations(self) -> int:
        """Relation vocabulary size plus one slot for codes outside it."""
        return len(self.relation_types) + 1

    def check(self, meta: CollectionMeta) -> None:
        """Refuse a collection whose features do not fit this layout."""
        other = NodeFeatures.from_meta(meta)
        if other != self:
            from .errors import FEATURES_MISMATCH, FeatureLayoutError
            differs = [name for name in ("patch_dim", "entity_feature_dim", "entity_types", "relation_types")
                       if getattr(other, name) != getattr(self, name)]
            raise FeatureLayoutError(
                FEATURES_MISMATCH, f"the collection's node features do not fit this model ({', '.join(differs)} "
                "differ); score collections built with the same encoder, entity embedder and vocabularies",
                location="node features", expected={k: getattr(self, k) for k in differs},
                found={k: getattr(other, k) for k in differs})

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
                parts.append(np.asarray(record.entity_features, np.float32).reshape(M, self.entity_feature_dim))
            else:
                parts.append(np.zeros((M, self.entity_feature_dim), np.float32))
        parts.append(np.eye(T + 1, dtype=np.float32)[types].reshape(M, T + 1))
        parts.append(np.eye(ASSERTION_SLOTS, dtype=np.float32)[assertions].reshape(M, ASSERTION_SLOTS))
        return np.concatenate(parts, axis=1)


def label_of(record: Record, label_index: int) -> float:
    return float(record.labels[label_index]) if record.labels.size > label_index else float("nan")


def _with_entity_matrix(record: Record, features: NodeFeatures) -> Record:
    return dataclasses.replace(record, entity_features=features.entity_matrix(record))


def _undirected(edge_index, edge_attr=None):
    """Each edge in both directions, duplicates removed (attributes follow their edge)."""
    torch = optional_deps.load("torch", needed_by="graph inputs")
    coalesce = optional_deps.load("torch_geometric.utils", needed_by="graph inputs").coalesce
    both = torch.cat([edge_index, edge_index.flip(0)], dim=1)
    if edge_attr is None:
        return coalesce(both), None
    attr = torch.cat([edge_attr, edge_attr])
    # coalesce keeps one attribute per duplicate pair; relations of different types between the
    # same two entities are told apart by folding the type into the key first
    key_shift = int(attr.max()) + 1 if attr.numel() else 1
    keyed = torch.stack([both[0] * key_shift + attr, both[1]])
    keyed = coalesce(keyed)
    return torch.stack([keyed[0] // key_shift, keyed[1]]), keyed[0] % key_shift


def to_homogeneous(record: Record, features: NodeFeatures, label_index: int):
    """A ``torch_geometric.data.Data`` (x, edge_index, y) in the layout of the module docstring."""
    torch = optional_deps.load("torch", needed_by="to_homogeneous")
    Data = optional_deps.load("torch_geometric.data", needed_by="to_homogeneous").Data

    base = _with_entity_matrix(record, features).to_pyg(label=label_index, pad="zeros", extras=True)
    width = max(features.patch_dim, features.entity_dim)
    n = base.x.shape[0]
    x = torch.zeros((n, width + 2), dtype=torch.float32)
    x[:, :base.x.shape[1]] = base.x
    x[base.node_type == 0, width] = 1.0
    x[base.node_type == 1, width + 1] = 1.0
    edge_index, _ = _undirected(base.edge_index)
    return Data(x=x, edge_index=edge_index, y=base.y.view(1).to(torch.float32), num_nodes=n)


def to_heterogeneous(record: Record, features: NodeFeatures, label_index: int):
    """A ``torch_geometric.data.HeteroData`` in the layout of the module docstring."""
    torch = optional_deps.load("torch", needed_by="to_heterogeneous")
    HeteroData = optional_deps.load("torch_geometric.data", needed_by="to_heterogeneous").HeteroData

    base = _with_entity_matrix(record, features).to_pyg_hetero(label=label_index)
    data = HeteroData()
    data["patch"].x = base["patch"].x.to(torch.float32)
    data["entity"].x = base["entity"].x.to(torch.float32)
    data[PATCH_ADJACENCY].edge_index, _ = _undirected(base[PATCH_ADJACENCY].edge_index)
    codes = base[RELATED].edge_type.clone()
    codes[(codes < 0) | (codes >= len(features.relation_types))] = len(features.relation_types)
    data[RELATED].edge_index, data[RELATED].edge_type = _undirected(base[RELATED].edge_index, codes)
    bridge = base[BRIDGE].edge_index
    data[BRIDGE].edge_index = bridge
    data[BRIDGE_REVERSE].edge_index = bridge.flip(0)
    data.y = base.y.view(1).to(torch.float32)
    return data


def convert(record: Record, features: NodeFeatures, label_index: int, model_kind: str):
    """The input graph for ``model_kind`` ('gcn' or 'hetero')."""
    if model_kind == "gcn":
        return to_homogeneous(record, features, label_index)
    if model_kind == "hetero":
        return to_heterogeneous(record, features, label_index)
    raise ValueError(f"model kind must be 'gcn' or 'hetero', not {model_kind!r}")
