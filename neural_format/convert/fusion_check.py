"""Check a converted graph's fusion edge against the reference rule.

NEURAL's ``fuse_graphs`` joins node ``argmax`` of betweenness centrality of the visual graph to
that of the KG, each computed by networkx on a graph built as ``add_nodes_from(range(n))`` then
``add_edges_from`` of the stored edge columns in order, and taken with Python's ``max`` over the
centrality dict: among equal values the first node in node order wins; a one-node side is node 0.
:func:`reference_bridge` recomputes exactly that from the patch edge and KG edge columns as the
pickle stores them (same insertion order, so networkx sums in the same order and ties compare the
same floats). networkx is imported here only, so the core SDK does not depend on it.
"""
from __future__ import annotations

import numpy as np
from ..internals import optional_deps


def available() -> bool:
    if not optional_deps.available("networkx"):
        return False
    return True


def _first_most_central(num_nodes: int, edges: np.ndarray) -> int:
    if num_nodes <= 1:
        return 0
    nx = optional_deps.load("networkx", needed_by="the bridge check")
    graph = nx.Graph()
    graph.add_nodes_from(range(num_nodes))
    graph.add_edges_from(edges.tolist())
    centrality = nx.betweenness_centrality(graph)
    return max(centrality, key=centrality.get)


def reference_bridge(num_patches: int, patch_edges: np.ndarray, num_entities: int, kg_edges: np.ndarray) -> tuple[int, int]:
    """(patch row, entity row) the reference rule bridges; ``*_edges`` are (E, 2) in stored column order."""
    return (_first_most_central(num_patches, np.asarray(patch_edges, np.int64).reshape(-1, 2)),
            _first_most_central(num_entities, np.asarray(kg_edges, np.int64).reshape(-1, 2)))
