"""neural_models.metrics (scikit-learn, scipy.stats.bootstrap) against hand-computed cases, a
brute-force pairwise definition and the hand-written rank / step formulas it replaced."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from neural_models.metrics import average_precision, bootstrap_ci, roc_auc, roc_curve, summarise


def _trapezoid(y, x) -> float:
    """Trapezoidal area (numpy's ``trapezoid`` is 2.0+, ``trapz`` is gone from 2.4: the core supports 1.24)."""
    y, x = np.asarray(y, float), np.asarray(x, float)
    return float(np.sum(np.diff(x) * (y[1:] + y[:-1]) / 2))


# -- the former hand-written implementation, kept only as a cross-check of the libraries --------
def midranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks of ``values``; tied values share the mean of the ranks they span."""
    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]
    starts = np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1]])
    ends = np.r_[starts[1:], sorted_values.size]
    ranks = np.empty(values.size, dtype=np.float64)
    ranks[order] = np.repeat((starts + ends + 1) / 2.0, ends - starts)
    return ranks


def rank_auc(y, s) -> float:
    """Mann-Whitney: (R_+ - n_+ (n_+ + 1) / 2) / (n_+ n_-)."""
    n_pos = y.sum()
    n_neg = y.size - n_pos
    return float((midranks(s)[y == 1].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def step_ap(y, s) -> float:
    """sum_k (R_k - R_{k-1}) P_k with one threshold per distinct score, highest first."""
    order = np.argsort(-s, kind="mergesort")
    s_sorted, y_sorted = s[order], y[order]
    last = np.r_[s_sorted[1:] != s_sorted[:-1], True]
    tp, fp = np.cumsum(y_sorted)[last], np.cumsum(1.0 - y_sorted)[last]
    return float(np.sum(np.diff(np.r_[0.0, tp / y.sum()]) * tp / (tp + fp)))


def percentile_bootstrap(metric, y, s, n_resamples, seed, level=0.95):
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n_resamples):
        idx = rng.integers(0, y.size, y.size)
        if y[idx].min() != y[idx].max():
            values.append(metric(y[idx], s[idx]))
    return np.quantile(values, [(1 - level) / 2, (1 + level) / 2])


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
    assert _trapezoid(tpr, fpr) == pytest.approx(0.75)


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


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 1), st.integers(0, 7)), min_size=2, max_size=40))
def test_libraries_agree_with_the_former_hand_written_formulas(pairs):
    y = np.array([p[0] for p in pairs], float)
    s = np.array([p[1] for p in pairs], float) / 7.0
    if y.min() == y.max():
        return
    assert roc_auc(y, s) == pytest.approx(rank_auc(y, s))
    assert average_precision(y, s) == pytest.approx(step_ap(y, s))


def test_bootstrap_matches_a_plain_percentile_bootstrap_in_distribution():
    """scipy's resampling differs in its random stream, not in the estimator: with many resamples
    the two percentile intervals agree to sampling noise."""
    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, 60).astype(float)
    s = y * 0.6 + rng.random(60)
    low, high = bootstrap_ci(roc_auc, y, s, n_resamples=1500, seed=2)
    ref_low, ref_high = percentile_bootstrap(rank_auc, y, s, 1500, seed=2)
    assert abs(low - ref_low) < 0.03 and abs(high - ref_high) < 0.03


def test_bootstrap_skips_one_class_resamples():
    y = np.r_[np.zeros(18), np.ones(2)]
    s = np.linspace(0, 1, 20)
    low, high = bootstrap_ci(roc_auc, y, s, n_resamples=200, seed=0)
    assert np.isfinite(low) and np.isfinite(high) and 0 <= low <= high <= 1
    assert np.isnan(bootstrap_ci(roc_auc, [1, 1, 1], [0.1, 0.2, 0.3], n_resamples=20)).all()


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
    assert _trapezoid(tpr, fpr) == pytest.approx(expected)
