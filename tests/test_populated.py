"""Bulk-read destinations (neural_format.internals.populated): ordinary writable arrays, big or small."""
import gc
import mmap
import sys

import numpy as np

import neural_format as nf
from neural_format.internals.populated import MIN_BYTES, populated_empty
from neural_format.collections.synthetic import synthetic_meta, synthetic_records


def test_large_arrays_are_mapped_writable_and_independent():
    rows = MIN_BYTES // (4 * 256) + 3
    a = populated_empty((rows, 256), np.float32)
    b = populated_empty((rows, 256), np.float32)
    assert a.shape == (rows, 256) and a.dtype == np.float32 and a.flags.writeable and a.flags.c_contiguous
    a[:] = 1.5
    b[:] = -2.0
    assert float(a.sum()) == 1.5 * a.size and float(b.min()) == -2.0
    del a, b
    gc.collect()


def _owner(array):
    while isinstance(array, np.ndarray) and array.base is not None:
        array = array.base
    return array.obj if isinstance(array, memoryview) else array


def test_small_arrays_are_plain_numpy():
    small = populated_empty((3, 4), np.int16)
    assert small.shape == (3, 4) and small.dtype == np.int16 and small.base is None


def test_bulk_reads_through_populated_buffers_equal_record_reads(tmp_path):
    meta = synthetic_meta(feature_dim=2048)  # ~50 records cross the populated-buffer threshold
    records = list(synthetic_records(60, meta, seed=2, patches=(20, 40)))
    path = nf.write_collection(tmp_path / "c.h5", meta, records, fsync=False)
    with nf.open(path) as reader:
        columns = reader.read_columns(0, 60)
        assert columns["/patches/features"].nbytes >= MIN_BYTES
        if sys.platform.startswith("linux"):
            assert isinstance(_owner(columns["/patches/features"]), mmap.mmap)
        for original, bulk in zip(records, reader.read_all()):
            np.testing.assert_array_equal(bulk.patch_features, original.patch_features)
            assert bulk == original


def test_dead_arrays_regions_are_reused_within_the_cache_limit(monkeypatch):
    from neural_format.internals import populated
    if not sys.platform.startswith("linux"):
        return
    populated.release_cached()
    a = populated_empty((MIN_BYTES // 8 + 100,), np.float64)
    address = a.__array_interface__["data"][0]
    view = a[10:20]
    del a
    gc.collect()
    assert populated.cached_bytes() == 0  # a view keeps the region in use
    del view
    gc.collect()
    assert populated.cached_bytes() >= MIN_BYTES
    b = populated_empty((MIN_BYTES // 8 + 50,), np.float64)  # a similar size reuses the region
    assert b.__array_interface__["data"][0] == address and populated.cached_bytes() == 0
    b[:] = 3.0
    assert float(b.sum()) == 3.0 * b.size
    del b
    gc.collect()
    assert populated.release_cached() >= MIN_BYTES and populated.cached_bytes() == 0
    monkeypatch.setenv("NEURAL_FORMAT_BUFFER_CACHE", "0")
    c = populated_empty((MIN_BYTES // 8 + 100,), np.float64)
    del c
    gc.collect()
    assert populated.cached_bytes() == 0  # recycling off: the region is unmapped
