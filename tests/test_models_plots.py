"""Figures: coinciding series stay distinguishable and n is shown (neural_models.plots)."""
import numpy as np
import pytest

pytest.importorskip("matplotlib")

from neural_models.metrics import roc_curve  # noqa: E402
from neural_models.plots import (STYLES, _style, plot_auc_vs_retention, plot_roc, retention_legend,  # noqa: E402
                                 roc_legend)


def _png(path):
    return path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_roc_legend_marks_identical_curves_and_gives_n(tmp_path):
    y = np.r_[np.ones(5), np.zeros(4)]
    perfect = y + np.linspace(0, 0.1, 9)
    curves = {"fused": (y, perfect, 1.0), "image": (y, np.linspace(0, 1, 9), 0.5), "text": (y, perfect, 1.0)}
    points = {k: roc_curve(lab, s)[:2] for k, (lab, s, _) in curves.items()}
    text, n_text = roc_legend(curves, points)
    assert text["text"].endswith("[= fused]") and "[=" not in text["image"]
    assert n_text == "n = 9 test records (5 positive, 4 negative)"
    other = {**curves, "subset": (y[:6], perfect[:6], 1.0)}
    points["subset"] = roc_curve(y[:6], perfect[:6])[:2]
    text, n_text = roc_legend(other, points)
    assert n_text is None and "n=9 (5+/4-)" in text["fused"] and "n=6 (5+/1-)" in text["subset"]
    assert _png(plot_roc(curves, tmp_path / "roc.png"))


def test_retention_legend_and_figure(tmp_path):
    rows = []
    for percent in (100.0, 10.0, 2.3):
        for variant, auc in (("fused", 1.0), ("image-only", 0.7 + percent / 1000), ("text-only", 1.0),
                             ("fused-no-bridge", 1.0)):
            rows.append({"variant": variant, "retention_percent": percent, "roc_auc": auc,
                         "roc_auc_ci95": [auc - 0.05, min(1.0, auc + 0.05)], "n": 45, "positives": 23})
    series = {v: [r for r in rows if r["variant"] == v] for v in ("fused", "image-only", "text-only",
                                                                   "fused-no-bridge")}
    text, n_text = retention_legend(series)
    assert text["text-only"] == "text-only  [= fused]" and text["fused-no-bridge"].endswith("[= fused]")
    assert n_text == "test n = 45 (23 positive)"
    assert _png(plot_auc_vs_retention(rows, tmp_path / "abl.png"))


def test_every_series_has_its_own_marker_and_line_style():
    styles = [_style(k, 4) for k in range(4)]
    assert len({(s["marker"], str(s["linestyle"])) for s in styles}) == 4
    assert styles[0]["lw"] > styles[-1]["lw"]  # earlier series wider: a halo around a later one on top
    assert len(STYLES) >= 4
