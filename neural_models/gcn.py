"""The reference fused MPNN: two GCN layers, global mean pooling, a linear head.

For one graph with node features ``X`` (patch rows then entity rows), adjacency ``A`` (patch
adjacency, KG relations and the bridge edge, undirected) and ``Â = A + I`` with degree matrix
``D̂``, each layer is the graph convolution of Kipf & Welling (2017):

    H1 = ReLU( D̂^{-1/2} Â D̂^{-1/2} X  W1 + b1 )
    H2 = ReLU( D̂^{-1/2} Â D̂^{-1/2} H1 W2 + b2 )

The graph is read out by the mean of its node states and a linear layer gives one logit:

    z = (1/|V|) sum_{v in V} H2[v]          (zero for a graph with no nodes)
    logit = w^T z + c,    P(label = 1) = sigmoid(logit)

Dropout (rate ``dropout``) acts on ``H1`` and ``H2`` in training only.
"""
from __future__ import annotations

from .train_config import DROPOUT, HIDDEN
from . import optional_deps

optional_deps.require("torch", "torch_geometric", needed_by="FusedGCN")
import torch  # noqa: E402 (after the NF-E-EXTRA check above)
from torch import nn  # noqa: E402 (after the NF-E-EXTRA check above)
from torch_geometric.nn import GCNConv, global_mean_pool  # noqa: E402 (after the NF-E-EXTRA check above)


class FusedGCN(nn.Module):
    """``FusedGCN(in_dim, hidden)(data) -> logits`` of shape ``(num_graphs,)``."""

    kind = "gcn"

    def __init__(self, in_dim: int, hidden: int = HIDDEN, dropout: float = DROPOUT):
        super().__init__()
        self.in_dim, self.hidden, self.dropout = int(in_dim), int(hidden), float(dropout)
        self.conv1 = GCNConv(self.in_dim, self.hidden)
        self.conv2 = GCNConv(self.hidden, self.hidden)
        self.head = nn.Linear(self.hidden, 1)

    def config(self) -> dict:
        return {"kind": self.kind, "in_dim": self.in_dim, "hidden": self.hidden, "dropout": self.dropout}

    def forward(self, data) -> torch.Tensor:
        x, edge_index = data.x, data.edge_index
        num_graphs = int(data.num_graphs) if hasattr(data, "num_graphs") else 1
        batch = data.batch if getattr(data, "batch", None) is not None else \
            torch.zeros(x.shape[0], dtype=torch.long, device=x.device)
        h = torch.relu(self.conv1(x, edge_index))
        h = nn.functional.dropout(h, self.dropout, self.training)
        h = torch.relu(self.conv2(h, edge_index))
        h = nn.functional.dropout(h, self.dropout, self.training)
        pooled = global_mean_pool(h, batch, size=num_graphs)
        return self.head(pooled).squeeze(-1)
