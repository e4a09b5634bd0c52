"""The NEURAL fusion rule: one edge between the most central node of each graph.

For an undirected graph G = (V, E) the betweenness centrality of node v is

    C_B(v) = sum_{s != v != t} sigma_st(v) / sigma_st,

where sigma_st is the number of shortest s-t paths and sigma_st(v) the number of them passing
through v (normalised by networkx by 2 / ((n - 1)(n - 2)) for n > 2). The bridge joins

    p* = argmax_i C_B(i) over the patch graph   and   e* = argmax_k C_B(k) over the entity graph,

with ties (values within a relative 1e-9, so that floating-point noise between symmetric nodes
does not decide) broken by the lowest index. Edge direction is ignored (relations become
undirected edges); isolated nodes count with centrality 0, so a graph without edges bridges its
node 0. An empty side (no patches or no entities) gives no bridge: ``None``.

networkx is imported inside :func:`betweenness_bridge`, so the core SDK does not depend on it.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

TIE_RTOL = 1e-9


def _check_edges(edges, n: int, name: str) -> np.ndarray:
    edges = np.asarray(edges, dtype=np.int64).reshape(-1, 2) if np.size(edges) else np.zeros((0, 2), np.int64)
    if edges.size and (edges.min() < 0 or edges.max() >= n):
        raise ValueError(f"{name} refer to nodes outside 0..{n - 1}")
    return edges


def centralities(num_nodes: int, edges) -> np.ndarray:
    """Betweenness centrality :math:`C_B(v)` of every node, as networkx normalises it."""
    import networkx as nx
    edges = _check_edges(edges, num_nodes, "edges")
    graph = nx.Graph()
    graph.add_nodes_from(range(num_nodes))
    graph.add_edges_from((int(a), int(b)) for a, b in edges if a != b)
    centrality = nx.betweenness_centrality(graph)
    return np.array([centrality[i] for i in range(num_nodes)], dtype=np.float64)


def tied_for_most_central(values: np.ndarray) -> np.ndarray:
    """Mask of the nodes whose centrality equals the maximum within :data:`TIE_RTOL`."""
    best = values.max()
    return values >= best - TIE_RTOL * max(abs(best), 1.0)


def most_central(num_nodes: int, edges) -> int:
    """Index of the highest-betweenness node (lowest index among ties); ``num_nodes`` >= 1."""
    return int(np.flatnonzero(tied_for_most_central(centralities(num_nodes, edges)))[0])


def betweenness_bridge(num_patches: int, patch_edges, num_entities: int,
                       relations) -> Optional[tuple[int, int]]:
    """``(patch_idx, entity_idx)`` of the bridge edge, or None when either side is empty."""
    if num_patches <= 0 or num_entities <= 0:
        return None
    return most_central(int(num_patches), patch_edges), most_central(int(num_entities), relations)
