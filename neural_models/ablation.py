"""Ablations in one run: patch retention x modality x fusion, all on one patient-grouped split.

* Retention: every record is re-pruned in memory from its STORED scores with
  :func:`neural_format.collections.reprune.reprune_record` and a ``TopKPercent(r)`` policy (at least one
  patch kept), so ``r`` is a share of the patches the collection stores (100 % = as stored).
  Re-pruning rebuilds the grid edges and recomputes the betweenness bridge, as the file's own
  fusion rule demands.
* Modality (:mod:`neural_models.views`): ``fused``, ``image`` (entity nodes dropped) and
  ``text`` (patch nodes dropped). Text-only graphs do not depend on retention: that model is
  trained once and its row repeated at every retention (``retention_independent``).
* Fusion: ``fused`` (one bridge edge) vs ``fused-no-bridge`` (the bridge edge dropped).

Each variant is trained with the same :class:`~neural_models.train.TrainConfig` (same seed) and
tested on the same test patients; the table reports test ROC-AUC and PR-AUC with bootstrap 95%
CIs.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Sequence

from neural_format.format.metadata import PruningPolicy, TopKPercent
from neural_format.collections.reprune import reprune_record

from .examples import Examples
from .metrics import BOOTSTRAP_RESAMPLES
from .experiment import run_variant
from .splits import Split
from .train import TrainConfig

DEFAULT_RETENTIONS = (100.0, 10.0, 5.0, 2.3)
VARIANTS = {  # name -> (modality, bridge)
    "fused": ("fused", True),
    "image-only": ("image", False),
    "text-only": ("text", False),
    "fused-no-bridge": ("fused", False),
}


@dataclass
class AblationSettings:
    retentions: Sequence[float] = DEFAULT_RETENTIONS
    variants: Sequence[str] = tuple(VARIANTS)
    bootstrap: int = BOOTSTRAP_RESAMPLES


def already_pruned_warning(examples: Examples, retentions: Sequence[float]) -> Optional[str]:
    """A warning when the input is already pruned: the sweep's percentages are shares of what is
    STORED, so on a file built at 10 % a "10 %" point keeps 1 % of the image (often the one
    patch ``min_nodes`` guarantees). None when the file keeps every patch (or says nothing)."""
    import math

    from neural_format.format.metadata import KeepAll
    from neural_format.graphs.pruning import describe

    policy = getattr(getattr(examples.meta, "provenance", None), "pruning", None)
    records = examples.records
    if policy is None or isinstance(policy.rule, KeepAll) or not records:
        return None
    stored = sum(r.num_patches for r in records) / len(records)
    cells = [math.prod(r.geometry.grid_shape) for r in records if r.geometry is not None]
    share = (sum(r.num_patches for r in records if r.geometry is not None) / sum(cells)) if sum(cells) else None
    lines = [f"the input is already pruned ({describe(policy)}, {policy.applied_to}): it stores "
             f"{stored:.1f} patches per record"
             + (f", {share:.1%} of the image's patch grid" if share is not None else "") + ".",
             "--retention percentages are shares of the STORED patches, so this sweep keeps:"]
    for percent in sorted(retentions, reverse=True):
        kept = [min(r.num_patches, max(1, math.ceil(percent / 100.0 * r.num_patches))) for r in records]
        mean = sum(kept) / len(kept)
        of_grid = f" = {percent / 100.0 * share:.2%} of the grid" if share is not None else ""
        lines.append(f"  {percent:g}% -> {mean:.1f} patches per record (of what is stored{of_grid})")
    lines.append("For a sweep over the whole image, ablate a collection built with every patch kept.")
    return "\n".join(lines)


def retained(examples: Examples, percent: float) -> Examples:
    """The examples with every record re-pruned to the top ``percent`` % of its stored patches."""
    if percent >= 100.0:
        return examples
    policy = PruningPolicy(rule=TopKPercent(percent=percent), min_nodes=1, applied_to="re-prune")
    meta = examples.meta
    if meta is None:
        raise ValueError("re-pruning needs the collection metadata of the examples")
    return examples.map_records(lambda record: reprune_record(record, policy, meta)[0])


def run_ablation(examples: Examples, split: Split, config: TrainConfig, settings: AblationSettings, *,
                 log: Optional[Callable[[str], None]] = None) -> list[dict]:
    """One row per (retention, variant): the test summary plus retention and patch counts."""
    unknown = [v for v in settings.variants if v not in VARIANTS]
    if unknown:
        raise ValueError(f"unknown variants {unknown}; choose from {list(VARIANTS)}")
    rows: list[dict] = []
    text_row = None
    for percent in sorted(settings.retentions, reverse=True):
        pruned = retained(examples, percent)
        pruned_records = pruned.required_records()
        patches = sum(r.num_patches for r in pruned_records)
        stored = sum(r.num_patches for r in examples.required_records())
        for name in settings.variants:
            modality, bridge = VARIANTS[name]
            if modality == "text" and text_row is not None:
                summary = dict(text_row)
            else:
                if log:
                    log(f"-- retention {percent:g}%: {name}")
                summary = run_variant(pruned, split, config, modality=modality, bridge=bridge,
                                      bootstrap=settings.bootstrap).summary
                if modality == "text":
                    text_row = summary
            rows.append({"variant": name, "retention_percent": float(percent),
                         "patches_kept": patches, "patches_stored": stored,
                         "mean_patches_per_record": patches / max(len(pruned_records), 1),
                         "retention_independent": modality == "text", **summary})
            if log:
                ci = summary["roc_auc_ci95"]
                log(f"   {name:<16} AUC {summary['roc_auc']:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]")
    return rows


def markdown_table(rows: Sequence[dict]) -> str:
    """The ablation rows as a Markdown table (one line per retention and variant)."""
    lines = ["| retention | mean patches/record | variant | test ROC-AUC [95% CI] | test PR-AUC [95% CI] | n (pos) |",
             "|---:|---:|---|---|---|---|"]
    for r in rows:
        auc = f"{r['roc_auc']:.3f} [{r['roc_auc_ci95'][0]:.3f}, {r['roc_auc_ci95'][1]:.3f}]"
        ap = f"{r['pr_auc']:.3f} [{r['pr_auc_ci95'][0]:.3f}, {r['pr_auc_ci95'][1]:.3f}]"
        name = r["variant"] + (" (same at every retention)" if r.get("retention_independent") else "")
        lines.append(f"| {r['retention_percent']:g}% | {r['mean_patches_per_record']:.1f} | {name} | {auc} | {ap} | "
                     f"{r['n']} ({r['positives']}) |")
    return "\n".join(lines) + "\n"
