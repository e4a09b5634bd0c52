"""Stratified, patient-grouped train/validation/test split (default 70/15/15), seeded, by scikit-learn.

Rule: every record of one patient (same ``group_key``) lands in the SAME split, so no patient is
seen in training and in testing. Records without a ``group_key`` form a group of their own.
Groups are stratified by their label (a group counts as positive when any of its records is):
the split is made over the table of groups, one row per patient, with scikit-learn's
``train_test_split(stratify=group_label, random_state=seed)`` (a ``StratifiedShuffleSplit``):
first the test groups are drawn from all groups, then the validation groups from the rest. When
a class has too few groups to be stratified (fewer than two, or fewer than the part needs),
that cut is made unstratified (``GroupShuffleSplit``'s behaviour); a cut that would leave
nothing on one side puts everything in the larger part. ``one_per_patient=True`` additionally
keeps only the first record (in collection order) of each patient, for evaluations that must
count each patient once.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
import numpy.typing as npt
from . import optional_deps

SPLIT_NAMES = ("train", "val", "test")


@dataclass(frozen=True)
class Split:
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray

    def as_dict(self) -> dict[str, list[int]]:
        return {name: getattr(self, name).tolist() for name in SPLIT_NAMES}


def stratified_group_split(labels: npt.ArrayLike, group_keys: Sequence[Optional[str]], *,
                           fractions: tuple[float, float, float] = (0.70, 0.15, 0.15), seed: int = 0,
                           one_per_patient: bool = False) -> Split:
    """Indices into ``labels`` for train, val and test; labels are 0/1 (unknown labels filtered out first)."""
    values = np.asarray(labels, dtype=np.float64)
    if len(group_keys) != values.size:
        raise ValueError(f"{values.size} labels but {len(group_keys)} group keys")
    if not np.isin(values, (0.0, 1.0)).all():
        raise ValueError("labels must be 0 or 1; drop unknown (NaN) labels before splitting")
    if len(fractions) != 3 or min(fractions) < 0 or abs(sum(fractions) - 1.0) > 1e-9:
        raise ValueError(f"fractions must be three non-negative numbers summing to 1, got {fractions}")
    groups: dict[str, list[int]] = {}
    for i, key in enumerate(group_keys):
        groups.setdefault(key if key else f"\x00record-{i}", []).append(i)
    members = list(groups.values())
    if one_per_patient:
        members = [m[:1] for m in members]
    group_label = np.array([values[m].max() for m in members])
    everything = np.arange(len(members))
    share_test = fractions[2]
    share_val = fractions[1] / (fractions[0] + fractions[1]) if fractions[0] + fractions[1] > 0 else 1.0
    rest, test = _cut(everything, group_label, share_test, seed)
    train, val = _cut(rest, group_label[rest], share_val, seed)
    indices = [np.array(sorted(i for g in part for i in members[g]), dtype=np.int64) for part in (train, val, test)]
    return Split(*indices)


def _cut(groups: np.ndarray, group_label: np.ndarray, share: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(kept, drawn): ``share`` of ``groups`` drawn, stratified by ``group_label`` where it can be."""
    train_test_split = optional_deps.load("sklearn.model_selection", needed_by="the split").train_test_split
    empty = groups[:0]
    if share <= 0 or groups.size == 0:
        return groups, empty
    if share >= 1:
        return empty, groups
    for stratify in (group_label, None):
        try:
            kept, drawn = train_test_split(groups, test_size=share, stratify=stratify, random_state=seed)
        except ValueError:  # too few groups in a class (or in all) for this cut
            continue
        return np.sort(kept), np.sort(drawn)
    return (groups, empty) if share < 0.5 else (empty, groups)
