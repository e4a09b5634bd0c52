"""``neural-format verify``: hash checks of files and sharded collections, exit codes, JSON."""
import json

import h5py
import pytest

import neural_format as nf
from neural_format.cli import main
from neural_format.collections.collection import append_shard
from neural_format.collections.manifest import read_manifest
from neural_format.collections.synthetic import synthetic_meta, synthetic_records

META = synthetic_meta(feature_dim=8)
RECORDS = list(synthetic_records(30, META, seed=5, patches=(1, 6), entities=(0, 4)))


@pytest.fixture
def collection(tmp_path):
    directory = tmp_path / "coll"
    for a, b in ((0, 10), (10, 18), (18, 30)):
        append_shard(directory, RECORDS[a:b], META)
    return directory


def _json(capsys):
    return json.loads(capsys.readouterr().out)


def test_clean_collection_and_file_verify(collection, tmp_path, capsys):
    assert main(["verify", str(collection), "--json"]) == 0
    report = _json(capsys)
    assert report["ok"] and report["records"] == 30 and len(report["shards"]) == 3
    single = nf.write_collection(tmp_path / "one.h5", META, RECORDS)
    assert main(["verify", str(single)]) == 0
    assert capsys.readouterr().out.startswith("OK:")
    assert main(["verify", str(collection / "manifest.json"), "--json"]) == 0


def test_tampered_record_is_found(collection, capsys):
    shard = collection / read_manifest(collection).shards[1].path
    with h5py.File(shard, "r+") as f:
        f["/patches/features"][3, 0] += 1.0
    assert main(["verify", str(collection), "--json"]) == 2
    report = _json(capsys)
    codes = [p["code"] for p in report["problems"]]
    assert "NF-I001" in codes and "NF-C003" in codes
    assert [s["ok"] for s in report["shards"]] == [True, False, True]
    # without the file hash, the record hash alone still catches it
    assert main(["verify", str(collection), "--json", "--no-file-hash"]) == 2
    assert [p["code"] for p in _json(capsys)["problems"]] == ["NF-I001"]


def test_tampered_manifest_is_found(collection, capsys):
    path = collection / "manifest.json"
    data = json.loads(path.read_text())
    data["shards"][0]["records"] = 11
    path.write_text(json.dumps(data))
    assert main(["verify", str(collection), "--json"]) == 2
    codes = {p["code"] for p in _json(capsys)["problems"]}
    assert {"NF-C007", "NF-C005"} <= codes


def test_missing_shard_and_duplicates_across_shards(collection, capsys):
    append_shard(collection, RECORDS[0:2], META, check_duplicates=False)
    assert main(["verify", str(collection), "--json"]) == 2
    problems = _json(capsys)["problems"]
    assert sum(p["code"] == "NF-C006" for p in problems) == 2
    (collection / read_manifest(collection).shards[0].path).unlink()
    assert main(["verify", str(collection)]) == 2
    assert "NF-C002" in capsys.readouterr().out


def test_not_a_collection(tmp_path, capsys):
    (tmp_path / "junk.h5").write_bytes(b"not hdf5 at all")
    assert main(["verify", str(tmp_path / "junk.h5"), "--json"]) == 2
    assert _json(capsys)["problems"][0]["code"] == "NF-F001"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["verify", str(empty), "--json"]) == 2
    assert _json(capsys)["problems"][0]["code"] == "NF-C001"
