"""PNG figures: ROC curves of a run, and test AUC against patch retention (the paper's Fig. 2).

matplotlib is imported inside each function with the non-interactive Agg backend, so importing
this module costs nothing and works without a display.
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from .metrics import roc_curve
from . import optional_deps


def _pyplot():
    matplotlib = optional_deps.load("matplotlib", needed_by="the figures")
    matplotlib.use("Agg", force=True)
    plt = optional_deps.load("matplotlib.pyplot", needed_by="the figures")
    return plt


# Lines that coincide must stay distinguishable: each series gets its own marker and line style,
# and series drawn earlier are wider and paler, so a later series lying exactly on top of an
# earlier one still shows the earlier one as a halo around it.
STYLES = (("o", "-"), ("s", "--"), ("^", ":"), ("D", "-."), ("v", (0, (5, 1, 1, 1))), ("P", (0, (3, 2))))


def _style(k: int, count: int) -> dict:
    marker, linestyle = STYLES[k % len(STYLES)]
    width = 1.4 + 1.6 * (count - 1 - k) / max(count - 1, 1)
    return {"marker": marker, "linestyle": linestyle, "lw": width, "alpha": 0.95 if k == count - 1 else 0.8,
            "markersize": 4 + 2.5 * (count - 1 - k) / max(count - 1, 1), "zorder": 2 + k}


def _class_counts(labels) -> tuple[int, int, int]:
    y = np.asarray(labels, float)
    return int(y.size), int(y.sum()), int(y.size - y.sum())


def roc_legend(curves, points) -> tuple[dict[str, str], str | None]:
    """Legend text per curve (AUC; n and classes when curves differ in them; "[= other]" for a
    curve identical to an earlier one) and the n line for the title when all curves share it."""
    counts = {name: _class_counts(labels) for name, (labels, _, _) in curves.items()}
    shared = len(set(counts.values())) == 1
    text: dict[str, str] = {}
    seen: list[str] = []
    for name, (_, _, auc) in curves.items():
        fpr, tpr = points[name]
        same = [o for o in seen if points[o][0].shape == fpr.shape and np.allclose(points[o][0], fpr)
                and np.allclose(points[o][1], tpr)]
        n, pos, neg = counts[name]
        text[name] = (f"{name}: AUC {auc:.3f}" + ("" if shared else f", n={n} ({pos}+/{neg}-)")
                      + (f"  [= {same[0]}]" if same else ""))
        seen.append(name)
    n_text = None
    if shared and counts:
        n, pos, neg = next(iter(counts.values()))
        n_text = f"n = {n} test records ({pos} positive, {neg} negative)"
    return text, n_text


def plot_roc(curves: Mapping[str, tuple[np.ndarray, np.ndarray, float]], path, title: str = "ROC (test)") -> Path:
    """``curves``: name -> (labels, scores, auc). One line per name, with the chance diagonal.

    Every line has its own marker and style and the legend gives n (positives/negatives); a curve
    identical to an earlier one is marked "= <earlier>" in the legend, so no curve disappears."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.0, 5.0), dpi=120)
    points = {name: roc_curve(labels, scores)[:2] for name, (labels, scores, _) in curves.items()}
    labels_text, n_text = roc_legend(curves, points)
    for k, name in enumerate(curves):
        fpr, tpr = points[name]
        ax.plot(fpr, tpr, label=labels_text[name], markevery=max(1, fpr.size // 12), **_style(k, len(curves)))
    if n_text:
        title = f"{title}\n{n_text}"
    ax.plot([0, 1], [0, 1], ls="--", lw=0.8, color="grey", zorder=1)
    # a small margin, so that curves along the axes (TPR = 1, FPR = 0) are not hidden by the frame
    ax.set(xlabel="false positive rate", ylabel="true positive rate", xlim=(-0.02, 1.02), ylim=(-0.02, 1.03),
           title=title)
    ax.legend(loc="lower right", fontsize=7.5, framealpha=0.9)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    plt.close(fig)
    return path


def retention_legend(series: Mapping[str, Sequence[dict]]) -> tuple[dict[str, str], str | None]:
    """Legend text per variant ("[= other]" when its AUCs equal an earlier variant's at every
    retention; n when variants differ in n) and the n line for the title when they share it."""
    ns = {(r.get("n"), r.get("positives")) for rows in series.values() for r in rows}
    shared = len(ns) == 1 and next(iter(ns))[0] is not None
    text: dict[str, str] = {}
    for variant, chosen in series.items():
        points = [(r["retention_percent"], r["roc_auc"]) for r in chosen]
        same = [v for v in text if [(r["retention_percent"], r["roc_auc"]) for r in series[v]] == points]
        label = variant + (f"  [= {same[0]}]" if same else "")
        if not shared and chosen and chosen[0].get("n") is not None:
            label += f", n={chosen[0]['n']}"
        text[variant] = label
    n_text = None
    if shared:
        n, positives = next(iter(ns))
        n_text = f"test n = {n}" + (f" ({positives} positive)" if positives is not None else "")
    return text, n_text


def plot_auc_vs_retention(rows: Sequence[dict], path, title: str = "Test AUC vs patch retention") -> Path:
    """``rows``: dicts with ``variant``, ``retention_percent``, ``roc_auc`` and ``roc_auc_ci95``
    (and, from :func:`neural_models.metrics.summarise`, ``n`` and ``positives``).

    One line per variant over retention (log-scaled x axis, as retention spans 2-100 %), with the
    bootstrap 95% CI as a shaded band. Variants are dodged sideways a little (each its own offset
    on the log axis) and have their own marker and line style, so equal AUCs sit side by side
    instead of on top of each other; the legend says which variants coincide everywhere; n is in
    the title (or the legend, when variants differ in n).
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.2, 4.9), dpi=120)
    series = {v: sorted((r for r in rows if r["variant"] == v), key=lambda r: r["retention_percent"])
              for v in dict.fromkeys(r["variant"] for r in rows)}
    variants = list(series)
    labels_text, n_text = retention_legend(series)
    for k, variant in enumerate(variants):
        chosen = series[variant]
        x = np.array([r["retention_percent"] for r in chosen], float)
        y = np.array([r["roc_auc"] for r in chosen], float)
        low = np.array([r["roc_auc_ci95"][0] for r in chosen], float)
        high = np.array([r["roc_auc_ci95"][1] for r in chosen], float)
        dodge = 10 ** (0.022 * (k - (len(variants) - 1) / 2))  # a few % sideways on the log axis
        style = _style(k, len(variants))
        line, = ax.plot(x * dodge, y, label=labels_text[variant], **style)
        ax.fill_between(x * dodge, low, high, color=line.get_color(), alpha=0.08, lw=0)
        ax.errorbar(x * dodge, y, yerr=[y - low, high - y], fmt="none", ecolor=line.get_color(), elinewidth=0.8,
                    capsize=2, alpha=0.7, zorder=style["zorder"])
    ax.set_xscale("log")
    ticks = sorted({r["retention_percent"] for r in rows})
    ax.set_xticks(ticks)
    ax.set_xticklabels([f"{t:g}%" for t in ticks])
    ax.minorticks_off()
    if n_text:
        title = f"{title}\n{n_text}"
    ax.set(xlabel="patches retained (share of stored patches)", ylabel="test ROC-AUC [95% CI]", title=title)
    ax.axhline(0.5, ls="--", lw=0.8, color="grey", zorder=1)
    # below the axes: a legend inside would sit on lines near AUC 1 or 0.5
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, frameon=False)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    plt.close(fig)
    return path
