"""Binary classification metrics: ROC-AUC, average precision, ROC points (scikit-learn) and the
percentile bootstrap CI (``scipy.stats.bootstrap``).

* ROC-AUC: ``sklearn.metrics.roc_auc_score`` (trapezoidal area under the ROC curve, which equals
  the Mann-Whitney statistic P(s_pos > s_neg) + 0.5 P(s_pos = s_neg)); NaN when one class is absent.
* Average precision (PR-AUC): ``sklearn.metrics.average_precision_score``, the step-wise area
  ``sum_k (R_k - R_{k-1}) P_k`` with one threshold per distinct score; NaN without positives.
* ROC curve: ``sklearn.metrics.roc_curve`` with every threshold kept (``drop_intermediate=False``),
  starting at (0, 0) with threshold +inf.
* Bootstrap CI: ``scipy.stats.bootstrap`` resampling records (labels and scores paired) with the
  percentile method at 95 %. A resample holding one class only has no AUC; its statistic is NaN
  and the interval is the percentiles of the defined resamples (scipy's own percentile over a
  distribution with NaN would be NaN).

The hand-written rank and step formulas these replaced are kept in ``tests/test_models_metrics.py``
as a cross-check.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
from . import optional_deps

BOOTSTRAP_RESAMPLES = 1000  # resamples of every bootstrap CI unless a caller says otherwise (flags read it)


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


def roc_auc(y_true, y_score) -> float:
    """Area under the ROC curve (scikit-learn); NaN when one class is absent."""
    roc_auc_score = optional_deps.load("sklearn.metrics", needed_by="roc_auc").roc_auc_score
    y, s = _binary(y_true, y_score)
    if not y.size or y.min() == y.max():
        return float("nan")
    return float(roc_auc_score(y, s))


def average_precision(y_true, y_score) -> float:
    """Step-wise area under the precision-recall curve (scikit-learn); NaN without positives."""
    average_precision_score = optional_deps.load("sklearn.metrics", needed_by="average_precision").average_precision_score
    y, s = _binary(y_true, y_score)
    if not y.sum():
        return float("nan")
    return float(average_precision_score(y, s))


def roc_curve(y_true, y_score) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(false positive rate, true positive rate, thresholds), starting at (0, 0) with threshold +inf;
    a rate whose class is absent is NaN."""
    import warnings

    UndefinedMetricWarning = optional_deps.load("sklearn.exceptions", needed_by="roc_curve").UndefinedMetricWarning
    sk_roc_curve = optional_deps.load("sklearn.metrics", needed_by="roc_curve").roc_curve
    y, s = _binary(y_true, y_score)
    with warnings.catch_warnings():  # one class absent: its rate is NaN, said in the docstring
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        fpr, tpr, thresholds = sk_roc_curve(y, s, drop_intermediate=False)
    thresholds = np.asarray(thresholds, np.float64)
    thresholds[0] = np.inf  # older scikit-learn wrote max(score) + 1 here
    return fpr, tpr, thresholds


def bootstrap_ci(metric: Callable, y_true, y_score, *, n_resamples: int = BOOTSTRAP_RESAMPLES, level: float = 0.95,
                 seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of ``metric(y_true, y_score)`` over records (``scipy.stats.bootstrap``);
    resamples with one class only are skipped; (NaN, NaN) if no resample is defined."""
    import warnings

    stats = optional_deps.load("scipy.stats", needed_by="the bootstrap interval")
    DegenerateDataWarning, bootstrap = stats.DegenerateDataWarning, stats.bootstrap
    y, s = _binary(y_true, y_score)
    if y.size < 2:
        return float("nan"), float("nan")

    def statistic(yy, ss):
        return metric(yy, ss) if yy.min() != yy.max() else np.nan

    with warnings.catch_warnings():  # NaN (one-class) resamples are handled below
        warnings.simplefilter("ignore", DegenerateDataWarning)
        result = bootstrap((y, s), statistic, paired=True, vectorized=False, n_resamples=n_resamples,
                           confidence_level=level, method="percentile", rng=np.random.default_rng(seed))
    low, high = result.confidence_interval
    if np.isfinite(low) and np.isfinite(high):
        return float(low), float(high)
    values = np.asarray(result.bootstrap_distribution, np.float64)
    values = values[np.isfinite(values)]
    if not values.size:
        return float("nan"), float("nan")
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(values, [alpha, 1.0 - alpha])
    return float(low), float(high)


def summarise(y_true, y_score, *, n_resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0) -> dict:
    """ROC-AUC and PR-AUC with their bootstrap 95% CIs, plus class counts, as a JSON-ready dict."""
    y, s = _binary(y_true, y_score)
    auc_low, auc_high = bootstrap_ci(roc_auc, y, s, n_resamples=n_resamples, seed=seed)
    ap_low, ap_high = bootstrap_ci(average_precision, y, s, n_resamples=n_resamples, seed=seed)
    return {"n": int(y.size), "positives": int(y.sum()), "negatives": int(y.size - y.sum()),
            "roc_auc": roc_auc(y, s), "roc_auc_ci95": [auc_low, auc_high],
            "pr_auc": average_precision(y, s), "pr_auc_ci95": [ap_low, ap_high],
            "bootstrap": "scipy.stats.bootstrap, percentile, paired records",
            "bootstrap_resamples": n_resamples, "bootstrap_seed": seed}
