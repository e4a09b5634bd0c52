"""Sharded collections: the lazy API across shards, the manifest digests, crash-safe append."""
import datetime
import json
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import neural_format as nf
from neural_format.collections.collection import append_shard, open_collection, write_manifest_for
from neural_format.collections.manifest import collection_sha256, ids_sha256, read_manifest
from neural_format.collections.synthetic import synthetic_meta, synthetic_records

META = synthetic_meta(feature_dim=8)
RECORDS = list(synthetic_records(23, META, seed=3, patches=(0, 6), entities=(0, 4)))


def _build(tmp_path, sizes, name="coll"):
    directory = tmp_path / name
    start = 0
    for size in sizes:
        append_shard(directory, RECORDS[start:start + size], META)
        start += size
    return directory


def test_reads_across_shards_like_one_file(tmp_path):
    directory = _build(tmp_path, [5, 0, 10, 8])
    single = nf.write_collection(tmp_path / "one.h5", META, RECORDS)
    with open_collection(directory) as coll, nf.open(single) as one:
        assert len(coll) == len(one) == 23 and coll.shard_count == 4
        assert list(coll) == list(one)
        assert coll.read_all() == one.read_all()
        assert coll[-1] == one[-1] and coll[4:7] == one[4:7] and coll[::5] == one[::5]
        assert coll.get("rec-000015") == RECORDS[15]
        assert coll.record_ids() == one.record_ids()
        assert coll.read_range(3, 17) == one.read_range(3, 17) and coll.read_range(20, 99) == RECORDS[20:]
        assert np.array_equal(coll.stored_hashes(), one.stored_hashes())
        with pytest.raises(IndexError):
            coll[23]
        with pytest.raises(KeyError):
            coll.get("nope")


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(0, 6), min_size=1, max_size=6), st.integers(0, 40))
def test_locate_maps_every_index_to_its_shard(counts, probe):
    from neural_format.collections.collection import ShardedCollection
    coll = ShardedCollection([], counts)
    if sum(counts) == 0:
        return
    i = probe % sum(counts)
    k, j = coll.locate(i)
    assert 0 <= j < counts[k] and sum(counts[:k]) + j == i


def test_manifest_digests_are_reproducible(tmp_path):
    directory = _build(tmp_path, [7, 16])
    manifest = read_manifest(directory)
    assert [e.records for e in manifest.shards] == [7, 16]
    assert manifest.collection_sha256 == collection_sha256(manifest)
    with nf.open(directory / manifest.shards[0].path) as reader:
        assert manifest.shards[0].ids_sha256 == ids_sha256(reader.record_ids(), reader.stored_hashes())
        assert reader.meta.shard.collection_id == manifest.collection_id
        assert reader.meta.shard.shard_index == 0
    assert manifest.shards[1].first_id == "rec-000007" and manifest.shards[1].last_id == "rec-000022"
    # the documented recipe, written out by hand from the file's bytes: the whole manifest but the hash
    fields = json.loads((directory / "manifest.json").read_bytes())
    stored = fields.pop("collection_sha256")
    assert set(fields) == {"format", "format_version", "collection_id", "created", "shards"}
    blob = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    import hashlib
    assert hashlib.sha256(blob).hexdigest() == stored == manifest.collection_sha256
    with pytest.raises(TypeError):
        collection_sha256(manifest.shards)  # the old entries-only form is refused, not silently different


def test_append_refuses_duplicates_and_incompatible_meta(tmp_path):
    directory = _build(tmp_path, [5])
    before = (directory / "manifest.json").read_bytes()
    with pytest.raises(nf.SchemaError) as err:
        append_shard(directory, RECORDS[4:6], META)
    assert err.value.code == "NF-C006"
    other = synthetic_meta(feature_dim=16)
    with pytest.raises(nf.SchemaError) as err:
        append_shard(directory, synthetic_records(2, other, seed=9), other)
    assert err.value.code == "NF-C009" and "patch_feature_dim" in err.value.message
    assert (directory / "manifest.json").read_bytes() == before
    assert sorted(p.name for p in directory.glob("*.h5")) == [read_manifest(directory).shards[0].path]


