"""Reading shards through Python file-like objects and fsspec (h5py's file-like driver)."""
import io
import os
import pickle

import pytest

import neural_format as nf
from neural_format.collections.collection import append_shard, open_collection
from neural_format.collections.manifest import read_manifest
from neural_format.collections.synthetic import synthetic_meta, synthetic_records

META = synthetic_meta(feature_dim=8)
RECORDS = list(synthetic_records(12, META, seed=4, patches=(0, 6), entities=(0, 4)))


@pytest.fixture
def collection(tmp_path):
    directory = tmp_path / "coll"
    append_shard(directory, RECORDS[:5], META)
    append_shard(directory, RECORDS[5:], META)
    return directory


def test_bytesio_and_open_binary_file(collection):
    paths = [collection / e.path for e in read_manifest(collection).shards]
    with nf.open(io.BytesIO(paths[0].read_bytes())) as reader:
        assert reader.read_all() == RECORDS[:5]
    with open(paths[0], "rb") as first, open(paths[1], "rb") as second:
        with open_collection([first, second]) as coll:
            assert len(coll) == 12 and list(coll) == RECORDS and coll.get("rec-000007") == RECORDS[7]
            with pytest.raises(TypeError, match="file-like"):
                pickle.dumps(coll)
    with open_collection(io.BytesIO(paths[1].read_bytes())) as coll:
        assert coll[0] == RECORDS[5]


def test_filelike_collection_refuses_use_in_a_forked_child(collection):
    path = collection / read_manifest(collection).shards[0].path
    coll = open_collection([io.BytesIO(path.read_bytes())])
    assert coll[0] == RECORDS[0]
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            coll[1]
            os.write(write, b"used")
        except RuntimeError:
            os.write(write, b"refused")
        os._exit(0)
    os.close(write)
    assert os.read(read, 16) == b"refused"
    os.waitpid(pid, 0)


def test_fsspec_memory_and_local_filesystems(collection):
    fsspec = pytest.importorskip("fsspec")
    memory = fsspec.filesystem("memory")
    for path in collection.iterdir():
        memory.pipe(f"/coll-test/{path.name}", path.read_bytes())
    try:
        with open_collection("memory://coll-test") as coll:
            assert coll.shard_count == 2 and coll.read_all() == RECORDS
            clone = pickle.loads(pickle.dumps(coll))  # URLs travel; each process opens its own handle
            assert clone[11] == RECORDS[11]
            clone.close()
        with open_collection("memory://coll-test/manifest.json") as coll:
            assert coll[6] == RECORDS[6]
        shard = read_manifest(collection).shards[1].path
        with open_collection(f"memory://coll-test/{shard}") as coll:
            assert list(coll) == RECORDS[5:]
    finally:
        memory.rm("/coll-test", recursive=True)
    with open_collection(f"file://{collection}") as coll:
        assert coll.record_ids() == [r.record_id for r in RECORDS]
