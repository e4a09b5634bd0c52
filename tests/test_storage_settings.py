"""Derived files (reprune, merge, split) keep the input's storage settings unless told otherwise."""
import h5py
import pytest

import neural_format as nf
from neural_format.cli import main
from neural_format.format.metadata import PruningPolicy, TopKPercent
from neural_format.collections.reprune import reprune_collection
from neural_format.files.storage import StorageSettings
from neural_format.collections.synthetic import synthetic_meta, synthetic_records


def _settings(path):
    with h5py.File(path, "r") as f:
        ds = f["patches/features"]
        return ds.compression, ds.compression_opts, ds.shuffle, ds.chunks, ds.dtype.str


@pytest.fixture()
def gzipped(tmp_path):
    meta = synthetic_meta(feature_dim=32)
    path = tmp_path / "in.h5"
    with nf.CollectionWriter(path, meta, compression="gzip", compression_level=7, chunk_bytes=64 << 10) as w:
        w.extend(synthetic_records(40, meta, seed=1, patches=(20, 40)))
    return path


def test_writer_applies_level_and_chunk_size(gzipped):
    compression, level, shuffle, chunks, dtype = _settings(gzipped)
    assert (compression, level, shuffle, dtype) == ("gzip", 7, True, "<f4")
    assert chunks == ((64 << 10) // (32 * 4), 32)
    with nf.open(gzipped) as reader:
        assert reader.storage == StorageSettings("gzip", 7, 64 << 10)


def test_reprune_keeps_the_input_storage_and_shrinks(gzipped, tmp_path):
    out = tmp_path / "out.h5"
    summary = reprune_collection(gzipped, out, PruningPolicy(rule=TopKPercent(percent=25)))
    assert _settings(out) == _settings(gzipped)
    assert summary.bytes_after < summary.bytes_before  # 25 % of the patches, same filter
    plain = tmp_path / "plain.h5"
    assert main(["reprune", str(gzipped), str(plain), "--top-k-percent", "25", "--compression", "none"]) == 0
    assert _settings(plain)[0] is None
    assert plain.stat().st_size > out.stat().st_size


def test_reprune_overrides(gzipped, tmp_path):
    pytest.importorskip("networkx")  # the bridge (betweenness) of `reprune` needs the torch extra
    out = tmp_path / "o.h5"
    assert main(["reprune", str(gzipped), str(out), "--top-k-percent", "50", "--compression", "lzf",
                 "--dtype", "float16", "--chunk-bytes", "32768"]) == 0
    compression, level, _, chunks, dtype = _settings(out)
    assert (compression, level, dtype) == ("lzf", None, "<f2")
    assert chunks[0] == 32768 // (32 * 2)
    with nf.open(out) as reader:
        assert reader.meta.patch_feature_dtype == "float16" and nf.validate(out).ok
    level = tmp_path / "l.h5"
    assert main(["reprune", str(gzipped), str(level), "--top-k-percent", "50", "--compression-level", "1"]) == 0
    assert _settings(level)[:2] == ("gzip", 1)


def test_merge_and_split_keep_the_input_storage(gzipped, tmp_path):
    merged = tmp_path / "m.h5"
    assert main(["merge", str(merged), str(gzipped)]) == 0
    assert _settings(merged) == _settings(gzipped)
    shards = tmp_path / "shards"
    assert main(["split", str(gzipped), str(shards), "--shards", "2"]) == 0
    for shard in sorted(shards.glob("*.h5")):
        assert _settings(shard) == _settings(gzipped)
    back = tmp_path / "back.h5"
    assert main(["merge", str(back), str(shards), "--compression", "none"]) == 0
    assert _settings(back)[0] is None


def test_default_writer_file_round_trips_with_default_settings(tmp_path):
    meta = synthetic_meta(feature_dim=8)
    src = tmp_path / "a.h5"
    nf.write_collection(src, meta, synthetic_records(5, meta))
    with nf.open(src) as reader:
        assert reader.storage == StorageSettings()  # unfiltered, default chunks: stays memory-mappable
    out = tmp_path / "b.h5"
    reprune_collection(src, out, PruningPolicy(rule=TopKPercent(percent=50)))
    assert _settings(out) == _settings(src)


def test_existing_output_names_the_overwrite_flag(gzipped, tmp_path, capsys):
    pytest.importorskip("networkx")  # the bridge (betweenness) of `reprune` needs the torch extra
    out = tmp_path / "out.h5"
    argv = ["reprune", str(gzipped), str(out), "--top-k-percent", "50"]
    assert main(argv) == 0
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "--overwrite" in err and "overwrite=True" not in err and str(out) in err
    assert main(argv + ["--overwrite"]) == 0
    assert main(["merge", str(out), str(gzipped)]) == 2
    assert "--overwrite" in capsys.readouterr().err
