"""``neural-format inspect``: real per-record minima, collection directories, record IDs."""
import json

import neural_format as nf
from neural_format.cli import main
from neural_format.collections.collection import append_shard
from neural_format.collections.synthetic import synthetic_meta, synthetic_records


def _records(n, meta, seed=0):
    return list(synthetic_records(n, meta, seed=seed, patches=(3, 9), entities=(2, 5)))


def test_min_is_the_real_minimum(tmp_path, capsys):
    meta = synthetic_meta(feature_dim=8)
    records = _records(10, meta)
    path = tmp_path / "a.h5"
    nf.write_collection(path, meta, records)
    assert main(["inspect", str(path), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["patches"]["min"] == min(r.num_patches for r in records) >= 3
    assert summary["entities"]["min"] == min(r.num_entities for r in records) >= 2
    assert summary["patches"]["max"] == max(r.num_patches for r in records)
    assert main(["inspect", str(path)]) == 0
    assert f"per record min {summary['patches']['min']}," in capsys.readouterr().out


def test_collection_directory_and_manifest(tmp_path, capsys):
    meta = synthetic_meta(feature_dim=8)
    records = _records(12, meta, seed=1)
    directory = tmp_path / "coll"
    append_shard(directory, records[:7], meta)
    append_shard(directory, records[7:], meta)
    for target in (directory, directory / "manifest.json"):
        assert main(["inspect", str(target), "--json"]) == 0
        summary = json.loads(capsys.readouterr().out)
        assert summary["records"] == 12 and summary["shards"] == 2
        assert summary["patches"]["total"] == sum(r.num_patches for r in records)
        assert summary["entities"]["min"] == min(r.num_entities for r in records)
    assert main(["inspect", str(directory)]) == 0
    assert "2 shards" in capsys.readouterr().out


def test_ids_lists_every_record_id_in_order(tmp_path, capsys):
    meta = synthetic_meta(feature_dim=8)
    records = _records(6, meta, seed=2)
    directory = tmp_path / "coll"
    append_shard(directory, records[:4], meta)
    append_shard(directory, records[4:], meta)
    assert main(["inspect", str(directory), "--ids"]) == 0
    assert capsys.readouterr().out.split() == [r.record_id for r in records]
    assert main(["inspect", str(directory), "--ids", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == [r.record_id for r in records]


def test_missing_path_is_a_clean_error(tmp_path, capsys):
    assert main(["inspect", str(tmp_path / "nope.h5")]) == 2
    assert "no such file" in capsys.readouterr().err
