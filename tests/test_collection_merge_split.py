"""``neural-format merge`` and ``split`` on files and sharded collections."""

import pytest
from hypothesis import given, settings, strategies as st

import neural_format as nf
from neural_format.cli import main
from neural_format.cli.merge_cmd import merge
from neural_format.cli.split_cmd import shard_bounds, split
from neural_format.collections.collection import append_shard, open_collection
from neural_format.format.metadata import ModelRef
from neural_format.collections.synthetic import synthetic_meta, synthetic_records

META = synthetic_meta(feature_dim=8)
RECORDS = list(synthetic_records(40, META, seed=11, patches=(0, 6), entities=(0, 4)))


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 500), st.integers(1, 40))
def test_shard_bounds_cover_contiguously(n, k):
    bounds = shard_bounds(n, k)
    assert bounds[0][0] == 0 and bounds[-1][1] == n
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
    sizes = [b - a for a, b in bounds]
    assert max(sizes) - min(sizes) <= 1


def test_split_then_merge_round_trip(tmp_path, capsys):
    single = nf.write_collection(tmp_path / "all.h5", META, RECORDS)
    assert main(["split", str(single), str(tmp_path / "coll"), "--shards", "3", "--batch-records", "7"]) == 0
    assert "wrote 3 shards, 40 records" in capsys.readouterr().out
    with open_collection(tmp_path / "coll") as coll:
        assert [e.records for e in coll.manifest.shards] == [13, 13, 14]
        assert coll.read_all() == RECORDS
        assert [coll.shard(k).meta.shard.shard_index for k in range(3)] == [0, 1, 2]
        assert coll.meta.provenance.history[-1].startswith("split: all.h5 into 3 shards")
    assert main(["verify", str(tmp_path / "coll")]) == 0
    assert main(["merge", str(tmp_path / "back.h5"), str(tmp_path / "coll"), "--batch-records", "5"]) == 0
    with nf.open(tmp_path / "back.h5") as back, nf.open(single) as original:
        assert back.read_all() == RECORDS
        assert (back.stored_hashes() == original.stored_hashes()).all()
        assert back.meta.shard is None


def test_records_per_shard_and_existing_manifest(tmp_path):
    single = nf.write_collection(tmp_path / "all.h5", META, RECORDS)
    manifest = split(single, tmp_path / "c", records_per_shard=16)
    assert [e.records for e in manifest.shards] == [16, 16, 8]
    with pytest.raises(FileExistsError):
        split(single, tmp_path / "c", shards=2)


def test_merge_of_files_and_collections_in_order(tmp_path):
    a = nf.write_collection(tmp_path / "a.h5", META, RECORDS[:10])
    directory = tmp_path / "coll"
    append_shard(directory, RECORDS[10:25], META)
    append_shard(directory, RECORDS[25:40], META)
    assert merge(tmp_path / "m.h5", [a, directory]) == 40
    with nf.open(tmp_path / "m.h5") as merged:
        assert merged.record_ids() == [r.record_id for r in RECORDS]
        assert "merge: 2 sources, 40 records" in merged.meta.provenance.history[-1]


def test_merge_refuses_duplicates_and_incompatible_metadata(tmp_path):
    a = nf.write_collection(tmp_path / "a.h5", META, RECORDS[:10])
    b = nf.write_collection(tmp_path / "b.h5", META, RECORDS[5:15])
    with pytest.raises(nf.SchemaError) as err:
        merge(tmp_path / "m.h5", [a, b])
    assert err.value.code == "NF-C006" and "rec-000005" in str(err.value)
    other_meta = synthetic_meta(feature_dim=8, label_names=("pneumonia", "effusion"))
    c = nf.write_collection(tmp_path / "c.h5", other_meta,
                            [r for r in synthetic_records(3, other_meta, seed=1)][:0])
    with pytest.raises(nf.SchemaError) as err:
        merge(tmp_path / "m.h5", [a, c])
    assert err.value.code == "NF-C009" and "label_names" in err.value.message
    encoder = META.provenance.model_copy(update={"encoder": ModelRef(model_id="swin-tiny")})
    d = nf.write_collection(tmp_path / "d.h5", META.model_copy(update={"provenance": encoder}), RECORDS[20:22])
    with pytest.raises(nf.SchemaError) as err:
        merge(tmp_path / "m.h5", [a, d])
    assert err.value.code == "NF-C009" and "provenance.encoder" in err.value.message
    assert not (tmp_path / "m.h5").exists()
    assert merge(tmp_path / "m.h5", [a, d], allow_mixed_provenance=True) == 12
    assert main(["merge", str(tmp_path / "m2.h5"), str(a), str(b)]) == 2


