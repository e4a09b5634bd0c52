"""Stratified, patient-grouped train/validation/test split (default 70/15/15), seeded.

Rule: every record of one patient (same ``group_key``) lands in the SAME split, so no patient is
seen in training and in testing. Records without a ``group_key`` form a group of their own.
Groups are stratified by their label (a group counts as positive when any of its records is):
within each stratum the groups are shuffled with ``numpy.random.default_rng(seed)`` and cut at
``round(fraction * n_groups)``. ``one_per_patient=True`` additionally keeps only the first record
(in collection order) of each patient, for evaluations that must count each patient once.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

SPLIT_NAMES = ("train", "val", "test")


@dataclass(frozen=True)
class Split:
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray

    def as_dict(self) -> dict[str, list[int]]:
        return {name: getattr(self, name).tolist() for name in SPLIT_NAMES}


def stratified_group_split(labels: Sequence[float], group_keys: Sequence[Optional[str]], *,
                           fractions: tuple[float, float, float] = (0.70, 0.15, 0.15), seed: int = 0,
                           one_per_patient: bool = False) -> Split:
    """Indices into ``labels`` for train, val and test; labels are 0/1 (unknown labels filtered out first)."""
    labels = np.asarray(labels, dtype=np.float64)
    if len(group_keys) != labels.size:
        raise ValueError(f"{labels.size} labels but {len(group_keys)} group keys")
    if not np.isin(labels, (0.0, 1.0)).all():
        raise ValueError("labels must be 0 or 1; drop unknown (NaN) labels before splitting")
    if len(fractions) != 3 or min(fractions) < 0 or abs(sum(fractions) - 1.0) > 1e-9:
        raise ValueError(f"fractions must be three non-negative numbers summing to 1, got {fractions}")
    groups: dict[str, list[int]] = {}
    for i, key in enumerate(group_keys):
        groups.setdefault(key if key else f"\x00record-{i}", []).append(i)
    members = list(groups.values())
    if one_per_patient:
        members = [m[:1] for m in members]
    group_label = np.array([labels[m].max() for m in members])
    rng = np.random.default_rng(seed)
    parts: list[list[int]] = [[], [], []]
    for stratum in (0.0, 1.0):
        chosen = np.flatnonzero(group_label == stratum)
        chosen = chosen[rng.permutation(chosen.size)]
        n = chosen.size
        n_train = int(round(fractions[0] * n))
        n_val = int(round(fractions[1] * n))
        n_val = min(n_val, n - n_train)
        cuts = (chosen[:n_train], chosen[n_train:n_train + n_val], chosen[n_train + n_val:])
        for part, picked in zip(parts, cuts):
            part.extend(picked.tolist())
    indices = [np.array(sorted(i for g in part for i in members[g]), dtype=np.int64) for part in parts]
    return Split(*indices)
