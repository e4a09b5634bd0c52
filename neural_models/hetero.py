"""The heterogeneous variant: patch and entity nodes, typed edges, pooled per node type.

Node types ``patch`` (features ``x_v``, width ``D``) and ``entity`` (width ``E``) are first
projected to a shared width ``h`` by a linear map per type:  ``h_v^0 = W_{τ(v)} x_v``.

Each of the two layers sums one convolution per edge type ``r = (s, name, t)`` into the nodes
of type ``t`` (PyG ``HeteroConv`` with ``aggr="sum"``):

    h_v^{l+1} = ReLU( sum_{r : t(r) = τ(v)} m_r(h^l)[v] )

* patch adjacency ``(patch, adjacent, patch)`` uses a GCN convolution with self-loops,
  ``m(h)[v] = sum_{u in N(v) ∪ {v}} h_u W / sqrt(d̂_u d̂_v)``;
* KG relations ``(entity, related, entity)`` are typed (``edge_type`` = relation code ``ρ``), so
  they use a relational GCN (Schlichtkrull et al. 2018), one weight per relation type,
  ``m(h)[v] = W_0 h_v + sum_ρ sum_{u in N_ρ(v)} W_ρ h_u / |N_ρ(v)|``;
* the bridge (``(patch, bridge, entity)`` and ``(entity, bridged_by, patch)``) joins two node
  types, so it uses a GraphSAGE convolution,
  ``m_r(h)[v] = W_r^self h_v + W_r^nbr mean_{u in N_r(v)} h_u``
  (the self term keeps nodes that have no bridge edge).

The readout averages each node type separately (a type with no nodes in a graph gives zeros)
and a linear head maps their concatenation to one logit:

    z = [ mean_{v patch} h_v^2 ; mean_{v entity} h_v^2 ],    logit = w^T z + c.
"""
from __future__ import annotations

from .train_config import DROPOUT, HIDDEN
from .graph_input import BRIDGE, BRIDGE_REVERSE, PATCH_ADJACENCY, RELATED
from . import optional_deps

optional_deps.require("torch", "torch_geometric", needed_by="HeteroFusedGNN")
import torch  # noqa: E402 (after the NF-E-EXTRA check above)
from torch import nn  # noqa: E402 (after the NF-E-EXTRA check above)
from torch_geometric.nn import GCNConv, HeteroConv, RGCNConv, SAGEConv, global_mean_pool  # noqa: E402 (after the NF-E-EXTRA check above)

NODE_TYPES = ("patch", "entity")


class HeteroFusedGNN(nn.Module):
    """``HeteroFusedGNN(patch_dim, entity_dim, num_relations)(hetero_batch) -> logits``."""

    kind = "hetero"

    def __init__(self, patch_dim: int, entity_dim: int, num_relations: int, hidden: int = HIDDEN,
                 dropout: float = DROPOUT, layers: int = 2):
        super().__init__()
        self.patch_dim, self.entity_dim, self.hidden = int(patch_dim), int(entity_dim), int(hidden)
        self.dropout, self.layers = float(dropout), int(layers)
        self.num_relations = int(num_relations)
        self.project = nn.ModuleDict({"patch": nn.Linear(self.patch_dim, self.hidden),
                                      "entity": nn.Linear(self.entity_dim, self.hidden)})
        self.convs = nn.ModuleList()
        for _ in range(self.layers):
            convs = {PATCH_ADJACENCY: GCNConv(self.hidden, self.hidden),
                     RELATED: RGCNConv(self.hidden, self.hidden, self.num_relations, aggr="mean")}
            convs[BRIDGE] = SAGEConv((self.hidden, self.hidden), self.hidden)
            convs[BRIDGE_REVERSE] = SAGEConv((self.hidden, self.hidden), self.hidden)
            self.convs.append(HeteroConv(convs, aggr="sum"))
        self.head = nn.Linear(2 * self.hidden, 1)

    def config(self) -> dict:
        return {"kind": self.kind, "patch_dim": self.patch_dim, "entity_dim": self.entity_dim,
                "num_relations": self.num_relations, "hidden": self.hidden,
                "dropout": self.dropout, "layers": self.layers}

    def forward(self, data) -> torch.Tensor:
        num_graphs = int(data.num_graphs) if hasattr(data, "num_graphs") else 1
        h = {t: self.project[t](data[t].x) for t in NODE_TYPES}
        edges = {et: data[et].edge_index for et in data.edge_types}
        relation_codes = {RELATED: data[RELATED].edge_type}
        for conv in self.convs:
            out = conv(h, edges, edge_type_dict=relation_codes)
            # a node type that received no edge type in this batch keeps its previous state
            h = {t: nn.functional.dropout(torch.relu(out.get(t, h[t])), self.dropout, self.training)
                 for t in NODE_TYPES}
        pooled = []
        for t in NODE_TYPES:
            batch = getattr(data[t], "batch", None)
            if batch is None:
                batch = torch.zeros(h[t].shape[0], dtype=torch.long, device=h[t].device)
            pooled.append(global_mean_pool(h[t], batch, size=num_graphs))
        return self.head(torch.cat(pooled, dim=-1)).squeeze(-1)
