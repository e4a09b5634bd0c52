"""Validator behaviour beyond the one-fixture-per-clause corpus: collecting, streaming, robustness."""
import json
from dataclasses import replace

import h5py
import numpy as np
import pytest

import neural_format as nf
from neural_format.validation import registry
from neural_format.validation.findings import Report, finding
from neural_format.collections.synthetic import synthetic_meta, synthetic_records

META = synthetic_meta(feature_dim=4, entity_feature_dim=2)


@pytest.fixture(scope="module")
def broken_file(tmp_path_factory):
    """60 records; three of them break three different clauses."""
    records = list(synthetic_records(60, META, seed=3, patches=(2, 6), entities=(2, 4)))
    r = records[5]
    records[5] = replace(r, patch_edges=np.array([[0, r.num_patches]], np.int32))  # NF-R003
    records[30] = replace(records[30], entity_types=np.array([9] * records[30].num_entities, np.int16))  # NF-R010
    records[59] = replace(records[59], labels=np.array([np.inf], np.float32))  # NF-R016
    return nf.write_collection(tmp_path_factory.mktemp("b") / "broken.h5", META, records, fsync=False)


def test_findings_are_collected_not_stopped_at_first(broken_file):
    report = nf.validate(broken_file)
    assert {"NF-R003", "NF-R010", "NF-R016"} <= report.codes
    where = {f.code: f.location for f in report.findings}
    assert "record 5 " in where["NF-R003"] and "record 30 " in where["NF-R010"] and "record 59 " in where["NF-R016"]
    assert report.exit_code == 2 and not report.ok and report.records == 60


def test_tiny_batches_find_the_same(broken_file):
    whole = nf.validate(broken_file)
    streamed = nf.validate(broken_file, batch_bytes=1)  # one record per batch
    assert sorted(map(str, streamed.findings)) == sorted(map(str, whole.findings))


def test_duplicate_ids_across_batches(tmp_path):
    records = list(synthetic_records(6, META, seed=1))
    path = nf.write_collection(tmp_path / "c.h5", META, records, fsync=False)
    with h5py.File(path, "r+") as f:  # rec-000004 -> rec-000001
        data = f["/records/id/data"][()]
        start = int(f["/records/id/offsets"][4])
        data[start + len("rec-00000")] = ord("1")
        f["/records/id/data"][...] = data
    report = nf.validate(path, batch_bytes=1)
    assert any(f.code == "NF-R002" and "duplicate" in f.message for f in report.findings)


def test_finding_names_location_expected_and_found(broken_file):
    item = next(f for f in nf.validate(broken_file).findings if f.code == "NF-R003")
    assert item.severity == "error" and item.location.startswith("/patch_edges/index")
    assert item.expected and item.found and "NF-R003" in str(item)


def test_hashes_can_be_skipped(tmp_path):
    path = nf.write_collection(tmp_path / "c.h5", META, synthetic_records(5, META), fsync=False)
    with h5py.File(path, "r+") as f:
        f["/patches/scores"][0] += 1
    assert "NF-I001" in nf.validate(path).codes
    assert "NF-I001" not in nf.validate(path, hashes=False).codes


@pytest.mark.parametrize("content", [b"", b"\x89HDF\r\n\x1a\n" + b"\0" * 100, b"PK\x03\x04 torch zip", bytes(range(256)) * 4])
def test_junk_never_raises(tmp_path, content):
    path = tmp_path / "junk.h5"
    path.write_bytes(content)
    report = nf.validate(path)
    assert report.codes == {"NF-F001"} and report.exit_code == 2


def test_missing_file_and_empty_directory(tmp_path):
    assert nf.validate(tmp_path / "absent.h5").codes == {"NF-F001"}
    assert "NF-C001" in nf.validate(tmp_path).codes  # a directory is a sharded collection without manifest