@pytest.mark.parametrize("argv", [
    ["merge", "{out}/m.h5", "{src}", "--batch-records", "-3"],   # used to write an empty file, exit 0
    ["merge", "{out}/m.h5", "{src}", "--batch-records", "0"],
    ["split", "{src}", "{out}/s", "--shards", "0"],
    ["split", "{src}", "{out}/s", "--records-per-shard", "0"],
    ["split", "{src}", "{out}/s", "--shards", "2", "--batch-records", "0"],
    ["reprune", "{src}", "{out}/r.h5", "--top-k-percent", "50", "--chunk-bytes", "0"],
    ["verify", "{src}", "--workers", "-2"],                       # used to report the valid file as a mismatch
    ["validate", "{src}", "--memory-mib", "0"],                   # used to report the valid file as failing
    ["validate", "{src}", "--timeout-s", "-1"],
    # the builders' and models' commands use the same types (these were tracebacks)
    ["train", "{src}", "--out", "{out}/t", "--batch-size", "0"],
    ["ablate", "{src}", "--out", "{out}/a", "--workers", "-1"],
    ["render", "{src}", "--index", "0", "--out", "{out}/x.png", "--height", "0"],
    ["generate-reports", "{src}", "--generator", "{out}/g", "--out", "{out}/g.h5", "--batch-size", "0"],
    # ... and so do their other counts (0 threads was silently 1; 0 resamples, a limit of 0 records)
    ["train", "{src}", "--out", "{out}/t", "--threads", "0"],
    ["train", "{src}", "--out", "{out}/t", "--patience", "0"],
    ["train", "{src}", "--out", "{out}/t", "--bootstrap", "0"],
    ["evaluate", "{out}/m", "{src}", "--threads", "-1"],
    ["generate-reports", "{src}", "--generator", "{out}/g", "--out", "{out}/g.h5", "--limit", "0"],
    ["generate-reports", "{src}", "--generator", "{out}/g", "--out", "{out}/g.h5", "--bootstrap", "-5"],
    ["build", "--images", "{out}/i", "--reports", "{out}/r.csv", "--model", "{out}/g", "--out", "{out}/b.h5",
     "--batch-size", "0"],
    ["build", "--images", "{out}/i", "--reports", "{out}/r.csv", "--model", "{out}/g", "--out", "{out}/b.h5",
     "--min-nodes", "-1"],
    ["finetune", "--images", "{out}/i", "--reports", "{out}/r.csv", "--out", "{out}/f", "--steps", "0"],
    ["finetune", "--images", "{out}/i", "--reports", "{out}/r.csv", "--out", "{out}/f", "--checkpoint-every", "-1"],
    ["demo", "--out", "{out}/d", "--threads", "-1"],
    ["render", "{src}", "--index", "0", "--out", "{out}/x.png", "--slice", "-1"],
])
def test_a_count_or_limit_out_of_range_is_a_usage_error(tmp_path, capsys, argv):
    """Counts, sizes and limits are checked by argparse (exit 2, the flag named), before any work:
    never a traceback, an empty output or a verdict on the input."""
    meta = synthetic_meta(feature_dim=4)
    src = nf.write_collection(tmp_path / "c.h5", meta, synthetic_records(5, meta, seed=0), fsync=False)
    (tmp_path / "out").mkdir()
    with pytest.raises(SystemExit) as exit_:
        main([a.format(src=src, out=tmp_path / "out") for a in argv])
    assert exit_.value.code == 2
    assert f"argument {argv[-2]}: must be" in capsys.readouterr().err
    assert list((tmp_path / "out").iterdir()) == []


@pytest.mark.parametrize("module, argv", [
    ("neural_models.phantom_study", ["--cases", "0"]),
    ("neural_models.ddp_train", ["--data", "c.h5", "--patience", "0"]),
    ("neural_models.ddp_train", ["--data", "c.h5", "--timeout", "0"]),
    ("neural_builders.distributed_build", ["--out", "o", "--synthetic", "-4"]),
])
def test_the_python_m_scripts_check_their_counts_too(capsys, module, argv):
    import importlib
    with pytest.raises(SystemExit) as exit_:
        importlib.import_module(module).main(argv)
    assert exit_.value.code == 2
    assert f"argument {argv[-2]}: must be" in capsys.readouterr().err


def test_a_batch_size_below_one_is_refused_by_the_api(tmp_path):
    meta = synthetic_meta(feature_dim=4)
    src = nf.write_collection(tmp_path / "c.h5", meta, synthetic_records(5, meta, seed=0), fsync=False)
    with pytest.raises(ValueError, match="batch_records"):
        merge(tmp_path / "m.h5", [src], batch_records=-3)
    assert not (tmp_path / "m.h5").exists()
    with pytest.raises(ValueError, match="batch_records"):
        split(src, tmp_path / "s", shards=2, batch_records=0)
    with open_collection(src) as collection:
        assert sum(map(len, collection.iter_batches(2))) == 5
