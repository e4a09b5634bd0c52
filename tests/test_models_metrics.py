"""neural_models.metrics against hand-computed cases and a brute-force pairwise definition."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from neural_models.metrics import average_precision, bootstrap_ci, midranks, roc_auc, roc_curve, summarise


def test_auc_and_ap_hand_case():
    y = [0, 0, 1, 1]
    s = [0.1, 0.4, 0.35, 0.8]
    # positive/negative pairs: (0.35 > 0.1), (0.35 < 0.4), (0.8 > 0.1), (0.8 > 0.4) -> 3 of 4
    assert roc_auc(y, s) == pytest.approx(0.75)
    # ranking 0.8(+) 0.4(-) 0.35(+) 0.1(-): AP = 0.5 * 1 + 0.5 * 2/3
    assert average_precision(y, s) == pytest.approx(0.5 + 0.5 * 2 / 3)


def test_ties_count_half():
    y = [0, 1, 0, 1]
    s = [0.5, 0.5, 0.2, 0.9]
    # pairs: tie 0.5/0.5 counts 1/2, the other three are won -> 3.5 / 4
    assert roc_auc(y, s) == pytest.approx(0.875)
    # tied scores enter together: thresholds 0.9 (P=1, R=.5) then 0.5 (P=2/3, R=1)
    assert average_precision(y, s) == pytest.approx(0.5 + 0.5 * 2 / 3)
    assert roc_auc([0, 1, 0, 1], [0.3] * 4) == pytest.approx(0.5)


def test_midranks_share_the_mean_rank():
    assert midranks(np.array([3.0, 1.0, 3.0, 2.0])).tolist() == [3.5, 1.0, 3.5, 2.0]


def test_roc_curve_points():
    fpr, tpr, thr = roc_curve([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    assert fpr.tolist() == [0, 0, 0.5, 0.5, 1]
    assert tpr.tolist() == [0, 0.5, 0.5, 1, 1]
    assert thr[0] == np.inf and thr[1:].tolist() == [0.8, 0.4, 0.35, 0.1]
    # trapezoidal area under the points equals the rank statistic
    assert np.trapezoid(tpr, fpr) == pytest.approx(0.75)


def test_undefined_and_bad_input():
    assert np.isnan(roc_auc([1, 1], [0.2, 0.3]))
    assert np.isnan(average_precision([0, 0], [0.2, 0.3]))
    with pytest.raises(ValueError, match="0 or 1"):
        roc_auc([0, 2], [0.1, 0.2])
    with pytest.raises(ValueError, match="length"):
        roc_auc([0, 1, 1], [0.1, 0.2])


def test_bootstrap_ci_is_seeded_and_brackets_the_estimate():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 80)
    s = y * 0.8 + rng.random(80)
    low, high = bootstrap_ci(roc_auc, y, s, n_resamples=300, seed=1)
    assert (low, high) == bootstrap_ci(roc_auc, y, s, n_resamples=300, seed=1)
    assert low < roc_auc(y, s) < high <= 1.0
    summary = summarise(y, s, n_resamples=100)
    assert summary["n"] == 80 and summary["positives"] == int(y.sum())
    assert summary["pr_auc_ci95"][0] <= summary["pr_auc"] <= summary["pr_auc_ci95"][1]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 1), st.integers(0, 5)), min_size=2, max_size=30))
def test_auc_equals_pairwise_probability(pairs):
    y = np.array([p[0] for p in pairs], float)
    s = np.array([p[1] for p in pairs], float)  # few distinct values: many ties
    pos, neg = s[y == 1], s[y == 0]
    if not pos.size or not neg.size:
        assert np.isnan(roc_auc(y, s))
        return
    diff = pos[:, None] - neg[None, :]
    expected = ((diff > 0).sum() + 0.5 * (diff == 0).sum()) / diff.size
    assert roc_auc(y, s) == pytest.approx(expected)
    fpr, tpr, _ = roc_curve(y, s)
    assert np.trapezoid(tpr, fpr) == pytest.approx(expected)