def test_truncated_file(tmp_path):
    path = nf.write_collection(tmp_path / "c.h5", META, synthetic_records(20, META), fsync=False)
    blob = path.read_bytes()
    path.write_bytes(blob[: len(blob) // 3])
    report = nf.validate(path)
    assert not report.ok and "NF-F001" in report.codes


def test_json_report_round_trips(broken_file):
    data = json.loads(nf.validate(broken_file).to_json())
    assert data["exit_code"] == 2 and {f["code"] for f in data["findings"]} >= {"NF-R003"}
    assert all(set(f) == {"code", "severity", "location", "message", "expected", "found"} for f in data["findings"])


def test_registry_rejects_unknown_codes_and_wrong_severity():
    with pytest.raises(KeyError):
        registry.check("NF-Z999", "error", stage="records")
    with pytest.raises(ValueError):
        registry.check("NF-R006", "error", stage="records")  # the clause says warning
    with pytest.raises(ValueError):
        registry.check("NF-R003", "error", stage="records")(lambda batch, ctx: None)  # already has a check


def test_registry_knows_what_each_check_needs_and_refuses_unknown_inputs(monkeypatch):
    assert registry.REGISTRY["NF-R013"].needs == ("batch", "finite_columns")
    assert registry.REGISTRY["NF-I001"].needs == ("batch", "hashes", "finite_columns")
    assert registry.REGISTRY["NF-I001"].background and not registry.REGISTRY["NF-R013"].background
    assert all(c.needs == ("ctx",) for c in registry.REGISTRY.values() if c.stage != "records")
    monkeypatch.delitem(registry.REGISTRY, "NF-R013")
    with pytest.raises(ValueError, match="does not provide"):  # ``ctx`` is no input of the record stage
        registry.check("NF-R013", "error", stage="records")(lambda batch, ctx: None)
    assert "NF-R013" not in registry.REGISTRY  # refused, not registered
    with pytest.raises(ValueError, match="already has an input"):
        registry.derived("batch", stage="records")


@pytest.mark.parametrize("workers", [1, 3])
def test_a_fact_two_checks_need_is_computed_once_per_block(broken_file, monkeypatch, workers):
    key = ("records", "finite_columns")
    original, calls = registry.DERIVED[key], []

    def counted(batch):
        calls.append((batch.start, batch.stop))
        return original.func(batch)
    monkeypatch.setitem(registry.DERIVED, key, replace(original, func=counted))
    report = nf.validate(broken_file, batch_bytes=2000, workers=workers)
    assert {"NF-R003", "NF-R010", "NF-R016"} <= report.codes and "NF-I001" not in report.codes
    assert len(calls) == len(set(calls)) > 1 and calls[0][0] == 0 and calls[-1][1] == 60


def test_a_failing_check_is_reported_where_it_failed(broken_file, monkeypatch):
    def broken(batch, hashes, finite_columns):
        raise RuntimeError("boom")
    monkeypatch.setitem(registry.REGISTRY, "NF-I001", replace(registry.REGISTRY["NF-I001"], func=broken))
    for workers in (1, 3):  # inline, and in the runner's pool
        failures = [f for f in nf.validate(broken_file, workers=workers).findings if f.code == "NF-F001"]
        assert failures and all("(NF-I001) could not run: RuntimeError: boom" in f.message for f in failures)
        assert failures[0].location.startswith("records 0..")


def test_report_caps_findings_per_code():
    report = Report("x")
    report.add([finding("NF-R003", f"/patch_edges/index [record {i}]", "out of range") for i in range(80)])
    assert len(report.findings) == 50 and report.suppressed == {"NF-R003": 30}
    assert report.exit_code == 2


@pytest.mark.parametrize("link", ["soft", "external"])
def test_a_link_is_judged_by_the_one_nf_h003_rule_in_reader_and_validator(tmp_path, link):
    """guards.link_problem is NF-H003 for the reader (raised on a path it follows) and for the
    validator (a finding per link): same code, location, message, expected and found."""
    meta = synthetic_meta(feature_dim=4)
    path = nf.write_collection(tmp_path / "c.h5", meta, synthetic_records(2, meta, seed=0), fsync=False)
    with h5py.File(path, "a") as f:
        del f["/patches/scores"]
        f["/patches/scores"] = (h5py.SoftLink("/patches/features") if link == "soft"
                                else h5py.ExternalLink("other.h5", "/scores"))
    with pytest.raises(nf.UnsafeContentError) as raised:
        nf.open(path)
    error = raised.value
    [found] = [f for f in nf.validate(path).findings if f.code == "NF-H003"]
    assert error.code == "NF-H003" and error.location == found.location == "/patches/scores"
    assert (error.message, str(error.expected), str(error.found)) == (found.message, found.expected, found.found)
    assert error.found.startswith(f"{link} link to")
