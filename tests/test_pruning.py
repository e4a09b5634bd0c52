"""Invariants of the pruning policies in neural_format.graphs.pruning."""
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from neural_format.format.metadata import KeepAll, Nucleus, PruningPolicy, Threshold, TopKPercent
from neural_format.graphs.pruning import rank, rule_count, select

scores_st = st.lists(st.floats(min_value=0.0, max_value=1e3, allow_nan=False, width=32),
                     min_size=0, max_size=80).map(lambda v: np.asarray(v, np.float64))


def _is_ranking_prefix(scores, kept):
    """Every kept score >= every dropped score (ties allowed)."""
    dropped = np.setdiff1d(np.arange(scores.size), kept)
    if kept.size == 0 or dropped.size == 0:
        return True
    return scores[kept].min() >= scores[dropped].max()


@settings(max_examples=150, deadline=None)
@given(scores_st, st.floats(min_value=0.01, max_value=100.0), st.integers(0, 5), st.integers(1, 40))
def test_top_k_count_is_ceil_of_percent_clipped_by_bounds(scores, percent, lo, hi):
    hi = max(hi, lo)
    policy = PruningPolicy(rule=TopKPercent(percent=percent), min_nodes=lo, max_nodes=hi)
    kept = select(scores, policy)
    P = scores.size
    expected = min(max(math.ceil(round(percent * P / 100, 9)), lo), hi, P)
    assert kept.size == expected
    assert np.all(np.diff(kept) > 0)
    assert _is_ranking_prefix(scores, kept)


@settings(max_examples=150, deadline=None)
@given(scores_st, st.floats(min_value=0.01, max_value=1.0))
def test_nucleus_is_the_minimal_prefix_reaching_p(scores, p):
    policy = PruningPolicy(rule=Nucleus(p=p), min_nodes=0)
    kept = select(scores, policy)
    total = math.fsum(scores)
    if total == 0:
        assert kept.size == 0
        return
    mass = math.fsum(scores[kept])
    assert mass >= p * total * (1 - 1e-9)
    # minimal: removing the smallest kept patch falls short of p
    smaller = mass - scores[kept].min()
    assert smaller < p * total * (1 + 1e-9)
    assert _is_ranking_prefix(scores, kept)
    # no set of the same size minus one can reach p: the best such set is the top n-1
    best = np.sort(scores)[::-1][: kept.size - 1]
    assert math.fsum(best) < p * total * (1 + 1e-9)


@settings(max_examples=100, deadline=None)
@given(scores_st, st.floats(min_value=0.0, max_value=1e3), st.integers(0, 3))
def test_threshold_keeps_scores_at_or_above_tau_within_bounds(scores, tau, lo):
    kept = select(scores, PruningPolicy(rule=Threshold(tau=tau), min_nodes=lo))
    passing = np.flatnonzero(scores >= tau)
    if passing.size >= lo:
        assert np.array_equal(kept, passing)
    else:
        assert kept.size == min(lo, scores.size)
        assert set(passing) <= set(kept.tolist())


def test_ties_break_to_the_lower_index_and_nan_ranks_last():
    scores = np.array([0.5, np.nan, 0.5, 0.9, 0.5])
    assert rank(scores).tolist() == [3, 0, 2, 4, 1]
    kept = select(scores, PruningPolicy(rule=TopKPercent(percent=40)))  # ceil(2.0) = 2
    assert kept.tolist() == [0, 3]


def test_percent_rounding_never_adds_a_patch():
    assert rule_count(np.ones(30), TopKPercent(percent=10)) == 3
    assert rule_count(np.ones(100), TopKPercent(percent=2.3)) == 3
    assert rule_count(np.ones(49), TopKPercent(percent=2.3)) == 2


def test_keep_all_respects_max_nodes_and_min_nodes_cannot_exceed_patches():
    scores = np.arange(10.0)
    assert select(scores, PruningPolicy(rule=KeepAll(), max_nodes=4)).tolist() == [6, 7, 8, 9]
    assert select(scores[:2], PruningPolicy(rule=Threshold(tau=99), min_nodes=5)).tolist() == [0, 1]
    assert select(np.zeros(0), PruningPolicy(rule=KeepAll())).tolist() == []


def test_nucleus_hand_case():
    # masses 0.5, 0.3, 0.2: p=0.8 needs exactly the two largest, p=0.81 needs all three
    scores = np.array([0.2, 0.5, 0.3])
    assert select(scores, PruningPolicy(rule=Nucleus(p=0.8))).tolist() == [1, 2]
    assert select(scores, PruningPolicy(rule=Nucleus(p=0.81))).tolist() == [0, 1, 2]
    assert select(scores, PruningPolicy(rule=Nucleus(p=0.5))).tolist() == [1]


def test_policy_rejects_inverted_bounds():
    with pytest.raises(ValueError):
        PruningPolicy(rule=KeepAll(), min_nodes=5, max_nodes=2)
