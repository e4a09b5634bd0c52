"""Grid adjacency vs a brute-force reference, the visual graph, and the betweenness bridge."""
import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from neural_builders.visual_graph import build_visual_graph
from neural_format.graphs.fusion import (betweenness_bridge, most_central, most_central_entity, most_central_patch,
                                   record_bridge)
from neural_format.graphs.grid import grid_adjacency, neighbour_offsets
from neural_format.collections.synthetic import grid_edges

try:  # the independent betweenness oracle; the core-only pass (.ci/test_core_minimum.sh) runs without it
    import networkx as nx
except ImportError:
    nx = None
needs_networkx = pytest.mark.skipif(nx is None, reason="networkx (torch/builders extra) is not installed")

RULES = {"4-neighbour": (2, 1), "8-neighbour": (2, 2), "6-neighbour": (3, 1), "26-neighbour": (3, 3)}


def brute_force(positions, rule):
    axes, max_l1 = RULES[rule]
    out = []
    for i, j in itertools.permutations(range(len(positions)), 2):
        d = np.abs(np.asarray(positions[i]) - np.asarray(positions[j]))
        if d.max() == 1 and d.sum() <= max_l1:
            out.append((i, j))
    return sorted(out)


@st.composite
def position_sets(draw):
    rule = draw(st.sampled_from(sorted(RULES)))
    axes = RULES[rule][0]
    extent = draw(st.integers(1, 6))
    offset = draw(st.integers(-50, 50))
    cells = list(itertools.product(range(extent), repeat=axes))
    chosen = draw(st.lists(st.sampled_from(cells), unique=True, max_size=min(len(cells), 40)))
    return rule, np.asarray(chosen, np.int64).reshape(-1, axes) + offset


@settings(max_examples=150, deadline=None)
@given(position_sets())
def test_grid_adjacency_matches_brute_force(case):
    rule, positions = case
    edges = grid_adjacency(positions, rule)
    assert edges.dtype == np.int32 and edges.shape[1] == 2
    assert [tuple(e) for e in edges.tolist()] == brute_force(positions.tolist(), rule)  # sorted, both directions


def test_offsets_and_errors():
    assert [len(neighbour_offsets(r)) for r in RULES] == [4, 8, 6, 26]
    with pytest.raises(ValueError):
        grid_adjacency(np.zeros((2, 3), np.int32), "4-neighbour")
    with pytest.raises(ValueError):
        grid_adjacency(np.array([[1, 1], [1, 1]]), "4-neighbour")
    with pytest.raises(ValueError):
        grid_adjacency(np.array([[1, 1]]), "hexagonal")
    with pytest.raises(ValueError):
        grid_adjacency(np.array([[0.5, 1.0]]), "4-neighbour")
    assert grid_adjacency(np.zeros((0, 2), np.int32), "4-neighbour").shape == (0, 2)


def test_synthetic_grid_edges_uses_core_rule():
    positions = np.array([[0, 0], [0, 1], [1, 1], [3, 3]], np.int32)
    np.testing.assert_array_equal(grid_edges(positions), grid_adjacency(positions, "4-neighbour"))


def test_large_grid_is_vectorised_and_counts_are_right():
    positions = np.stack(np.unravel_index(np.arange(96 * 96), (96, 96)), 1)
    # a full a x b grid has 2 * (a (b-1) + (a-1) b) directed 4-neighbour edges
    assert len(grid_adjacency(positions, "4-neighbour")) == 2 * 2 * 96 * 95
    assert len(grid_adjacency(positions, "8-neighbour")) == 2 * (2 * 96 * 95 + 2 * 95 * 95)


