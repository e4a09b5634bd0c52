"""Golden files (spec section 10): every released format version's files stay readable, valid and intact.

``spec/golden/<version>/`` was written once by the SDK of that version and is never regenerated.
This SDK must read every record back as ``expected.json`` describes it, find no problem with the
validator, and recompute every stored digest (the SDK's and the clean-room Appendix B reader's).
"""
import hashlib
import importlib.util
import json
import warnings
from pathlib import Path

import numpy as np
import pytest

import neural_format as nf
from neural_format.format.hashing import record_digest
from neural_format.collections.manifest import collection_sha256, read_manifest

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "spec" / "golden"
VERSIONS = sorted(p for p in GOLDEN.iterdir() if p.is_dir())


def _appendix_b():
    spec = importlib.util.spec_from_file_location("golden_appendix_b", ROOT / "spec" / "test-vectors" / "appendix_b.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _floats(array):
    return [None if np.isnan(v) else float(v) for v in np.asarray(array, np.float64).reshape(-1)]


def _check_records(reader, expected: dict):
    assert json.loads(reader.meta.model_dump_json(exclude_none=True)) == expected["meta"]
    records = list(reader.read_all()) if hasattr(reader, "read_all") else list(reader)
    assert [r.record_id for r in records] == [e["record_id"] for e in expected["records"]]
    stored = [bytes(h).hex() for h in reader.stored_hashes()]
    for record, want, digest in zip(records, expected["records"], stored):
        assert digest == want["sha256"] == record_digest(record).hex()
        assert (record.num_patches, record.num_entities) == (want["num_patches"], want["num_entities"])
        assert _floats(record.patch_features) == want["patch_features"]
        assert _floats(record.patch_scores) == want["patch_scores"]
        assert (None if record.patch_positions is None else record.patch_positions.tolist()) == want["patch_positions"]
        assert record.patch_edges.tolist() == want["patch_edges"]
        tiles = None if record.tiles is None else hashlib.sha256(np.ascontiguousarray(record.tiles)).hexdigest()
        assert tiles == want["tiles_sha256"]
        assert record.entity_text == want["entity_text"]
        assert record.entity_types.tolist() == want["entity_types"]
        assert record.entity_assertions.tolist() == want["entity_assertions"]
        assert (None if record.entity_features is None else _floats(record.entity_features)) == want["entity_features"]
        assert record.relations.tolist() == want["relations"] and record.relation_types.tolist() == want["relation_types"]
        assert (None if record.bridge is None else list(record.bridge)) == want["bridge"]
        assert _floats(record.labels) == want["labels"]
        g = record.geometry
        assert [list(g.image_size), list(g.patch_size), list(g.grid_shape)] == \
               [want["image_size"], want["patch_size"], want["grid_shape"]]
        assert (None if g.pixel_spacing is None else list(g.pixel_spacing)) == want["pixel_spacing"]
        assert (record.report, record.report_source, record.group_key) == \
               (want["report"], want["report_source"], want["group_key"])


def test_there_is_a_golden_directory_per_released_version():
    assert "1.0.0" in {p.name for p in VERSIONS}


@pytest.mark.parametrize("version", VERSIONS, ids=lambda p: p.name)
def test_golden_file_reads_back_as_written(version):
    expected = json.loads((version / "expected.json").read_text(encoding="utf-8"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an older minor of this major reads without any notice
        with nf.open(version / "collection.h5") as reader:
            assert str(reader.version) == expected["format_version"] == version.name
            _check_records(reader, expected["collection.h5"])


@pytest.mark.parametrize("version", VERSIONS, ids=lambda p: p.name)
def test_golden_files_validate_clean(version):
    for target in (version / "collection.h5", version / "sharded"):
        report = nf.validate(target)
        assert report.exit_code == 0 and not report.findings, report.to_text()


@pytest.mark.parametrize("version", VERSIONS, ids=lambda p: p.name)
def test_golden_collection_reads_and_hashes(version):
    expected = json.loads((version / "expected.json").read_text(encoding="utf-8"))["sharded"]
    manifest = read_manifest(version / "sharded")
    assert manifest.collection_sha256 == expected["collection_sha256"] == collection_sha256(manifest)
    for entry in manifest.shards:
        with nf.open(version / "sharded" / entry.path) as reader:
            _check_records(reader, expected["shards"][entry.path])
    with nf.open_collection(version / "sharded") as collection:
        assert len(collection) == sum(len(e["records"]) for e in expected["shards"].values())


@pytest.mark.parametrize("version", VERSIONS, ids=lambda p: p.name)
def test_golden_digests_recomputed_from_the_appendix(version):
    appendix_b = _appendix_b()
    for path in sorted(version.rglob("*.h5")):
        recomputed, stored = appendix_b.file_digests(path)
        assert recomputed == stored and stored
