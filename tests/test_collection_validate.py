"""Validator manifest checks NF-C001..NF-C010: one broken collection per clause, and a clean one."""
import json
import shutil

import h5py
import pytest

import neural_format as nf
from neural_format.collections.collection import append_shard, write_manifest_for
from neural_format.collections.manifest import collection_sha256, read_manifest, write_manifest
from neural_format.cli.verify_cmd import verify_collection
from neural_format.format.metadata import Manifest
from neural_format.collections.synthetic import synthetic_meta, synthetic_records
from neural_format.validation.runner import validate_manifest
from neural_format.validation.clauses import CLAUSES

META = synthetic_meta(feature_dim=8)
RECORDS = list(synthetic_records(24, META, seed=2, patches=(1, 6), entities=(0, 4)))


def _collection(tmp_path, name="coll"):
    directory = tmp_path / name
    for a, b in ((0, 8), (8, 16), (16, 24)):
        append_shard(directory, RECORDS[a:b], META)
    return directory


def _edit_manifest(directory, change, rehash=True):
    data = json.loads((directory / "manifest.json").read_text())
    change(data)
    manifest = Manifest.model_validate(data)
    if rehash:
        manifest = manifest.model_copy(update={"collection_sha256": collection_sha256(manifest)})
    write_manifest(directory, manifest)


def _codes(directory, **kwargs):
    kwargs.setdefault("shards", False)  # manifest checks only; shard files are validated in the tests that need it
    return {f.code for f in validate_manifest(directory, **kwargs).findings if f.code != "NF-P001"}


def test_clean_collection_has_no_findings(tmp_path):
    report = validate_manifest(_collection(tmp_path))
    assert report.ok and report.records == 24
    assert not [f for f in report.findings if f.code.startswith("NF-C")]


def test_c001_manifest_not_json(tmp_path):
    directory = _collection(tmp_path)
    (directory / "manifest.json").write_text('{"format": "neural-graph-manifest"')
    assert _codes(directory) == {"NF-C001"}
    assert _codes(tmp_path) == {"NF-C001"}  # no manifest at all


def test_c002_escaping_and_missing_paths(tmp_path):
    directory = _collection(tmp_path)
    names = [e.path for e in read_manifest(directory).shards]
    shutil.move(directory / names[2], tmp_path / names[2])
    _edit_manifest(directory, lambda d: d["shards"][2].update(path="../" + names[2]))
    (directory / names[1]).unlink()
    report = validate_manifest(directory, shards=False)
    messages = sorted(f.message for f in report.findings if f.code == "NF-C002")
    assert messages == ["shard path escapes the collection directory", "shard path is missing"]


def test_c003_tampered_shard_bytes(tmp_path):
    directory = _collection(tmp_path)
    shard = directory / read_manifest(directory).shards[0].path
    with h5py.File(shard, "r+") as f:
        f["/patches/scores"][0] += 1.0
    codes = _codes(directory, shards=True)
    assert {"NF-C003", "NF-I001"} <= codes  # file hash, and the shard's own record-hash check
    assert "NF-C003" not in _codes(directory, hashes=False)


def test_c004_shard_from_another_collection(tmp_path):
    directory = _collection(tmp_path)
    other = _collection(tmp_path, "other")
    manifest = read_manifest(directory)
    names = [e.path for e in manifest.shards]
    shutil.copy(other / read_manifest(other).shards[1].path, directory / names[1])
    write_manifest_for(directory, names, collection_id=manifest.collection_id)
    report = validate_manifest(directory, shards=False)
    assert _codes(directory) == {"NF-C004"}
    assert any("another collection" in f.message for f in report.findings)


def test_c005_entry_differs_from_shard(tmp_path):
    directory = _collection(tmp_path)
    _edit_manifest(directory, lambda d: d["shards"][1].update(last_id="rec-999999"))
    assert _codes(directory) == {"NF-C005"}
    _edit_manifest(directory, lambda d: d["shards"][1].update(ids_sha256="0" * 64, last_id="rec-000015"))
    assert _codes(directory) == {"NF-C005"}


def test_c006_duplicate_ids_across_shards(tmp_path):
    directory = _collection(tmp_path)
    append_shard(directory, RECORDS[3:5], META, check_duplicates=False)
    report = validate_manifest(directory, shards=False)
    assert _codes(directory) == {"NF-C006"}
    assert sum(f.code == "NF-C006" for f in report.findings) == 2


def test_c007_collection_hash(tmp_path):
    directory = _collection(tmp_path)
    _edit_manifest(directory, lambda d: d.update(collection_sha256="a" * 64), rehash=False)
    assert _codes(directory) == {"NF-C007"}


@pytest.mark.parametrize("field, value", [("format_version", "1.0.1"), ("created", "2026-01-02T00:00:00Z"),
                                          ("collection_id", "f" * 32)])
def test_c007_collection_hash_covers_top_level_fields(tmp_path, field, value):
    directory = _collection(tmp_path)
    _edit_manifest(directory, lambda d: d.update({field: value}), rehash=False)
    assert "NF-C007" in _codes(directory)
    result = verify_collection(directory, file_hashes=False)
    assert not result["ok"] and "NF-C007" in {p["code"] for p in result["problems"]}


@pytest.mark.skipif("NF-C008" not in CLAUSES, reason="clause not in the table")
def test_c008_mixed_versions(tmp_path):
    directory = _collection(tmp_path)
    _edit_manifest(directory, lambda d: d["shards"][0].update(format_version="1.0.0"))  # the shard declares 1.1.0
    assert _codes(directory) == {"NF-C008"}
    shard = directory / read_manifest(directory).shards[2].path
    with h5py.File(shard, "r+") as f:
        f.attrs["format_version"] = "2.0.0"
    codes = _codes(directory)
    assert {"NF-C008", "NF-C003"} <= codes


@pytest.mark.skipif("NF-C009" not in CLAUSES, reason="clause not in the table")
def test_c009_incompatible_metadata(tmp_path):
    directory = _collection(tmp_path)
    manifest = read_manifest(directory)
    names = [e.path for e in manifest.shards]
    wide = synthetic_meta(feature_dim=16)
    wide = wide.model_copy(update={"shard": nf.CollectionReader(directory / names[1]).meta.shard})
    (directory / names[1]).unlink()
    fresh = list(synthetic_records(3, wide, seed=7))
    for k, record in enumerate(fresh):
        record.record_id = f"wide-{k}"
    nf.write_collection(directory / names[1], wide, fresh)
    write_manifest_for(directory, names, collection_id=manifest.collection_id)
    report = validate_manifest(directory, shards=False)
    assert _codes(directory) == {"NF-C009"}
    assert "patch_feature_dim" in next(f.message for f in report.findings if f.code == "NF-C009")


@pytest.mark.skipif("NF-C010" not in CLAUSES, reason="clause not in the table")
def test_c010_orphans_are_warnings(tmp_path):
    directory = _collection(tmp_path)
    nf.write_collection(directory / "shard-00009-orphan.h5", META, RECORDS[:1])
    (directory / ".shard-00010.h5.abc.partial").write_bytes(b"")
    report = validate_manifest(directory, shards=False)
    assert _codes(directory) == {"NF-C010"} and report.ok and report.exit_code == 1
