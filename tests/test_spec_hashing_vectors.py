"""Spec Appendix B: the committed test vectors, and a clean-room reader that follows only the appendix.

``spec/test-vectors/record-*.json`` give a record's stored values, its hashed pieces, the exact
pre-image in hex and the digest. The SDK must produce those bytes exactly. ``appendix_b.py``
(h5py + numpy + hashlib, nothing from the SDK) must produce them too, and must recompute every
stored digest of the conformance corpus, the golden files and SDK-written files.
"""
import datetime as dt
import hashlib
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

import neural_format as nf
from neural_format.format.hashing import column_digests, record_digest, record_preimage
from neural_format.format.metadata import CollectionMeta, Provenance, SoftwareRef
from neural_format.collections.synthetic import synthetic_meta, synthetic_records

ROOT = Path(__file__).resolve().parents[1]
VECTORS_DIR = ROOT / "spec" / "test-vectors"
VECTORS = sorted(VECTORS_DIR.glob("record-*.json"))


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"spec_vectors_{name}", VECTORS_DIR / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


appendix_b = _load("appendix_b")
vector_tools = _load("generate")


def _vector(path):
    return json.loads(path.read_text(encoding="utf-8"))


def _stored(vector):
    return {k: vector_tools.decode(v) for k, v in vector["stored"].items()}


def test_there_are_vectors_with_and_without_entities():
    names = {p.stem for p in VECTORS}
    assert {"record-with-entities", "record-without-entities"} <= names
    counts = {v["name"]: len(v["stored"]["entity_text"] or []) for v in map(_vector, VECTORS)}
    assert counts["record-with-entities"] > 0 and counts["record-without-entities"] == 0


@pytest.mark.parametrize("path", VECTORS, ids=lambda p: p.stem)
def test_vector_is_self_consistent(path):
    vector = _vector(path)
    preimage = bytes.fromhex(vector["preimage_hex"])
    assert b"".join(bytes.fromhex(p["hex"]) for p in vector["pieces"]) == preimage
    assert [p["field"] for p in vector["pieces"]][1:] == list(appendix_b.FIELDS)
    assert hashlib.sha256(preimage).hexdigest() == vector["sha256"]


@pytest.mark.parametrize("path", VECTORS, ids=lambda p: p.stem)
def test_sdk_pre_image_and_digest_match_the_vector_byte_for_byte(path):
    vector = _vector(path)
    record = vector_tools.to_record(vector["meta"], vector["stored"])
    assert record_preimage(record).hex() == vector["preimage_hex"]
    assert record_digest(record).hex() == vector["sha256"]


@pytest.mark.parametrize("path", VECTORS, ids=lambda p: p.stem)
def test_appendix_reader_matches_the_vector(path):
    vector = _vector(path)
    assert appendix_b.preimage(_stored(vector), vector["meta"]).hex() == vector["preimage_hex"]


def _meta_for(vector) -> CollectionMeta:
    stored = _stored(vector)
    provenance = Provenance(builder=SoftwareRef(name="test", version="0"), sdk=nf.sdk_ref(),
                            created=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc))
    return CollectionMeta(**vector["meta"], entity_types=["t0"], relation_types=["r0"],
                          label_names=[f"l{i}" for i in range(len(stored["labels"]))], provenance=provenance)


@pytest.mark.parametrize("path", VECTORS, ids=lambda p: p.stem)
def test_vector_written_to_a_file_stores_its_digest(tmp_path, path):
    vector = _vector(path)
    record = vector_tools.to_record(vector["meta"], vector["stored"])
    written = nf.write_collection(tmp_path / "v.h5", _meta_for(vector), [record], fsync=False)
    with nf.open(written) as reader:
        assert bytes(reader.stored_hashes()[0]).hex() == vector["sha256"]
    recomputed, stored = appendix_b.file_digests(written)
    assert [d.hex() for d in recomputed] == [d.hex() for d in stored] == [vector["sha256"]]


def _corpus_files():
    conformance = ROOT / "spec" / "conformance"
    files = sorted(conformance.glob("*.valid.h5")) + sorted(conformance.glob("NF-C*.valid/*.h5"))
    return files + sorted((ROOT / "spec" / "golden").rglob("*.h5"))


@pytest.mark.parametrize("path", _corpus_files(), ids=lambda p: str(p.relative_to(ROOT / "spec")))
def test_appendix_reader_recomputes_every_corpus_digest(path):
    if path.read_bytes()[:8] != b"\x89HDF\r\n\x1a\n":
        pytest.skip("not an HDF5 file")
    recomputed, stored = appendix_b.file_digests(path)
    assert recomputed == stored and stored


@pytest.mark.parametrize("kwargs", [
    {}, {"tiles": True}, {"axes": 3, "tiles": True}, {"entity_feature_dim": 8, "dtype": "float16"},
    {"label_names": ("a", "b", "c")},
])
def test_appendix_reader_recomputes_sdk_written_digests(tmp_path, kwargs):
    meta = synthetic_meta(**kwargs)
    records = list(synthetic_records(25, meta, seed=5))
    path = nf.write_collection(tmp_path / "s.h5", meta, records, fsync=False)
    recomputed, stored = appendix_b.file_digests(path)
    assert recomputed == stored == [record_digest(r) for r in records]


@pytest.mark.parametrize("changes", [{"has_positions": False, "tile_shape": None, "tile_dtype": None},
                                     {"has_entity_text": False}])
def test_appendix_reader_on_files_without_optional_columns(tmp_path, changes):
    base = synthetic_meta()
    meta = base.model_copy(update=changes)
    records = []
    for r in synthetic_records(12, base, seed=9):
        if not meta.has_positions:
            r.patch_positions, r.geometry, r.patch_edges = None, None, np.zeros((0, 2), np.int32)
        if not meta.has_entity_text:
            r.entity_text = None
        records.append(r)
    path = nf.write_collection(tmp_path / "o.h5", meta, records, fsync=False)
    recomputed, stored = appendix_b.file_digests(path)
    assert recomputed == stored
    with nf.open(path) as reader:
        assert column_digests(reader.read_columns(0, len(reader))) == stored


def _spec_examples() -> dict[str, list[tuple[str, str]]]:
    """The pieces printed in spec Appendix B.5, per vector file name."""
    text = (ROOT / "spec" / "neural-format-1.0.md").read_text(encoding="utf-8")
    section = text[text.index("<!-- BEGIN B.5 VECTORS"):text.index("<!-- END B.5 VECTORS -->")]
    examples, name, pieces, inside = {}, None, [], False
    for line in section.splitlines():
        if line.startswith("**") and "(`record-" in line:
            name = line.split("(`")[1].split(".json")[0]
        elif line.startswith("```"):
            inside = not inside
            if not inside:
                examples[name], pieces = pieces, []
        elif inside:
            field, _, hexs = line.partition(" ")
            if field:
                pieces.append((field, hexs.strip()))
            else:
                pieces[-1] = (pieces[-1][0], pieces[-1][1] + line.strip())
    return examples


def test_spec_worked_examples_are_the_vectors():
    examples = _spec_examples()
    assert {"record-with-entities", "record-without-entities"} <= set(examples)
    for name, pieces in examples.items():
        vector = _vector(VECTORS_DIR / f"{name}.json")
        assert pieces == [(p["field"], p["hex"]) for p in vector["pieces"]] + [("SHA-256", vector["sha256"])]
