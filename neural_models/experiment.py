"""One experiment: split, train with early stopping, score the test split, summarise.

:func:`run_variant` is shared by ``neural-format train`` and ``neural-format ablate``: the split
depends only on the labels, the patient keys and the seed, so every variant of one run (fused,
image-only, text-only, no bridge, each retention) is trained and tested on the same patients.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import metrics
from .examples import Examples
from .registry import new_model
from .splits import Split, stratified_group_split
from .train import TrainConfig, TrainResult, fit, predict


@dataclass
class VariantResult:
    model: object
    train: TrainResult
    test_ids: list[str]
    test_labels: np.ndarray
    test_scores: np.ndarray
    summary: dict


def split_examples(examples: Examples, seed: int, one_per_patient: bool = False) -> Split:
    return stratified_group_split(examples.labels, examples.group_keys, seed=seed, one_per_patient=one_per_patient)


def run_variant(examples: Examples, split: Split, config: TrainConfig, *, modality: str = "fused",
                bridge: bool = True, bootstrap: int = metrics.BOOTSTRAP_RESAMPLES, log=None) -> VariantResult:
    """Train one model on ``split.train`` (early stopping on ``split.val``) and score ``split.test``."""
    from .train import seed_everything

    seed_everything(config.seed)
    train_graphs = examples.graphs(config.model, modality, bridge, split.train)
    val_graphs = examples.graphs(config.model, modality, bridge, split.val)
    test_graphs = examples.graphs(config.model, modality, bridge, split.test)
    model = new_model(config.model, examples.features, hidden=config.hidden, dropout=config.dropout)
    result = fit(model, train_graphs, val_graphs, config, log=log, train_labels=examples.labels[split.train])
    scores = predict(model, test_graphs)
    y = examples.labels[split.test]
    summary = metrics.summarise(y, scores, n_resamples=bootstrap, seed=config.seed)
    summary.update({"modality": modality, "bridge": bridge, "model": config.model,
                    "best_epoch": result.best_epoch, "best_val_auc": result.best_val_auc,
                    "epochs_run": result.epochs_run, "train_seconds": round(result.seconds, 3),
                    "split_sizes": {k: len(v) for k, v in split.as_dict().items()}})
    ids = examples.record_ids
    return VariantResult(model, result, [ids[i] for i in split.test], y, scores, summary)
