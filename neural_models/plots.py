"""PNG figures: ROC curves of a run, and test AUC against patch retention (the paper's Fig. 2).

matplotlib is imported inside each function with the non-interactive Agg backend, so importing
this module costs nothing and works without a display.
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from .metrics import roc_curve


def _pyplot():
    import matplotlib
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    return plt


def plot_roc(curves: Mapping[str, tuple[np.ndarray, np.ndarray, float]], path, title: str = "ROC (test)") -> Path:
    """``curves``: name -> (labels, scores, auc). One line per name, with the chance diagonal."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.8, 4.6), dpi=120)
    for name, (labels, scores, auc) in curves.items():
        fpr, tpr, _ = roc_curve(labels, scores)
        ax.plot(fpr, tpr, lw=1.6, label=f"{name} (AUC {auc:.3f})")
    ax.plot([0, 1], [0, 1], ls="--", lw=0.8, color="grey")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", xlim=(0, 1), ylim=(0, 1.01), title=title)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_auc_vs_retention(rows: Sequence[dict], path, title: str = "Test AUC vs patch retention") -> Path:
    """``rows``: dicts with ``variant``, ``retention_percent``, ``roc_auc`` and ``roc_auc_ci95``.

    One line per variant over retention (log-scaled x axis, as retention spans 2-100 %), with the
    bootstrap 95% CI as a shaded band.
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.6, 4.2), dpi=120)
    variants = list(dict.fromkeys(r["variant"] for r in rows))
    for variant in variants:
        chosen = sorted((r for r in rows if r["variant"] == variant), key=lambda r: r["retention_percent"])
        x = np.array([r["retention_percent"] for r in chosen], float)
        y = np.array([r["roc_auc"] for r in chosen], float)
        low = np.array([r["roc_auc_ci95"][0] for r in chosen], float)
        high = np.array([r["roc_auc_ci95"][1] for r in chosen], float)
        line, = ax.plot(x, y, marker="o", lw=1.6, label=variant)
        ax.fill_between(x, low, high, color=line.get_color(), alpha=0.12, lw=0)
    ax.set_xscale("log")
    ticks = sorted({r["retention_percent"] for r in rows})
    ax.set_xticks(ticks)
    ax.set_xticklabels([f"{t:g}%" for t in ticks])
    ax.minorticks_off()
    ax.set(xlabel="patches retained (share of stored patches)", ylabel="test ROC-AUC", title=title)
    ax.axhline(0.5, ls="--", lw=0.8, color="grey")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    plt.close(fig)
    return path