def test_visual_graph_from_token_indices():
    positions, edges = build_visual_graph([9, 1, 0, 8], (7, 8), "4-neighbour")
    assert positions.tolist() == [[1, 1], [0, 1], [0, 0], [1, 0]]  # caller's order kept
    assert sorted(map(tuple, edges.tolist())) == [(0, 1), (0, 3), (1, 0), (1, 2), (2, 1), (2, 3), (3, 0), (3, 2)]
    volume_positions, volume_edges = build_visual_graph([0, 12, 24, 35], (3, 3, 4), "6-neighbour")
    assert volume_positions.tolist() == [[0, 0, 0], [1, 0, 0], [2, 0, 0], [2, 2, 3]]
    assert sorted(map(tuple, volume_edges.tolist())) == [(0, 1), (1, 0), (1, 2), (2, 1)]
    for bad in ([56], [-1], [3, 3]):
        with pytest.raises(ValueError):
            build_visual_graph(bad, (7, 8))
    with pytest.raises(ValueError):
        build_visual_graph([0], (7, 8), "6-neighbour")


# -- betweenness bridge -----------------------------------------------------------------------
def test_bridge_picks_the_centre_of_each_graph():
    path = [(0, 1), (1, 2), (2, 3), (3, 4)]          # centre of a 5-path is node 2
    star = [(3, 0), (3, 1), (3, 2)]                  # hub 3
    assert betweenness_bridge(5, path, 4, star) == (2, 3)


def test_bridge_ties_break_to_the_lowest_index():
    cycle = [(0, 1), (1, 2), (2, 3), (3, 0)]         # all nodes equally central
    four_path = [(0, 1), (1, 2), (2, 3)]             # nodes 1 and 2 tie
    assert betweenness_bridge(4, cycle, 4, four_path) == (0, 1)
    reversed_path = [(3, 2), (2, 1), (1, 0)]
    assert most_central(4, reversed_path) == 1
    assert betweenness_bridge(3, np.zeros((0, 2)), 2, []) == (0, 0)  # no edges: every node is 0


def test_bridge_empty_sides_and_bad_edges():
    assert betweenness_bridge(0, [], 3, [(0, 1)]) is None
    assert betweenness_bridge(4, [(0, 1)], 0, []) is None
    with pytest.raises(ValueError):
        betweenness_bridge(2, [(0, 5)], 1, [])


@needs_networkx
@settings(max_examples=60, deadline=None)
@given(st.integers(1, 12), st.lists(st.tuples(st.integers(0, 11), st.integers(0, 11)), max_size=30))
def test_bridge_agrees_with_networkx_argmax(n, pairs):
    edges = [(a % n, b % n) for a, b in pairs]
    graph = nx.Graph()
    graph.add_nodes_from(range(n))
    graph.add_edges_from(e for e in edges if e[0] != e[1])
    values = nx.betweenness_centrality(graph)
    best = max(values.values())
    expected = min(k for k, v in values.items() if v >= best - 1e-9 * max(best, 1.0))
    assert most_central(n, edges) == expected


# -- the "score-then-relations" tie-break (issue 19) -------------------------------------------
def test_tied_patches_go_to_the_highest_attention_score():
    # isolated patches (the usual case at 2-10 % retention): every betweenness is 0
    scores = np.array([0.1, 0.7, 0.3, 0.7], np.float32)
    assert most_central_patch(4, [], scores) == 1                   # highest S_i, then lowest index
    assert most_central_patch(4, [], [0.1, 0.2, float("nan"), 0.5]) == 3  # NaN never wins
    # a strictly more central patch still wins over a higher score
    assert most_central_patch(5, [(0, 1), (1, 2)], [0.0, 0.1, 0.0, 0.9, 0.9]) == 1
    with pytest.raises(ValueError):
        most_central_patch(3, [], [0.1, 0.2])


