"""Rules the 1.0.1 text states and the SDK must keep: one JSON text in /metadata, byte order is part
of a dtype, and 1.1.0 clauses do not apply to files that declare 1.0.x."""
import shutil

import h5py
import numpy as np
import pytest

import neural_format as nf
from neural_format.collections.synthetic import synthetic_meta, synthetic_records


@pytest.fixture(scope="module")
def valid_file(tmp_path_factory):
    meta = synthetic_meta(feature_dim=4)
    records = list(synthetic_records(6, meta, seed=2, patches=(3, 6), entities=(2, 4)))
    return nf.write_collection(tmp_path_factory.mktemp("t") / "c.h5", meta, records, fsync=False)


def _copy(source, tmp_path, name="c.h5"):
    path = tmp_path / name
    shutil.copy(source, path)
    return path


def _replace(f, path, data):
    attrs = dict(f[path].attrs)
    del f[path]
    f.create_dataset(path, data=data)
    for key, value in attrs.items():
        f[path].attrs[key] = value


@pytest.mark.parametrize("prefix, suffix, valid", [
    (b"", b"", True), (b" \n", b"\r\n\t ", True),        # JSON whitespace around the one text
    (b"\xef\xbb\xbf", b"", False),                         # a byte order mark
    (b"", b"\x00\x00", False),                             # NUL padding
    (b"", b" {}", False),                                  # a second JSON text
])
def test_metadata_is_exactly_one_json_text(valid_file, tmp_path, prefix, suffix, valid):
    path = _copy(valid_file, tmp_path)
    with h5py.File(path, "r+") as f:
        blob = prefix + f["/metadata"][()].tobytes() + suffix
        _replace(f, "/metadata", np.frombuffer(blob, np.uint8))
    report = nf.validate(path)
    assert ("NF-M001" not in report.codes) == valid, report.to_text()


def test_big_endian_dataset_breaks_s002(valid_file, tmp_path):
    path = _copy(valid_file, tmp_path)
    with h5py.File(path, "r+") as f:
        _replace(f, "/patches/scores", f["/patches/scores"][()].astype(">f4"))
    assert "NF-S002" in nf.validate(path).codes


def test_clauses_of_1_1_apply_only_to_files_declaring_1_1(tmp_path):
    meta = synthetic_meta(feature_dim=4)
    records = list(synthetic_records(4, meta, seed=2, patches=3))
    records[0].patch_positions = np.array([[0, 0], [0, 1], [0, 2]], np.int32)
    records[0].patch_edges = np.array([[0, 1], [1, 0], [1, 2]], np.int32)  # (1, 2) without its reverse
    path = nf.write_collection(tmp_path / "c.h5", meta, records, fsync=False)
    declared_1_1 = nf.validate(path)
    assert "NF-R018" in declared_1_1.codes and declared_1_1.ok and declared_1_1.exit_code == 1
    with h5py.File(path, "r+") as f:
        f.attrs["format_version"] = "1.0.0"
    declared_1_0 = nf.validate(path)
    assert "NF-R018" not in declared_1_0.codes and declared_1_0.exit_code == 0, declared_1_0.to_text()
    assert any(s.startswith("NF-R018") for s in declared_1_0.skipped)


@pytest.mark.parametrize("edges, relations, types, expected", [
    ([[0, 1], [1, 0], [1, 2], [2, 1]], [[0, 1], [1, 0]], [0, 0], set()),   # a reversed relation is another relation
    ([[0, 1], [1, 0], [0, 1]], [[0, 1]], [0], {"NF-R018"}),                 # an edge stored twice
    ([[0, 1], [1, 0], [2, 2]], [[0, 1]], [0], {"NF-R018"}),                 # a patch self-loop
    ([[0, 1], [1, 0]], [[0, 1], [0, 1]], [0, 0], {"NF-R019"}),              # a relation stored twice
    ([[0, 1], [1, 0]], [[1, 1]], [0], {"NF-R019"}),                         # a relation self-loop
    ([[0, 1], [1, 0]], [[0, 1], [0, 1]], [0, 1], set()),                    # same pair, another type
])
def test_edge_conventions(tmp_path, edges, relations, types, expected):
    meta = synthetic_meta(feature_dim=4).model_copy(update={"adjacency": "custom", "relation_types": ["a", "b"]})
    records = list(synthetic_records(2, meta, seed=4, patches=3, entities=3))
    records[1].patch_edges = np.array(edges, np.int32)
    records[1].relations = np.array(relations, np.int32)
    records[1].relation_types = np.array(types, np.int16)
    path = nf.write_collection(tmp_path / "e.h5", meta, records, fsync=False)
    codes = nf.validate(path).codes & {"NF-R018", "NF-R019"}
    assert codes == expected
