"""Memory-mapped columns (neural_format.internals.mapped_columns): exact bytes, or no mapping at all."""
import h5py
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from neural_format.internals import mapped_columns
from neural_format.internals.mapped_columns import Extent, dataset_extents, map_columns


@pytest.fixture(scope="module")
def h5(tmp_path_factory):
    """Datasets written in interleaved appends, so each is split over several extents."""
    path = tmp_path_factory.mktemp("mapped") / "c.h5"
    rng = np.random.default_rng(0)
    wide = rng.normal(size=(1000, 24)).astype(np.float32)
    narrow = rng.integers(-9, 9, size=(1000, 2)).astype(np.int32)
    with h5py.File(path, "w", libver=("earliest", "v108")) as f:
        w = f.create_dataset("wide", (0, 24), np.float32, maxshape=(None, 24), chunks=(64, 24))
        n = f.create_dataset("narrow", (0, 2), np.int32, maxshape=(None, 2), chunks=(100, 2))
        for a in range(0, 1000, 300):  # appends alternate between the two datasets
            b = min(1000, a + 300)
            w.resize((b, 24))
            w[a:b] = wide[a:b]
            n.resize((b, 2))
            n[a:b] = narrow[a:b]
            f.flush()  # allocate the chunks now, between the other dataset's
        f.create_dataset("contiguous", data=np.arange(50, dtype=np.int64))
        f.create_dataset("gzip", data=wide, chunks=(64, 24), compression="gzip")
        f.create_dataset("big_endian", data=narrow.astype(">i4"), chunks=(100, 2))
        f.create_dataset("partial_chunk", data=wide, chunks=(64, 8))
        sparse = f.create_dataset("unallocated", (1000,), np.float32, chunks=(100,))
        sparse[0:100] = 1.0  # the other nine chunks are never written: they read as fill values
        f.create_dataset("empty", (0, 3), np.float32, maxshape=(None, 3), chunks=(16, 3))
    return path, wide, narrow


def test_only_plain_storage_is_mapped(h5):
    path, wide, narrow = h5
    with h5py.File(path, "r") as f:
        assert len(dataset_extents(f["wide"])) > 1  # interleaved appends: several extents
        assert dataset_extents(f["contiguous"]) == [Extent(0, 50, f["contiguous"].id.get_offset())]
        for name in ("gzip", "big_endian", "partial_chunk", "unallocated"):
            assert dataset_extents(f[name]) is None, name
        assert dataset_extents(f["empty"]) == []
        mapped = map_columns(path, [f[k] for k in f])
        assert mapped["/gzip"] is None and mapped["/unallocated"] is None
        np.testing.assert_array_equal(mapped["/contiguous"][:], np.arange(50))
        assert mapped["/empty"][0:0].shape == (0, 3)


def test_slices_within_an_extent_are_read_only_views(h5):
    path, wide, _ = h5
    with h5py.File(path, "r") as f:
        column = map_columns(path, [f["wide"]])["/wide"]
    view = column[3:40]
    np.testing.assert_array_equal(view, wide[3:40])
    assert not view.flags.writeable and not view.flags.owndata
    with pytest.raises(IndexError):
        column[::2]


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_slices_gathers_and_runs_equal_the_source(h5, data):
    path, wide, narrow = h5
    with h5py.File(path, "r") as f:
        mapped = map_columns(path, [f["wide"], f["narrow"]])
    for name, source in (("/wide", wide), ("/narrow", narrow)):
        column = mapped[name]
        a = data.draw(st.integers(0, 1000))
        b = data.draw(st.integers(0, 1000))
        np.testing.assert_array_equal(column[a:b], source[a:b])
        rows = np.array(data.draw(st.lists(st.integers(0, 999), max_size=40)), np.int64)
        np.testing.assert_array_equal(column[rows], source[rows])
        # byte addresses: the rows' bytes in the file are the source rows' bytes
        raw = np.fromfile(path, np.uint8)
        for row, address in zip(rows.tolist(), column.addresses(rows).tolist()):
            assert raw[address:address + column.row_bytes].tobytes() == source[row].tobytes()


def test_out_of_range_gathers_raise(h5):
    path, _, _ = h5
    with h5py.File(path, "r") as f:
        column = map_columns(path, [f["narrow"]])["/narrow"]
    with pytest.raises(IndexError):
        column[np.array([0, 1000])]
    with pytest.raises(IndexError):
        column.addresses(np.array([-1]))
    with pytest.raises(IndexError):
        column[np.array([[0]])]


def test_an_extent_past_the_end_of_the_file_is_not_mapped(h5, monkeypatch):
    """A damaged chunk index must not map bytes the file does not have (touching them: SIGBUS)."""
    path, _, _ = h5
    size = path.stat().st_size
    monkeypatch.setattr(mapped_columns, "dataset_extents", lambda ds: [Extent(0, ds.shape[0], size - 8)])
    with h5py.File(path, "r") as f:
        assert map_columns(path, [f["wide"]])["/wide"] is None
