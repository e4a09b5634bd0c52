"""Model kinds by name, and how to build one from its JSON config (the only way models are made)."""
from __future__ import annotations

from .graph_input import NodeFeatures
from .train_config import DROPOUT, HIDDEN

MODEL_KINDS = ("gcn", "hetero")


def new_model(kind: str, features: NodeFeatures, *, hidden: int = HIDDEN, dropout: float = DROPOUT):
    """A freshly initialised model of ``kind`` for graphs with this feature layout."""
    if kind == "gcn":
        from .gcn import FusedGCN
        return FusedGCN(features.homogeneous_dim, hidden=hidden, dropout=dropout)
    if kind == "hetero":
        from .hetero import HeteroFusedGNN
        return HeteroFusedGNN(features.patch_dim, features.entity_dim, features.num_relations,
                              hidden=hidden, dropout=dropout)
    raise ValueError(f"model kind must be one of {MODEL_KINDS}, not {kind!r}")


def model_from_config(config: dict):
    """Rebuild the (untrained) module described by ``model.config()``."""
    kind = config.get("kind")
    if kind == "gcn":
        from .gcn import FusedGCN
        return FusedGCN(config["in_dim"], hidden=config["hidden"], dropout=config["dropout"])
    if kind == "hetero":
        from .hetero import HeteroFusedGNN
        layers = {"layers": config["layers"]} if "layers" in config else {}  # older runs: the class's default
        return HeteroFusedGNN(config["patch_dim"], config["entity_dim"], config["num_relations"],
                              hidden=config["hidden"], dropout=config["dropout"], **layers)
    raise ValueError(f"model kind must be one of {MODEL_KINDS}, not {kind!r}")
