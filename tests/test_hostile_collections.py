"""Hostile collections and paths (issue 14): FIFOs and devices where a file is expected, a shard
listed many times, record counts that overflow, many hard links to one object.

Each SDK call runs in a subprocess with an address-space and CPU limit under a wall-clock
timeout (tests/hostile/run_action.py), so a hang or a blow-up fails the test instead of stalling it.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

import neural_format as nf
from neural_format.collections.collection import append_shard
from neural_format.collections.manifest import make_manifest, read_manifest, write_manifest
from neural_format.collections.synthetic import synthetic_meta, synthetic_records

HERE = Path(__file__).parent / "hostile"
META = synthetic_meta(feature_dim=4)


def run(action: str, target, timeout: float = 90) -> dict:
    proc = subprocess.run([sys.executable, str(HERE / "run_action.py"), action, str(target),
                           "--as-mib", "2048", "--cpu-s", "60"], capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture
def collection(tmp_path):
    directory = tmp_path / "coll"
    append_shard(directory, synthetic_records(4, META, seed=0), META, fsync=False)
    return directory


@pytest.mark.parametrize("action", ["open_collection", "validate", "verify"])
def test_manifest_as_fifo_does_not_block(collection, action):
    manifest = collection / "manifest.json"
    manifest.unlink()
    os.mkfifo(manifest)
    result = run(action, collection, timeout=60)
    assert result["outcome"] == "NF-C001" or result["codes"] == ["NF-C001"], result


@pytest.mark.parametrize("action", ["open_collection", "validate", "verify"])
def test_manifest_linked_to_a_device(collection, action):
    manifest = collection / "manifest.json"
    manifest.unlink()
    manifest.symlink_to("/dev/zero")
    result = run(action, collection, timeout=60)
    assert result["outcome"] == "NF-C001" or result["codes"] == ["NF-C001"], result


@pytest.mark.parametrize("action", ["open", "open_collection", "validate", "verify"])
def test_collection_file_as_fifo_or_device(tmp_path, action):
    fifo = tmp_path / "x.h5"
    os.mkfifo(fifo)
    for target in (fifo, "/dev/zero"):
        result = run(action, target, timeout=60)
        assert result["outcome"] in ("NF-F001", "NF-C002") or set(result["codes"] or []) == {"NF-F001"}, (target, result)


def test_shard_listed_many_times(collection):
    manifest = read_manifest(collection)
    write_manifest(collection, make_manifest(list(manifest.shards) * 2000, collection_id=manifest.collection_id))
    assert run("open_collection", collection)["outcome"] == "NF-C002"
    for action in ("validate", "verify"):
        result = run(action, collection)
        assert result["outcome"] == "ok" and "NF-C002" in result["codes"], result
        assert result["seconds"] < 20, result


@pytest.mark.parametrize("records", [10 ** 30, 1 << 62, -1])
def test_manifest_record_counts_that_overflow(collection, records):
    manifest = read_manifest(collection)
    entry = manifest.shards[0].model_copy(update={"records": records})
    write_manifest(collection, make_manifest([entry], collection_id=manifest.collection_id))
    result = run("open_collection", collection)
    assert result["outcome"] in ("NF-C001",), result


def test_counts_sum_without_wrapping(tmp_path):
    from neural_format.collections.collection import ShardedCollection
    big = 1 << 61
    coll = ShardedCollection([], [big, big - 1])
    assert len(coll) == 2 * big - 1 and coll.starts[-1] > 0
    with pytest.raises(nf.SchemaError) as caught:  # int64 would wrap this sum negative
        ShardedCollection([], [big, big, big, 3])
    assert caught.value.code == "NF-C001"


def test_validator_inspects_each_object_once(tmp_path):
    """1,000 attributes on a group reached by 1,000 hard links: inspected once, not a million times."""
    path = tmp_path / "links.h5"
    nf.write_collection(path, META, synthetic_records(2, META, seed=0), fsync=False)
    with h5py.File(path, "r+", libver=("earliest", "v108")) as f:
        target = f.create_group("extra/target")
        for i in range(1000):
            target.attrs[f"a{i}"] = np.int32(i)
        for i in range(1000):
            f[f"extra/link{i}"] = target
    result = run("validate", path)
    assert result["outcome"] == "ok" and result["seconds"] < 20, result


def test_manifest_lock_symlink_or_directory_refused(tmp_path):
    from neural_format.errors import LockError
    directory = tmp_path / "coll"
    directory.mkdir()
    outside = tmp_path / "planted-by-someone-else"
    (directory / ".manifest.lock").symlink_to(outside)
    with pytest.raises(LockError) as caught:
        append_shard(directory, synthetic_records(2, META, seed=0), META, fsync=False)
    assert caught.value.code == "NF-E-LOCK" and "symbolic link" in caught.value.message
    assert not outside.exists()  # nothing created through the link
    (directory / ".manifest.lock").unlink()
    (directory / ".manifest.lock").mkdir()
    with pytest.raises(LockError) as caught:
        append_shard(directory, synthetic_records(2, META, seed=0), META, fsync=False)
    assert "directory" in caught.value.message
    assert not (directory / "manifest.json").exists()


def test_control_sequences_escaped_in_cli_output(tmp_path):
    path = tmp_path / "esc.h5"
    nf.write_collection(path, META, synthetic_records(2, META, seed=0), fsync=False)
    with h5py.File(path, "r+") as f:
        f.attrs["format"] = "\x1b]0;pwned\x07\x1b[2J\x9bneural"
    for command in ("validate", "inspect", "verify"):
        proc = subprocess.run([sys.executable, "-m", "neural_format", command, str(path)], capture_output=True,
                              text=True, timeout=120, env=dict(os.environ, PYTHONPATH=str(HERE.parents[1])))
        out = proc.stdout + proc.stderr
        assert "\x1b" not in out and "\x9b" not in out and "\x07" not in out, (command, out)
        if command != "verify":
            assert "\\x1b" in out, (command, out)


def test_bool_index_and_closed_reader(tmp_path):
    from neural_format.errors import ClosedError, IndexTypeError
    path = tmp_path / "x.h5"
    nf.write_collection(path, META, synthetic_records(3, META, seed=0), fsync=False)
    reader = nf.open(path)
    with pytest.raises(IndexTypeError) as caught:
        reader[True]
    assert isinstance(caught.value, TypeError) and caught.value.code == "NF-E-INDEX"
    reader.close()
    for call in (reader.record_ids, lambda: reader[0], lambda: reader.get("x"), reader.read_all):
        with pytest.raises(ClosedError):
            call()
