"""Binary classification metrics in numpy: ROC-AUC, average precision, ROC points, bootstrap CI.

ROC-AUC is the Mann-Whitney statistic. With ``n_+`` positives, ``n_-`` negatives and ``R_+`` the
sum of the positives' ranks among all scores (tied scores share their mid-rank),

    AUC = (R_+ - n_+ (n_+ + 1) / 2) / (n_+ n_-),

which equals P(s_pos > s_neg) + 0.5 P(s_pos = s_neg) and the trapezoidal area under the ROC curve.

Average precision (PR-AUC) is the step-wise area under the precision-recall curve, with one
threshold per distinct score (tied scores enter together):

    AP = sum_k (R_k - R_{k-1}) P_k,

where ``P_k`` and ``R_k`` are precision and recall when every score >= the k-th largest distinct
score is called positive.

The bootstrap CI resamples records with replacement, skips resamples with one class only (the
metric is undefined there) and reports the 2.5th and 97.5th percentiles.
"""
from __future__ import annotations

from typing import Callable

import numpy as np


def _binary(y_true, y_score) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true, dtype=np.float64).ravel()
    s = np.asarray(y_score, dtype=np.float64).ravel()
    if y.shape != s.shape:
        raise ValueError(f"labels and scores differ in length: {y.shape[0]} vs {s.shape[0]}")
    if not np.isin(y, (0.0, 1.0)).all():
        raise ValueError("labels must be 0 or 1")
    if not np.isfinite(s).all():
        raise ValueError("scores must be finite")
    return y, s


def midranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks of ``values``; tied values share the mean of the ranks they span."""
    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]
    # start index of each run of equal values
    starts = np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1]])
    ends = np.r_[starts[1:], sorted_values.size]
    run_rank = (starts + ends + 1) / 2.0  # mean of ranks starts+1 .. ends
    ranks = np.empty(values.size, dtype=np.float64)
    ranks[order] = np.repeat(run_rank, ends - starts)
    return ranks


def roc_auc(y_true, y_score) -> float:
    """Area under the ROC curve via the Mann-Whitney rank statistic; NaN when one class is absent."""
    y, s = _binary(y_true, y_score)
    n_pos = float(y.sum())
    n_neg = float(y.size - n_pos)
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    rank_sum = midranks(s)[y == 1].sum()
    return float((rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def average_precision(y_true, y_score) -> float:
    """Step-wise area under the precision-recall curve (one step per distinct score); NaN without positives."""
    y, s = _binary(y_true, y_score)
    n_pos = y.sum()
    if n_pos == 0:
        return float("nan")
    tp, fp, _ = _cumulative_counts(y, s)
    precision = tp / (tp + fp)
    recall = tp / n_pos
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def _cumulative_counts(y: np.ndarray, s: np.ndarray):
    """True and false positives when thresholding at each distinct score, highest first."""
    order = np.argsort(-s, kind="mergesort")
    s_sorted, y_sorted = s[order], y[order]
    last_of_run = np.r_[s_sorted[1:] != s_sorted[:-1], True]
    tp = np.cumsum(y_sorted)[last_of_run]
    fp = np.cumsum(1.0 - y_sorted)[last_of_run]
    return tp, fp, s_sorted[last_of_run]


def roc_curve(y_true, y_score) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(false positive rate, true positive rate, thresholds), starting at (0, 0) with threshold +inf."""
    y, s = _binary(y_true, y_score)
    tp, fp, thresholds = _cumulative_counts(y, s)
    n_pos, n_neg = y.sum(), y.size - y.sum()
    tpr = np.r_[0.0, tp / n_pos] if n_pos else np.full(tp.size + 1, np.nan)
    fpr = np.r_[0.0, fp / n_neg] if n_neg else np.full(fp.size + 1, np.nan)
    return fpr, tpr, np.r_[np.inf, thresholds]


def bootstrap_ci(metric: Callable, y_true, y_score, *, n_resamples: int = 1000, level: float = 0.95,
                 seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of ``metric(y_true, y_score)`` over records; (NaN, NaN) if undefined."""
    y, s = _binary(y_true, y_score)
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n_resamples):
        idx = rng.integers(0, y.size, y.size)
        yy = y[idx]
        if yy.min() == yy.max():
            continue
        values.append(metric(yy, s[idx]))
    if not values:
        return float("nan"), float("nan")
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(np.asarray(values), [alpha, 1.0 - alpha])
    return float(low), float(high)


def summarise(y_true, y_score, *, n_resamples: int = 1000, seed: int = 0) -> dict:
    """ROC-AUC and PR-AUC with their bootstrap 95% CIs, plus class counts, as a JSON-ready dict."""
    y, s = _binary(y_true, y_score)
    auc_low, auc_high = bootstrap_ci(roc_auc, y, s, n_resamples=n_resamples, seed=seed)
    ap_low, ap_high = bootstrap_ci(average_precision, y, s, n_resamples=n_resamples, seed=seed)
    return {"n": int(y.size), "positives": int(y.sum()), "negatives": int(y.size - y.sum()),
            "roc_auc": roc_auc(y, s), "roc_auc_ci95": [auc_low, auc_high],
            "pr_auc": average_precision(y, s), "pr_auc_ci95": [ap_low, ap_high],
            "bootstrap_resamples": n_resamples, "bootstrap_seed": seed}
