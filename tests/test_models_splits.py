"""neural_models.splits: 70/15/15, stratified, patients never straddle splits, seeded."""
import numpy as np
import pytest

from neural_models.splits import stratified_group_split


def _data(n=400, seed=0):
    rng = np.random.default_rng(seed)
    groups = [f"p{i // 3}" if i % 5 else None for i in range(n)]  # mostly 3 records per patient
    patient_label = {g: float(rng.random() < 0.3) for g in groups if g}
    labels = [patient_label[g] if g else float(rng.random() < 0.3) for g in groups]
    return np.array(labels), groups


def test_partition_sizes_and_stratification():
    labels, groups = _data()
    split = stratified_group_split(labels, groups, seed=1)
    everything = np.concatenate([split.train, split.val, split.test])
    assert sorted(everything.tolist()) == list(range(labels.size))  # a partition
    sizes = np.array([len(split.train), len(split.val), len(split.test)]) / labels.size
    assert np.allclose(sizes, [0.70, 0.15, 0.15], atol=0.03)
    overall = labels.mean()
    for part in (split.train, split.val, split.test):
        assert abs(labels[part].mean() - overall) < 0.06


def test_patients_stay_in_one_split():
    labels, groups = _data()
    split = stratified_group_split(labels, groups, seed=2)
    where = {}
    for name, part in zip(("train", "val", "test"), (split.train, split.val, split.test)):
        for i in part:
            if groups[i]:
                where.setdefault(groups[i], set()).add(name)
    assert where and all(len(s) == 1 for s in where.values())


def test_seeded_and_seed_sensitive():
    labels, groups = _data()
    a = stratified_group_split(labels, groups, seed=5).as_dict()
    assert a == stratified_group_split(labels, groups, seed=5).as_dict()
    assert a != stratified_group_split(labels, groups, seed=6).as_dict()


def test_one_per_patient_keeps_first_record():
    labels, groups = _data()
    split = stratified_group_split(labels, groups, seed=0, one_per_patient=True)
    kept = np.concatenate([split.train, split.val, split.test])
    keys = [groups[i] for i in kept if groups[i]]
    assert len(keys) == len(set(keys))
    assert all(i == groups.index(groups[i]) for i in kept if groups[i])


def test_rejects_unknown_labels():
    with pytest.raises(ValueError, match="NaN"):
        stratified_group_split([0.0, np.nan], ["a", "b"])


@pytest.mark.parametrize("labels", [[1.0, 0, 0, 0, 0], [0.0, 0, 0], [1.0], [1.0, 0.0]])
def test_tiny_sets_still_partition(labels):
    """Too few groups to stratify (a class with one group): the cut falls back to unstratified."""
    groups = [None] * len(labels)
    split = stratified_group_split(labels, groups, seed=0)
    everything = sorted(np.concatenate([split.train, split.val, split.test]).tolist())
    assert everything == list(range(len(labels)))
    assert len(split.train) >= len(split.test)


def test_zero_fractions_leave_parts_empty():
    labels, groups = _data(100)
    split = stratified_group_split(labels, groups, fractions=(0.8, 0.0, 0.2), seed=0)
    assert len(split.val) == 0 and len(split.train) + len(split.test) == 100
