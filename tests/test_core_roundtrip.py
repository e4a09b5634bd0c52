from dataclasses import replace

import numpy as np
import pytest

import neural_format as nf
from neural_format.collections.synthetic import synthetic_meta, synthetic_records


@pytest.mark.parametrize("kwargs", [
    {},
    {"axes": 3, "tiles": True, "entity_feature_dim": 16, "dtype": "float16"},
])
def test_write_then_read_equal(tmp_path, kwargs):
    meta = synthetic_meta(**kwargs)
    records = list(synthetic_records(60, meta, seed=1))
    path = nf.write_collection(tmp_path / "c.h5", meta, records)
    with nf.open(path) as reader:
        assert len(reader) == 60
        assert [r.record_id for r in reader] == [r.record_id for r in records]
        for original, stored in zip(records, reader.read_all()):
            assert original == stored
        assert reader[-1] == records[-1]
        assert reader[10:13] == records[10:13]
        assert reader.get("rec-000007") == records[7]


def test_writer_leaves_no_file_on_error(tmp_path):
    meta = synthetic_meta()
    target = tmp_path / "c.h5"
    with pytest.raises(RuntimeError):
        with nf.CollectionWriter(target, meta) as writer:
            writer.extend(synthetic_records(5, meta))
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def _geometry(**change):
    return lambda r: replace(r.geometry, **change)


@pytest.mark.parametrize("field, value", [
    ("patch_edges", lambda r: np.arange(5)),                       # an edge list of odd length
    ("relations", lambda r: [0, 1, 2]),
    ("patch_scores", lambda r: ["high"] * r.num_patches),          # not numbers
    ("patch_features", lambda r: [[1.0, 2.0], [3.0]]),             # ragged
    ("bridge", lambda r: ("a", "b")),
    ("bridge", lambda r: (0, 1, 2)),                               # a third index would be lost
    ("entity_text", lambda r: 5),
    ("geometry", lambda r: "28x25"),
    ("geometry.image_size", _geometry(image_size=("a", "b"))),
    ("geometry.patch_size", _geometry(patch_size=(8, 8, 8))),
    ("geometry.pixel_spacing", _geometry(pixel_spacing=("a", "b"))),
    ("report_source", lambda r: ["ground_truth"]),
    ("report", lambda r: 5),
    ("group_key", lambda r: 5),
])
def test_a_record_value_of_the_wrong_kind_is_nf_w001_not_a_numpy_error(tmp_path, field, value):
    """Whatever a record holds, the writer answers with the coded NF-W001 naming the field (issue 15:
    bad input never ends in a bare ValueError/TypeError from NumPy), and leaves no file."""
    meta = synthetic_meta(feature_dim=8)
    record = next(synthetic_records(1, meta, seed=0))
    attribute = field.partition(".")[0]
    bad = replace(record, **{attribute: value(record)})
    with pytest.raises(nf.SchemaError) as err:
        nf.write_collection(tmp_path / "c.h5", meta, [bad], fsync=False)
    assert err.value.code == "NF-W001"
    assert err.value.location == f"record {record.record_id!r}/{field}"
    assert list(tmp_path.iterdir()) == []


def test_duplicate_id_rejected(tmp_path):
    meta = synthetic_meta()
    record = next(synthetic_records(1, meta))
    with nf.CollectionWriter(tmp_path / "c.h5", meta) as writer:
        writer.append(record)
        with pytest.raises(nf.SchemaError) as err:
            writer.append(record)
    assert err.value.code == "NF-R002"


def test_patch_boxes_clip_at_edge():
    geometry = nf.Geometry.for_image((70, 50), (32, 32))
    assert geometry.grid_shape == (3, 2)
    record = nf.Record("r", np.zeros((2, 4), np.float32), np.zeros(2, np.float32),
                       patch_positions=np.array([[0, 0], [2, 1]], np.int32), geometry=geometry)
    assert record.patch_boxes().tolist() == [[0, 0, 32, 32], [64, 32, 70, 50]]


@pytest.mark.parametrize("holder_locking", [True, False])
def test_open_while_this_process_holds_the_file_through_h5py(tmp_path, holder_locking):
    """HDF5 shares one handle per file per process; a plain h5py.File (default locking) used to
    make nf.open fail with NF-F001. Both handles keep working after the other closes."""
    import h5py
    meta = synthetic_meta()
    records = list(synthetic_records(4, meta, seed=2))
    path = nf.write_collection(tmp_path / "held.h5", meta, records)
    holder = h5py.File(path, "r") if holder_locking else h5py.File(path, "r", locking=False)
    try:
        with nf.open(path) as reader:
            assert reader[2] == records[2]
        assert holder["records/id/offsets"][1] == len(records[0].record_id.encode())
    finally:
        holder.close()


def test_strings_at_positions_decode_or_name_the_bad_string(tmp_path):
    from neural_format.errors import SchemaError
    meta = synthetic_meta()
    records = list(synthetic_records(4, meta, seed=3))
    path = nf.write_collection(tmp_path / "ids.h5", meta, records)
    with nf.open(path) as reader:
        raw = bytes(reader.ids.data[()])
        in_memory = reader.ids.over(raw)
        order = [3, 0, 2, 2]
        assert in_memory.at(order) == reader.ids.at(order) == [records[i].record_id for i in order]
        start = int(reader.ids.offsets[1])
        damaged = reader.ids.over(raw[:start] + b"\xff" + raw[start + 1:])
        assert damaged.at([0, 2]) == [records[0].record_id, records[2].record_id]
        with pytest.raises(SchemaError) as caught:
            damaged.at([0, 1])
        assert caught.value.code == "NF-R014"


def test_a_wrong_index_or_a_non_record_is_a_coded_error(tmp_path):
    """reader["x"] / reader[1.5] raise NF-E-INDEX like reader[True] (an IndexTypeError, still a
    TypeError); the writer refuses an object that is not a Record with NF-W001, leaving no file."""
    from neural_format.errors import IndexTypeError
    meta = synthetic_meta(feature_dim=4)
    path = nf.write_collection(tmp_path / "c.h5", meta, synthetic_records(3, meta, seed=0), fsync=False)
    with nf.open(path) as reader:
        for key in ("rec-000000", 1.5, True, None):
            with pytest.raises(IndexTypeError) as err:
                reader[key]
            assert isinstance(err.value, TypeError) and err.value.code == "NF-E-INDEX"
        with pytest.raises(IndexError):
            reader[3]
        assert reader[np.int64(-1)] == reader[2]
    with pytest.raises(nf.SchemaError) as err:
        nf.write_collection(tmp_path / "d.h5", meta, [{"record_id": "a"}], fsync=False)
    assert err.value.code == "NF-W001" and err.value.found == "dict"
    assert not (tmp_path / "d.h5").exists()
