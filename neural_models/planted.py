"""Synthetic labelled collections with a planted signal, for tests, benchmarks and development.

Built on :mod:`neural_format.collections.synthetic` (random valid records, two per patient). Each patient
gets a label ``y ~ Bernoulli(positive_rate)``, shared by its records, and the signal is planted
in both modalities so that fused models can beat single-modality ones:

* image: every patch feature vector is shifted by ``image_signal * (2y - 1)`` on its first 4
  dimensions (the noise is standard normal);
* text: with probability ``text_signal`` an entity's type is set to 0 ("finding") and its
  assertion to present when ``y = 1``, or to absent when ``y = 0``.

Scores stay random, so re-pruning keeps random patches and the image signal survives pruning.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from neural_format.collections.synthetic import synthetic_meta, synthetic_records
from neural_format.files.writer import CollectionWriter


def planted_records(n: int, meta, *, seed: int = 0, image_signal: float = 0.6, text_signal: float = 0.5,
                    positive_rate: float = 0.4, patches=(4, 30), entities=(1, 8)):
    rng = np.random.default_rng(seed + 7919)
    patient_label: dict[str, float] = {}
    for record in synthetic_records(n, meta, seed=seed, patches=patches, entities=entities):
        assert record.group_key is not None  # synthetic records always name their patient
        y = patient_label.setdefault(record.group_key, float(rng.random() < positive_rate))
        sign = 2.0 * y - 1.0
        feats = record.patch_features.astype(np.float32).copy()
        feats[:, :4] += image_signal * sign
        types = record.entity_types.copy()
        assertions = record.entity_assertions.copy()
        hit = rng.random(types.shape[0]) < text_signal
        types[hit] = 0
        assertions[hit] = 0 if y else 1
        record.patch_features = feats.astype(meta.patch_feature_dtype)
        record.entity_types = types
        record.entity_assertions = assertions
        record.labels = np.full(len(meta.label_names), y, np.float32)
        yield record


def write_planted_collection(path, n: int = 200, *, seed: int = 0, feature_dim: int = 16, **kwargs) -> Path:
    """Write ``n`` planted records (label ``pneumonia``) to ``path``; returns the path."""
    meta = synthetic_meta(feature_dim=feature_dim)
    with CollectionWriter(path, meta, overwrite=True) as writer:
        for record in planted_records(n, meta, seed=seed, **kwargs):
            writer.append(record)
    return Path(path)