def test_tied_entities_go_to_present_findings_with_most_relations():
    P, A, U = 0, 1, 2  # assertion codes
    # modifier 0 -> finding 1 (absent); anatomy 2; finding 3 (present) -> anatomy 2; modifier 4 -> finding 3
    kinds = ["modifier", "finding", "anatomy", "finding", "modifier"]
    relations = [(0, 1), (3, 2), (4, 3)]   # a path 2-3-4 makes 3 the most central anyway
    assert most_central_entity(5, relations, kinds, [P, A, P, P, P]) == 3
    # no relations at all: every betweenness is 0; a present finding beats an absent one and non-findings
    assert most_central_entity(4, [], ["anatomy", "finding", "finding", "modifier"], [P, A, P, P]) == 2
    # uncertain beats absent; among equals the one with more relations, then the first
    kinds = ["finding", "finding", "finding", "anatomy", "anatomy"]
    assert most_central_entity(3, [], kinds[:3], [A, U, U]) == 1
    # two disjoint edges: all betweenness 0; findings 0 and 2 have one relation each -> the first
    assert most_central_entity(5, [(0, 3), (2, 4)], kinds, [U, A, U, P, P]) == 0
    assert most_central_entity(5, [(2, 3), (2, 4)], kinds, [U, A, U, P, P]) == 2  # star centre anyway
    assert most_central_entity(2, [], ["finding", "finding"], [-1, A]) == 1   # absent > not recorded


def test_bridge_tie_break_rules_and_record_columns():
    scores = [0.2, 0.9, 0.5]
    kinds = ["anatomy", "finding"]
    # the reference rule ignores scores and kinds
    assert betweenness_bridge(3, [], 2, [], patch_scores=scores, entity_kinds=kinds, entity_assertions=[0, 0]) == (0, 0)
    assert betweenness_bridge(3, [], 2, [], tie_break="score-then-relations", patch_scores=scores,
                              entity_kinds=kinds, entity_assertions=[0, 0]) == (1, 1)
    with pytest.raises(ValueError):
        betweenness_bridge(3, [], 2, [], tie_break="score-then-relations")     # needs the columns
    with pytest.raises(ValueError):
        betweenness_bridge(3, [], 2, [], tie_break="highest-degree")
    # entity types as codes into the collection's vocabulary; an unknown code is no finding
    vocab = ["finding", "anatomy", "device", "modifier"]
    assert record_bridge(3, [], scores, np.zeros((0, 2)), np.array([1, -1, 0], np.int16), np.array([0, 0, 0], np.int8),
                         vocab, "score-then-relations") == (1, 2)
    assert record_bridge(3, [], scores, np.zeros((0, 2)), [1, -1, 0], [0, 0, 0], vocab) == (0, 0)
    assert record_bridge(0, [], [], [], [0], [0], vocab, "score-then-relations") is None


@needs_networkx
@settings(max_examples=60, deadline=None)
@given(st.integers(1, 10), st.lists(st.tuples(st.integers(0, 9), st.integers(0, 9)), max_size=20),
       st.lists(st.integers(0, 3), min_size=10, max_size=10), st.lists(st.integers(-1, 2), min_size=10, max_size=10),
       st.lists(st.sampled_from(["finding", "anatomy", "modifier"]), min_size=10, max_size=10))
def test_score_then_relations_agrees_with_a_sorted_reference(n, pairs, scores, assertions, kinds):
    edges = [(a % n, b % n) for a, b in pairs]
    graph = nx.Graph()
    graph.add_nodes_from(range(n))
    graph.add_edges_from(e for e in edges if e[0] != e[1])
    values = nx.betweenness_centrality(graph)
    best = max(values.values())
    tied = [k for k, v in values.items() if v >= best - 1e-9 * max(best, 1.0)]
    scores = np.asarray(scores[:n], np.float32)  # small integers: many equal scores
    assert most_central_patch(n, edges, scores) == min(tied, key=lambda k: (-scores[k], k))
    degree = [sum((a == k) + (b == k) for a, b in edges if a != b) for k in range(n)]
    rank = {0: 3, 2: 2, 1: 1, -1: 0}
    expected = min(tied, key=lambda k: (kinds[k] != "finding", -rank[assertions[k]], -degree[k], k))
    assert most_central_entity(n, edges, kinds[:n], assertions[:n]) == expected
