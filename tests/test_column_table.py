"""The column table (layout.COLUMNS + STRING_COLUMN_TABLE) drives the writer, the reader and the hash.

Checks that the table covers every Record field and every canonical hash field (in Appendix B's
order), that the writer's batches hold exactly the columns the metadata makes present (a column
absent by metadata is missing from the batch and the file; a present column may have zero rows),
and that the record path, the bulk path and the column hash agree on such files, including the
format 1.1.0 column ``/records/entity_text_known``.
"""
from dataclasses import fields

import h5py
import numpy as np
import pytest

import neural_format as nf
from neural_format.format import layout
from neural_format.format.hashing import CANONICAL_FIELDS, column_digests, record_digest, record_preimage
from neural_format.format.record import Record
from neural_format.format.record_columns import batch_columns
from neural_format.collections.synthetic import synthetic_meta, synthetic_records


def test_table_maps_every_record_field_and_hash_field_once():
    mapped = {c.field.partition(".")[0] for c in layout.ALL_COLUMNS if c.field}
    assert mapped == {f.name for f in fields(Record)}
    hashed = [c.hash_as for c in layout.ALL_COLUMNS if c.hash_as]
    assert sorted(hashed) == sorted(CANONICAL_FIELDS) and len(set(hashed)) == len(hashed)
    assert layout.STRING_COLUMNS == {"/records/id": ("records", layout.Presence.ALWAYS),
                                     "/records/report": ("records", layout.Presence.ALWAYS),
                                     "/records/group_key": ("records", layout.Presence.ALWAYS),
                                     "/entities/text": ("entities", layout.Presence.HAS_ENTITY_TEXT)}
    paths = {c.path for c in layout.ALL_COLUMNS} | {f"{layout.TABLES[t][0]}/offsets" for t in layout.RAGGED_TABLES}
    assert set(layout.WRITE_ORDER) <= paths and len(set(layout.WRITE_ORDER)) == len(layout.WRITE_ORDER)
    # the digest is appended last, after every column (a column added later needs no entry: the
    # conformance fixtures, compared byte for byte, hold the listed order)
    assert "/records/sha256" not in layout.WRITE_ORDER


def _bare_meta():
    return synthetic_meta(feature_dim=4).model_copy(update={"has_positions": False, "has_entity_text": False})


def _bare(record):
    record.patch_positions = record.geometry = record.entity_text = None
    return record


CASES = {
    # (meta, records): absent by metadata (no positions/tiles/entity text/features) ...
    "bare": lambda: (_bare_meta(), [_bare(r) for r in synthetic_records(4, _bare_meta(), seed=1, patches=(0, 3))]),
    # ... and everything present, entity text partly unknown, some tables with zero rows
    "full": lambda: (synthetic_meta(feature_dim=4, entity_feature_dim=3, tiles=True)
                     .model_copy(update={"entity_text_partial": True}), None),
}


def _case(name):
    meta, records = CASES[name]()
    if records is None:
        records = list(synthetic_records(5, meta, seed=2, patches=(0, 3), entities=(0, 3)))
        records[1].entity_text = None
        records[2].patch_features = records[2].patch_features[:0]  # present column, zero rows
        records[2].patch_scores = records[2].patch_scores[:0]
        records[2].patch_positions = records[2].patch_positions[:0]
        records[2].tiles = records[2].tiles[:0]
        records[2].patch_edges = np.zeros((0, 2), np.int32)
        records[2].bridge = None
    return meta, records


