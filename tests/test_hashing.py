"""The canonical record hash (NF-I001): the per-record reference and the columnar fast path agree.

:func:`~neural_format.format.hashing.record_digest` is the reference; the writer and the validator use
:func:`~neural_format.format.hashing.column_digests`, which must give the same bytes for every record,
including the cases its vectorised passes treat specially: NaN payloads, non-native byte order,
float16, wide (directly hashed) columns and absent fields.
"""
import dataclasses

import numpy as np
import pytest

import neural_format as nf
from neural_format.format.hashing import _has_nan, column_digests, record_digest
from neural_format.collections.synthetic import synthetic_meta, synthetic_records


@pytest.mark.parametrize("kwargs", [
    {}, {"tiles": True}, {"axes": 3}, {"entity_feature_dim": 8, "dtype": "float16"},
    {"label_names": ("a", "b", "c")}, {"feature_dim": 1024, "entity_feature_dim": 1024},
])
def test_column_digests_equal_record_digests(tmp_path, kwargs):
    meta = synthetic_meta(**kwargs)
    records = list(synthetic_records(40, meta, seed=11))
    nan_payload = np.array([0x7FC00001], np.uint32).view(np.float32)[0]  # a NaN other than numpy's
    records[0] = dataclasses.replace(records[0], labels=np.full(len(records[0].labels), nan_payload, np.float32))
    if records[1].num_patches:
        scores = records[1].patch_scores.copy()
        scores[0] = np.nan
        records[1] = dataclasses.replace(records[1], patch_scores=scores)
    records[2] = dataclasses.replace(records[2], bridge=None, report=None, report_source=None, group_key=None)
    path = nf.write_collection(tmp_path / "c.h5", meta, records, fsync=False)
    with nf.open(path) as reader:
        stored = [bytes(h) for h in reader.stored_hashes()]
        assert stored == [record_digest(r) for r in records]
        for start, stop in [(0, 40), (3, 17), (9, 9)]:
            columns = reader.read_columns(start, stop)
            assert column_digests(columns) == stored[start:stop]
            assert column_digests(columns) == [record_digest(r) for r in reader.records_from_columns(columns)]


def test_byte_order_and_nan_payloads_do_not_change_the_digest():
    meta = synthetic_meta(feature_dim=300)  # wide enough to be hashed in place
    record = next(iter(synthetic_records(1, meta, seed=3)))
    features = record.patch_features.copy()
    features[0, 0] = np.nan
    other_nan = features.copy()
    other_nan.view(np.uint32)[0, 0] = 0xFFC12345  # negative NaN with a payload
    a = record_digest(dataclasses.replace(record, patch_features=features))
    assert a == record_digest(dataclasses.replace(record, patch_features=other_nan))
    assert a == record_digest(dataclasses.replace(record, patch_features=features.astype(">f4")))
    assert a == record_digest(dataclasses.replace(record, patch_features=np.asfortranarray(features)))
    assert a != record_digest(record)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_bitwise_nan_scan(dtype):
    values = np.linspace(-3, 3, 5000).astype(dtype)
    assert not _has_nan(values)
    values[-1] = np.inf
    values[0] = -np.inf
    assert not _has_nan(values)  # infinities are not NaN
    for where in (0, 2500, 4999):
        with_nan = values.copy()
        with_nan[where] = np.nan
        assert _has_nan(with_nan)
        assert _has_nan(-with_nan)  # the sign bit does not hide a NaN
    small = np.array([1.0, np.nan], dtype)
    assert _has_nan(small) and not _has_nan(small[:1])


def test_reused_buffers_give_the_same_columns(tmp_path):
    meta = synthetic_meta(feature_dim=4096)  # wide enough for the buffered path
    records = list(synthetic_records(40, meta, seed=6, patches=(20, 40)))
    path = nf.write_collection(tmp_path / "c.h5", meta, records, fsync=False)
    buffers: dict = {}
    with nf.open(path) as reader:
        for start, stop in [(0, 20), (20, 40), (5, 35)]:
            reused = reader.read_columns(start, stop, buffers=buffers)["/patches/features"].copy()
            np.testing.assert_array_equal(reused, reader.read_columns(start, stop)["/patches/features"])
        assert "/patches/features" in buffers


def test_file_sha256_is_hashlib_file_digest_with_a_310_fallback(tmp_path, monkeypatch):
    import hashlib

    from neural_format.format.hashing import file_sha256
    data = bytes(range(256)) * 40_000  # > one 4 MiB block of the fallback
    path = tmp_path / "blob"
    path.write_bytes(data)
    expected = hashlib.sha256(data).hexdigest()
    assert file_sha256(path) == expected
    monkeypatch.delattr(hashlib, "file_digest", raising=False)  # Python 3.10 has none
    assert file_sha256(path) == expected
