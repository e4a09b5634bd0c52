"""The NEURAL fusion rule: one edge between the most central node of each graph.

For an undirected graph G = (V, E) the betweenness centrality of node v is

    C_B(v) = sum_{s != v != t} sigma_st(v) / sigma_st,

where sigma_st is the number of shortest s-t paths and sigma_st(v) the number of them passing
through v (normalised by networkx by 2 / ((n - 1)(n - 2)) for n > 2). The bridge joins

    p* = argmax_i C_B(i) over the patch graph   and   e* = argmax_k C_B(k) over the entity graph,

with ties (values within a relative 1e-9, so that floating-point noise between symmetric nodes
does not decide) broken by a tie-break rule, recorded as ``provenance.fusion.tie_break``:

* ``"lowest-index"`` - the reference pipeline's rule, the first maximum in node order (for a
  graph without edges, node 0). Kept for compatibility: converted collections and the
  converter's bridge check assume it.
* ``"score-then-relations"`` - the builder's default. At the retention NEURAL uses (2-10 %) most
  kept patches are isolated, every betweenness is 0 and "lowest index" means "top-left kept
  patch", which says nothing. Among the tied patches this rule takes the one with the highest
  attention score S_i (the decoder looked at it most), then the lowest index. Among the tied
  entities it takes a finding over an anatomy / device / modifier (findings are what the image
  shows), then present over uncertain over absent over unrecorded (an absent finding has nothing
  in the image to join), then the one with the most relations (the most described finding:
  its places and modifiers), then the lowest index (the first mentioned).

Edge direction is ignored (relations become undirected edges); isolated nodes count with
centrality 0. An empty side (no patches or no entities) gives no bridge: ``None``.

networkx is imported inside :func:`betweenness_bridge`, so the core SDK does not depend on it.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
from ..internals import optional_deps

TIE_RTOL = 1e-9
LOWEST_INDEX = "lowest-index"
SCORE_THEN_RELATIONS = "score-then-relations"
TIE_BREAKS = (LOWEST_INDEX, SCORE_THEN_RELATIONS)
# assertion codes (neural_format.format.record.ASSERTION_CODES: 0 present, 1 absent, 2 uncertain, -1
# not recorded) -> preference, higher first
_ASSERTION_RANK = {0: 3, 2: 2, 1: 1}


def _check_edges(edges, n: int, name: str) -> np.ndarray:
    edges = np.asarray(edges, dtype=np.int64).reshape(-1, 2) if np.size(edges) else np.zeros((0, 2), np.int64)
    if edges.size and (edges.min() < 0 or edges.max() >= n):
        raise ValueError(f"{name} refer to nodes outside 0..{n - 1}")
    return edges


def centralities(num_nodes: int, edges) -> np.ndarray:
    """Betweenness centrality :math:`C_B(v)` of every node, as networkx normalises it."""
    nx = optional_deps.load("networkx", needed_by="betweenness centrality")
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


def _first_by(tied: np.ndarray, keys: list[np.ndarray]) -> int:
    """The tied node with the largest keys (compared in order), then the lowest index."""
    candidates = np.flatnonzero(tied)
    for key in keys:
        values = key[candidates]
        candidates = candidates[values == values.max()]
    return int(candidates[0])


def most_central_patch(num_patches: int, patch_edges, scores) -> int:
    """The highest-betweenness patch; ties go to the highest score S_i, then the lowest index."""
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if scores.shape != (num_patches,):
        raise ValueError(f"patch scores must have one value per patch ({num_patches}), not {scores.shape}")
    scores = np.where(np.isnan(scores), -np.inf, scores)  # a missing score never wins a tie
    return _first_by(tied_for_most_central(centralities(num_patches, patch_edges)), [scores])


def most_central_entity(num_entities: int, relations, kinds, assertions) -> int:
    """The highest-betweenness entity; ties go to a finding, then present > uncertain > absent >
    not recorded, then the most relations, then the lowest index. ``kinds`` are entity type
    names (``"finding"``, ``"anatomy"``, ...), ``assertions`` assertion codes."""
    kinds, assertions = list(kinds), np.asarray(assertions).reshape(-1)
    if len(kinds) != num_entities or assertions.shape != (num_entities,):
        raise ValueError(f"entity kinds and assertions must have one value per entity ({num_entities})")
    relations = _check_edges(relations, num_entities, "relations")
    degree = np.zeros(num_entities, np.int64)
    for a, b in relations:
        if a != b:
            degree[a] += 1
            degree[b] += 1
    finding = np.array([k == "finding" for k in kinds], np.int64)
    rank = np.array([_ASSERTION_RANK.get(int(c), 0) for c in assertions], np.int64)
    return _first_by(tied_for_most_central(centralities(num_entities, relations)), [finding, rank, degree])


def betweenness_bridge(num_patches: int, patch_edges, num_entities: int, relations, *,
                       tie_break: str = LOWEST_INDEX, patch_scores=None, entity_kinds=None,
                       entity_assertions=None) -> Optional[tuple[int, int]]:
    """``(patch_idx, entity_idx)`` of the bridge edge, or None when either side is empty.

    ``tie_break`` is one of :data:`TIE_BREAKS`; ``"score-then-relations"`` needs
    ``patch_scores``, ``entity_kinds`` and ``entity_assertions``."""
    if tie_break not in TIE_BREAKS:
        raise ValueError(f"tie_break must be one of {TIE_BREAKS}, not {tie_break!r}")
    if num_patches <= 0 or num_entities <= 0:
        return None
    if tie_break == LOWEST_INDEX:
        return most_central(int(num_patches), patch_edges), most_central(int(num_entities), relations)
    if patch_scores is None or entity_kinds is None or entity_assertions is None:
        raise ValueError(f"tie_break {tie_break!r} needs patch_scores, entity_kinds and entity_assertions")
    return (most_central_patch(int(num_patches), patch_edges, patch_scores),
            most_central_entity(int(num_entities), relations, entity_kinds, entity_assertions))


def record_bridge(num_patches: int, patch_edges, patch_scores, relations, entity_type_codes,
                  entity_assertions, entity_type_names, tie_break: str = LOWEST_INDEX) -> Optional[tuple[int, int]]:
    """:func:`betweenness_bridge` from record columns: entity types as codes into the collection's
    ``entity_type_names`` vocabulary (a code outside it is no finding)."""
    codes = np.asarray(entity_type_codes).reshape(-1)
    names = list(entity_type_names)
    kinds = [names[c] if 0 <= c < len(names) else "" for c in codes.tolist()]
    return betweenness_bridge(int(num_patches), patch_edges, len(kinds), relations, tie_break=tie_break,
                              patch_scores=patch_scores, entity_kinds=kinds, entity_assertions=entity_assertions)
