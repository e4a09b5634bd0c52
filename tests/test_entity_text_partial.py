"""Format 1.1.0, spec section 4.5: entity text known for some records, unknown for others.

``entity_text_partial`` + ``/records/entity_text_known``: an unknown record reads None (not empty
strings), stores one empty string per entity, and hashes its text as absent (Appendix B field 7).
A file without the column hashes exactly as before; NF-R021 guards the flag.
"""
import importlib.util
import json
from pathlib import Path

import h5py
import numpy as np
import pytest

import neural_format as nf
from neural_format.errors import SchemaError
from neural_format.format.hashing import column_digests, record_digest
from neural_format.collections.synthetic import synthetic_meta, synthetic_records

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("appendix_b_partial", ROOT / "spec" / "test-vectors" / "appendix_b.py")
appendix_b = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(appendix_b)


def _records(meta, unknown=(1, 3)):
    records = list(synthetic_records(6, meta, seed=4, patches=(2, 4), entities=(1, 3)))
    for i in unknown:
        records[i].entity_text = None
    records[5].entity_types = records[5].entity_types[:0]  # no entities, text unknown: allowed
    records[5].entity_assertions = records[5].entity_assertions[:0]
    records[5].entity_features = records[5].entity_features[:0] if records[5].entity_features is not None else None
    records[5].relations = np.zeros((0, 2), np.int32)
    records[5].relation_types = np.zeros(0, np.int16)
    records[5].bridge = None
    records[5].entity_text = None
    return records


@pytest.fixture()
def partial_file(tmp_path):
    meta = synthetic_meta(feature_dim=4).model_copy(update={"entity_text_partial": True})
    records = _records(meta)
    return nf.write_collection(tmp_path / "p.h5", meta, records, fsync=False), records


def test_unknown_text_reads_none_and_known_text_round_trips(partial_file):
    path, records = partial_file
    expected = [r.entity_text for r in records]
    assert expected[1] is None and expected[0] and expected[5] is None
    with nf.open(path, verify=True) as reader:
        assert reader.cols["/records/entity_text_known"][()].tolist() == [1, 0, 1, 0, 1, 0]
        assert [r.entity_text for r in reader] == expected
        assert [r.entity_text for r in reader.read_all()] == expected
        stored = [bytes(h) for h in reader.stored_hashes()]
        assert column_digests(reader.read_columns(0, len(reader))) == stored
    assert stored == [record_digest(r) for r in records]
    with h5py.File(path, "r") as f:  # one empty string per entity of an unknown record (NF-R021)
        offsets = f["/entities/text/offsets"][()]
        entities = f["/entities/offsets"][()]
        for i in (1, 3, 5):
            assert offsets[entities[i]] == offsets[entities[i + 1]]
            assert entities[i + 1] - entities[i] == records[i].num_entities
    report = nf.validate(path)
    assert report.ok and "NF-R021" not in report.codes and "NF-I001" not in report.codes, report.to_text()
    recomputed, on_file = appendix_b.file_digests(path)  # the clean-room reading of Appendix B
    assert recomputed == on_file == stored


def test_unknown_hashes_as_absent_and_a_file_without_the_column_hashes_as_before(tmp_path):
    meta = synthetic_meta(feature_dim=4)
    records = list(synthetic_records(4, meta, seed=8, entities=(2, 3)))
    plain = nf.write_collection(tmp_path / "plain.h5", meta, records, fsync=False)
    partial = nf.write_collection(tmp_path / "partial.h5", meta.model_copy(update={"entity_text_partial": True}),
                                  records, fsync=False)
    with nf.open(plain) as a, nf.open(partial) as b:
        assert (a.stored_hashes() == b.stored_hashes()).all()  # every record known: the same digests
    with h5py.File(plain, "r") as f:  # the field is left out while false: 1.0 readers read the metadata
        assert "entity_text_partial" not in json.loads(f["/metadata"][()].tobytes())
        assert "/records/entity_text_known" not in f
    unknown = records[0]
    unknown.entity_text = None
    without_text = meta.model_copy(update={"has_entity_text": False})
    no_text = nf.write_collection(tmp_path / "none.h5", without_text, [unknown], fsync=False)
    with nf.open(no_text) as reader:  # unknown = "absent" as when the whole collection has no text
        assert bytes(reader.stored_hashes()[0]) == record_digest(unknown)
    known_empty = nf.Record(**{**vars(unknown), "entity_text": [""] * unknown.num_entities})
    assert record_digest(known_empty) != record_digest(unknown)  # the flag is covered by the digest


def test_writer_and_metadata_refuse_what_the_format_cannot_say(tmp_path):
    meta = synthetic_meta(feature_dim=4)
    record = next(iter(synthetic_records(1, meta, seed=1, entities=2)))
    record.entity_text = None
    with pytest.raises(SchemaError) as error:  # unknown text needs entity_text_partial
        nf.write_collection(tmp_path / "x.h5", meta, [record], fsync=False)
    assert error.value.code == "NF-W001"
    with pytest.raises(ValueError, match="entity_text_partial needs has_entity_text"):
        nf.CollectionMeta.model_validate({**json.loads(meta.model_dump_json()), "has_entity_text": False,
                                          "entity_text_partial": True})


def _edit(path, tmp_path, name, edit):
    target = tmp_path / name
    target.write_bytes(Path(path).read_bytes())
    with h5py.File(target, "r+") as f:
        edit(f)
    return nf.validate(target)


def _set_flags(values):
    def edit(f):
        f["/records/entity_text_known"][...] = np.asarray(values, np.uint8)
    return edit


def test_flag_flips_and_bad_values_are_found(partial_file, tmp_path):
    path, _ = partial_file
    # an unknown record (empty strings) flipped to known: same strings, other digest
    report = _edit(path, tmp_path, "a.h5", _set_flags([1, 1, 1, 0, 1, 0]))
    assert set(report.codes) >= {"NF-I001"} and "NF-R021" not in report.codes
    # a known record with text flipped to unknown: text stored for it (NF-R021) and its digest
    report = _edit(path, tmp_path, "b.h5", _set_flags([0, 0, 1, 0, 1, 0]))
    assert {"NF-R021", "NF-I001"} <= set(report.codes)
    # a value other than 0 and 1
    report = _edit(path, tmp_path, "c.h5", _set_flags([2, 0, 1, 0, 1, 0]))
    assert "NF-R021" in report.codes
    assert any("neither 0 nor 1" in f.message for f in report.findings if f.code == "NF-R021")
    # the column missing while the metadata declares it
    report = _edit(path, tmp_path, "d.h5", lambda f: f.__delitem__("/records/entity_text_known"))
    assert "NF-S001" in report.codes and not report.ok


def test_clause_applies_to_files_declaring_1_1(partial_file, tmp_path):
    path, _ = partial_file

    def edit(f):
        _set_flags([2, 0, 1, 0, 1, 0])(f)
        f.attrs["format_version"] = "1.0.0"
    report = _edit(path, tmp_path, "old.h5", edit)
    assert "NF-R021" not in report.codes and any(s.startswith("NF-R021") for s in report.skipped)