@pytest.mark.parametrize("name", sorted(CASES))
def test_batches_hold_exactly_the_present_columns_and_every_path_agrees(tmp_path, name):
    meta, records = _case(name)
    path = nf.write_collection(tmp_path / f"{name}.h5", meta, records, fsync=False)
    present = {c.path for c in layout.present_columns(meta) if c.codec is not layout.Codec.DIGEST}
    present |= set(layout.present_string_columns(meta))
    with nf.open(path) as reader:
        normal = [reader._record(i) for i in range(len(reader))]
        batch = batch_columns(reader.meta, normal, lambda _path, parts: np.concatenate(parts))
        offsets = {f"{layout.TABLES[t][0]}/offsets" for t in layout.RAGGED_TABLES}
        assert set(batch) == present | offsets
        listed = [p for p in layout.WRITE_ORDER if p in batch]
        assert list(batch) == listed  # the append order of the 1.0.0 writer
        bulk = reader.read_all()
        stored = [bytes(h) for h in reader.stored_hashes()]
        assert column_digests(reader.read_columns(0, len(reader))) == stored
        assert column_digests(batch) == stored
    assert [record_digest(r) for r in records] == stored
    assert [record_preimage(r) for r in bulk] == [record_preimage(r) for r in normal]
    assert [r.entity_text for r in bulk] == [r.entity_text for r in records]
    with h5py.File(path, "r") as f:
        for column in layout.COLUMNS + layout.STRING_COLUMN_TABLE:  # absent by metadata: not in the file
            assert (column.path in f) == (column.path in present or column.codec is layout.Codec.DIGEST)
    if name == "bare":  # a column absent by metadata hashes as absent ...
        assert b"patch_positions\x00absent\x00" in record_preimage(bulk[0])
        assert b"entity_text\x00absent\x00" in record_preimage(bulk[0])
    else:  # ... a present column with zero rows hashes its dtype and shape (0, ...)
        assert b"patch_positions\x00<i4\x00" + np.array([0, 2], "<i8").tobytes() in record_preimage(bulk[2])
        assert b"entity_text\x00absent\x00" in record_preimage(bulk[1])  # unknown (entity_text_known 0)
        assert bulk[1].entity_text is None and normal[1].entity_text is None


def test_writer_checks_a_table_field_it_has_no_hand_written_check_for(monkeypatch, tmp_path):
    """A column added to the table is shape-checked (NF-W001) by the writer's generic step: here a
    stand-in column storing patch_scores as pairs, which the 1-D scores do not fit."""
    meta = synthetic_meta(feature_dim=4)
    records = list(synthetic_records(2, meta, seed=3, patches=(2, 3)))
    extra = layout.Column("patches", "extra", ("<f4",), layout.Trailing.PAIR, field="patch_scores")
    monkeypatch.setattr(layout, "COLUMNS", layout.COLUMNS + (extra,))
    with pytest.raises(nf.NeuralFormatError) as caught:
        nf.write_collection(tmp_path / "x.h5", meta, records, fsync=False)
    assert caught.value.code == "NF-W001" and "patch_scores" in str(caught.value)
    assert not (tmp_path / "x.h5").exists()


def test_the_writer_fits_each_array_field_by_its_table_rule(tmp_path):
    """writer._normalise is one loop over the table's array columns (Column.fit, Column.missing):
    each rule's NF-W001 names the field with the expected and found values of the 1.0 writer."""
    meta = synthetic_meta(feature_dim=4, entity_feature_dim=3, tiles=True)
    [record] = synthetic_records(1, meta, seed=5, patches=(3, 3), entities=(2, 2))
    P, M = record.num_patches, record.num_entities

    def refused(**change):
        with pytest.raises(nf.SchemaError) as caught:
            nf.write_collection(tmp_path / "x.h5", meta, [Record(**{**vars(record), **change})], fsync=False)
        error = caught.value
        assert error.code == "NF-W001" and not (tmp_path / "x.h5").exists()
        return error.location.rsplit("/", 1)[1], error.expected, error.found

    assert refused(patch_scores=np.zeros(P + 1)) == ("patch_scores", (P,), (P + 1,))           # CAST
    assert refused(labels=[0.0, 1.0]) == ("labels", (1,), (2,))                                # CAST, per record
    assert refused(entity_types=np.zeros(M, np.float32))[1:] == ("integer dtype int16", np.dtype("float32"))
    assert refused(relation_types=np.zeros(len(record.relation_types) + 1, np.int16))[0] == "relation_types"
    assert refused(tiles=None) == ("tiles", "tiles (collection declares tile_shape)", None)      # Column.missing
    assert refused(entity_features=None) == ("entity_features", f"({M}, 3)", None)             # default: the shape
    assert refused(patch_positions=record.patch_positions[:-1]) == ("patch_positions", P, P - 1)  # count column's rows
    assert refused(patch_features=np.zeros((P, 5), np.float32))[:2] == ("patch_features", "shape (n, 4)")
    # FLAT: an edge or code list in any shape that reshapes to (-1, *trailing) is taken
    flat = Record(**{**vars(record), "patch_edges": [0, 1, 1, 0],
                     "entity_assertions": list(np.asarray(record.entity_assertions))})
    nf.write_collection(tmp_path / "ok.h5", meta, [flat], fsync=False)
    with nf.open(tmp_path / "ok.h5") as reader:
        back = reader[0]
    assert back.patch_edges.tolist() == [[0, 1], [1, 0]]
    assert back.patch_edges.dtype == np.int32 and back.entity_assertions.dtype == np.int8