def test_missing_shard_and_count_mismatch_are_coded(tmp_path):
    directory = _build(tmp_path, [5, 6])
    manifest = read_manifest(directory)
    (directory / manifest.shards[1].path).unlink()
    with open_collection(directory) as coll:
        assert len(coll) == 11  # no shard opened yet
        assert coll[0] == RECORDS[0]
        with pytest.raises(nf.SchemaError) as err:
            coll[7]
    assert err.value.code == "NF-C002"
    nf.write_collection(directory / manifest.shards[1].path, META, RECORDS[5:9])
    with open_collection(directory) as coll, pytest.raises(nf.IntegrityError) as err:
        coll[7]
    assert err.value.code == "NF-C005"


def test_manifest_path_escaping_directory_is_refused(tmp_path):
    directory = _build(tmp_path, [3])
    nf.write_collection(tmp_path / "outside.h5", META, RECORDS[3:5])
    data = json.loads((directory / "manifest.json").read_text())
    data["shards"][0]["path"] = "../outside.h5"
    (directory / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(nf.SchemaError) as err:
        open_collection(directory)
    assert err.value.code == "NF-C002"
    (directory / "manifest.json").write_text("{not json")
    with pytest.raises(nf.SchemaError) as err:
        open_collection(directory)
    assert err.value.code == "NF-C001"


def test_list_of_paths_and_manifest_for_existing_files(tmp_path):
    paths = [nf.write_collection(tmp_path / f"p{k}.h5", META, RECORDS[k * 8:(k + 1) * 8]) for k in range(3)]
    with open_collection(paths) as coll:
        assert len(coll) == 23 and list(coll) == RECORDS
    manifest = write_manifest_for(tmp_path, [p.name for p in paths])
    with nf.open_collection(tmp_path / "manifest.json") as coll:
        assert coll.record_ids() == [r.record_id for r in RECORDS]
        assert coll.manifest.collection_id == manifest.collection_id


def test_pickled_collection_reopens_its_own_handles(tmp_path):
    directory = _build(tmp_path, [4, 4])
    with open_collection(directory) as coll:
        first = coll[5]
        clone = pickle.loads(pickle.dumps(coll))
        assert clone[5] == first and clone._shards[1].reader is not coll._shards[1].reader
        clone.close()


def test_forked_child_reopens_instead_of_sharing_the_handle(tmp_path):
    directory = _build(tmp_path, [4, 4])
    coll = open_collection(directory)
    assert coll[6] == RECORDS[6]
    parent_reader = coll._shards[1].reader
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: must reopen shard 1, not use the parent's h5py handle
        ok = coll[6] == RECORDS[6] and coll._shards[1].reader is not parent_reader
        os.write(write, b"1" if ok else b"0")
        os._exit(0)
    os.close(write)
    assert os.read(read, 1) == b"1"
    os.waitpid(pid, 0)
    assert coll._shards[1].reader is parent_reader
    coll.close()


CRASH_SCRIPT = """
import os, sys
import neural_format.collections.manifest as manifest
from neural_format.collections.collection import append_shard
from neural_format.collections.synthetic import synthetic_meta, synthetic_records
meta = synthetic_meta(feature_dim=8)
records = list(synthetic_records(23, meta, seed=3, patches=(0, 6), entities=(0, 4)))
point = sys.argv[2]
real_replace = os.replace
def dying_replace(src, dst):
    if point == "before-shard-rename" and str(dst).endswith(".h5"):
        os._exit(9)
    if point == "before-manifest-rename" and str(dst).endswith("manifest.json"):
        os._exit(9)
    real_replace(src, dst)
    if point == "after-manifest-rename" and str(dst).endswith("manifest.json"):
        os._exit(9)
os.replace = dying_replace
import neural_format.files.writer as writer
real_exclusive = writer.rename_exclusive
def dying_exclusive(src, dst):  # shards are renamed without replacing (overwrite=False)
    if point == "before-shard-rename" and str(dst).endswith(".h5"):
        os._exit(9)
    real_exclusive(src, dst)
writer.rename_exclusive = dying_exclusive
append_shard(sys.argv[1], records[5:12], meta)
"""


@pytest.mark.parametrize("point", ["before-shard-rename", "before-manifest-rename", "after-manifest-rename"])
def test_crash_during_append_leaves_old_or_new_collection(tmp_path, point):
    directory = _build(tmp_path, [5])
    proc = subprocess.run([sys.executable, "-c", CRASH_SCRIPT, str(directory), point], timeout=60)
    assert proc.returncode == 9
    with open_collection(directory) as coll:
        ids = coll.record_ids()
        assert coll.read_all() == RECORDS[:len(ids)]
    assert len(ids) == (12 if point == "after-manifest-rename" else 5)
    # the next append succeeds whatever was left behind
    append_shard(directory, RECORDS[12:14], META)
    with open_collection(directory) as coll:
        assert coll.record_ids()[-2:] == ["rec-000012", "rec-000013"]


@pytest.mark.parametrize("path", ["a\x00b.h5", "/etc/passwd", "sub/../../x.h5", "."])
def test_hostile_shard_paths_are_coded(tmp_path, path):
    directory = _build(tmp_path, [2])
    data = json.loads((directory / "manifest.json").read_text())
    data["shards"][0]["path"] = path
    (directory / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(nf.SchemaError) as err:
        open_collection(directory)
    assert err.value.code in ("NF-C001", "NF-C002")


def test_symlink_out_of_the_directory_is_refused(tmp_path):
    directory = _build(tmp_path, [2])
    name = read_manifest(directory).shards[0].path
    nf.write_collection(tmp_path / "elsewhere.h5", META, RECORDS[:2])
    (directory / name).unlink()
    (directory / name).symlink_to(tmp_path / "elsewhere.h5")
    with pytest.raises(nf.SchemaError) as err:
        open_collection(directory)
    assert err.value.code == "NF-C002"


_hex = st.text("0123456789abcdef", min_size=64, max_size=64)
_entry = st.builds(
    lambda path, records, first, digest, version: nf.format.metadata.ShardEntry(
        path=path, records=records, first_id=first, ids_sha256=digest, format_version=version),
    st.from_regex(r"[a-z0-9_-]{1,12}\.h5", fullmatch=True), st.integers(0, 10**9),
    st.none() | st.text(min_size=1, max_size=20), _hex, st.sampled_from(["1.0.0", "1.2.3"]))


_created = st.datetimes(min_value=datetime.datetime(1970, 1, 1), max_value=datetime.datetime(2200, 1, 1),
                        timezones=st.sampled_from([None, datetime.timezone.utc,
                                                   datetime.timezone(datetime.timedelta(hours=5, minutes=30)),
                                                   datetime.timezone(-datetime.timedelta(hours=8))]))


@settings(max_examples=60, deadline=None)
@given(st.lists(_entry, min_size=1, max_size=5), st.integers(0, 4), _created,
       st.text("0123456789abcdef", min_size=32, max_size=32))
def test_collection_hash_survives_json_round_trip_and_sees_every_change(entries, which, created, collection_id):
    fields = {"format_version": "1.0.0", "collection_id": collection_id, "shards": entries, "created": created}
    manifest = nf.Manifest.model_validate({**fields, "collection_sha256": collection_sha256(fields)})
    assert collection_sha256(manifest) == manifest.collection_sha256
    # through manifest.json's text (re-indented) and back: same digest, also for naive/offset timestamps
    reparsed = nf.Manifest.model_validate_json(json.dumps(json.loads(manifest.model_dump_json()), indent=3))
    assert collection_sha256(reparsed) == manifest.collection_sha256
    k = which % len(entries)
    changed = list(entries)
    changed[k] = entries[k].model_copy(update={"records": entries[k].records + 1})
    for edit in ({"shards": changed}, {"format_version": "1.0.1"},
                 {"collection_id": ("1" if collection_id[0] != "1" else "2") + collection_id[1:]},
                 {"created": created + datetime.timedelta(microseconds=1)}):
        assert collection_sha256(manifest.model_copy(update=edit)) != manifest.collection_sha256, edit
