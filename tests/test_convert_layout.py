"""Layout recovery: each documented case, and a property test against graphs in the reference layout."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from neural_format.convert.layout_recovery import consistent_splits, recover_split
from neural_format.errors import SchemaError


def _both(pairs):
    out = []
    for a, b in pairs:
        out += [(a, b), (b, a)]
    return out


def reference_edges(patch_pairs, kg_pairs, p, fusion=None):
    """edge_index in the reference order: patch edges, KG edges (shifted by p), the fusion edge."""
    cols = _both(patch_pairs) + _both([(a + p, b + p) for a, b in kg_pairs])
    if fusion is not None:
        cols.append((fusion[0], fusion[1] + p))
    return np.asarray(cols, np.int64).reshape(-1, 2).T


def test_fused_graph_unique_split():
    ei = reference_edges([(0, 1), (1, 2)], [(0, 1)], 3, fusion=(1, 0))
    split = recover_split(ei, 5)
    assert (split.patches, split.patch_edges, split.kg_edges, split.fused, split.rule) == (3, 4, 2, True, "fusion-edge")
    assert split.bridge == (1, 0) and not split.bridge_reversed


def test_reversed_fusion_edge_is_flagged():
    ei = reference_edges([(0, 1)], [(0, 1)], 2)
    ei = np.concatenate([ei, [[2], [0]]], axis=1)  # entity 0 -> patch 0
    split = recover_split(ei, 4)
    assert split.patches == 2 and split.bridge == (0, 0) and split.bridge_reversed


def test_isolated_nodes_at_boundary_are_ambiguous():
    # patch 2 and entity 0 touch no edge: the boundary could be after row 2 or row 3 (or row 4 ...)
    ei = reference_edges([(0, 1)], [(1, 2)], 3, fusion=(0, 1))
    with pytest.raises(SchemaError) as err:
        recover_split(ei, 6)
    assert err.value.code == "NF-X001"
    assert "ambiguous" in str(err.value)
    assert recover_split(ei, 6, declared=3).patches == 3
    assert recover_split(ei, 6, declared=2).patches == 2  # also consistent: the user decides


def test_no_fusion_edge_needs_a_declaration():
    ei = reference_edges([(0, 1), (1, 2)], [], 3)
    with pytest.raises(SchemaError) as err:
        recover_split(ei, 3)
    assert err.value.code == "NF-X001"
    visual = recover_split(ei, 3, unfused="visual")
    kg = recover_split(ei, 3, unfused="kg")
    assert (visual.patches, visual.patch_edges, visual.kg_edges, visual.fused) == (3, 4, 0, False)
    assert (kg.patches, kg.patch_edges, kg.kg_edges) == (0, 0, 4)


def test_edgeless_and_empty_graphs():
    assert recover_split(np.zeros((2, 0), np.int64), 0).rule == "empty"
    with pytest.raises(SchemaError):
        recover_split(np.zeros((2, 0), np.int64), 2)
    assert recover_split(np.zeros((2, 0), np.int64), 2, unfused="kg").patches == 0
    single = recover_split(np.array([[0], [1]]), 2)
    assert (single.patches, single.fused) == (1, True)


def test_one_directional_edges_follow_the_reference_direction():
    # pairs stored once are patch edges (the reference's set of sorted pairs): (2, 3) makes row 3 a
    # patch, so the one-directional last column cannot cross a boundary: a visual-only graph
    ei = np.array([[0, 2, 1], [1, 3, 2]])
    split = recover_split(ei, 4)
    assert (split.patches, split.fused, split.rule) == (4, False, "edge-direction")
    assert recover_split(ei, 4, declared=2).bridge == (1, 0)  # the user may still say otherwise


def test_one_directional_last_column_needs_more_evidence():
    # patch edge (0, 1) then (1, 2): a patch chain, or patches 0-1 fused to entity 2
    ei = np.array([[0, 1], [1, 2]])
    with pytest.raises(SchemaError) as err:
        recover_split(ei, 3)
    assert err.value.code == "NF-X001"
    assert "may be a patch edge or the fusion edge" in err.value.message and "entity row" in err.value.message
    fused = recover_split(ei, 3, entity_rows=np.array([False, False, True]))
    assert (fused.patches, fused.bridge, fused.rule) == (2, (1, 0), "entity-row")
    assert "edge-direction" in fused.corroborated and "edge-order" in fused.corroborated
    visual = recover_split(ei, 3, entity_rows=np.zeros(3, bool))
    assert (visual.patches, visual.fused, visual.patch_edges) == (3, False, 2)


def test_disagreeing_evidence_is_refused_naming_each():
    # symmetric KG edge (1, 2) but the entity row says only row 2 is an entity
    ei = np.array([[0, 1, 2, 0], [1, 2, 1, 3]])
    with pytest.raises(SchemaError) as err:
        recover_split(ei, 4, pairs_once=True, entity_rows=np.array([False, False, True, True]))
    assert err.value.code == "NF-X002"
    for name in ("entity-row: P = 2", "edge-direction", "edge-order"):
        assert name in err.value.message
    with pytest.raises(SchemaError) as err:  # an entity row among the patches
        recover_split(np.zeros((2, 0), np.int64), 3, entity_rows=np.array([True, False, True]))
    assert err.value.code == "NF-X002" and "row 0 equals the file's entity row" in err.value.message


def test_label_and_num_nodes_of_kg_only_graphs():
    ei = np.array([[0, 1], [1, 0]])
    split = recover_split(ei, 2, label_count=2, num_nodes_attr=2)
    assert (split.patches, split.rule) == (0, "label")
    single = recover_split(np.zeros((2, 0), np.int64), 1, label_count=1, num_nodes_attr=1)
    assert single.patches == 0 and not single.fused
    for kwargs in ({"label_count": 3}, {"label_count": 2, "num_nodes_attr": 5}):
        with pytest.raises(SchemaError) as err:
            recover_split(ei, 2, **kwargs)
        assert err.value.code == "NF-X002" and "label" in err.value.message


def test_declared_split_checked_against_edges():
    ei = reference_edges([(0, 1), (1, 2)], [(0, 1)], 3, fusion=(1, 0))
    with pytest.raises(SchemaError) as err:
        recover_split(ei, 5, declared=2)  # edge (1, 2) would cross it
    assert err.value.code == "NF-X002"
    with pytest.raises(SchemaError):
        recover_split(ei, 5, declared=9)


def test_kg_edge_before_patch_edge_is_not_reference_order():
    ei = np.array([[3, 4, 0, 1, 0], [4, 3, 1, 0, 3]])
    with pytest.raises(SchemaError) as err:
        recover_split(ei, 5)
    assert err.value.code == "NF-X002"


def test_bad_edge_index():
    with pytest.raises(SchemaError) as err:
        recover_split(np.array([[0], [7]]), 3)
    assert err.value.code == "NF-X002"
    with pytest.raises(SchemaError):
        recover_split(np.zeros((3, 1), np.int64), 3)


@st.composite
def reference_graphs(draw):
    """Random graphs in the reference layout, with the truth: (edge_index, n, P, fused)."""
    p = draw(st.integers(0, 8))
    m = draw(st.integers(0, 6))

    def pairs(k):
        return st.lists(st.tuples(st.integers(0, k - 1), st.integers(0, k - 1)).filter(lambda t: t[0] != t[1]),
                        max_size=10) if k > 1 else st.just([])

    patch_pairs = draw(pairs(p))
    kg_pairs = draw(pairs(m))
    fusion = (draw(st.integers(0, p - 1)), draw(st.integers(0, m - 1))) if p and m else None
    return reference_edges(patch_pairs, kg_pairs, p, fusion), p + m, p, fusion is not None


@settings(max_examples=300, deadline=None)
@given(reference_graphs())
def test_rule_is_right_or_refuses(graph):
    ei, n, p, fused = graph
    unfused = "visual" if p else "kg"
    try:
        split = recover_split(ei, n, unfused=unfused if not fused else None)
    except SchemaError as err:
        assert err.code == "NF-X001"  # refused, never wrong: the truth is one of several consistent splits
        assert fused and p in consistent_splits(ei, n, fused=True).tolist()
        assert len(consistent_splits(ei, n, fused=True)) > 1
        return
    if n:
        assert split.patches == p or (not fused and ei.shape[1] == 0 and n == 0)
        assert split.fused == fused
    declared = recover_split(ei, n, declared=p)
    assert declared.patches == p and declared.fused == fused
