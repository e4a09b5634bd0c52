"""GraphBatchLoader: its batches equal PyG's collation of record.to_pyg / to_pyg_hetero, on files and shards."""
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import neural_format as nf
from neural_format.collections.synthetic import synthetic_meta, synthetic_record, synthetic_records


def test_batch_columns_import_without_torch():
    code = ("import sys, neural_format.adapters.batch_columns, neural_format.adapters.pyg_batches; "
            "bad = [m for m in ('torch', 'torch_geometric') if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


torch = pytest.importorskip("torch")
pytest.importorskip("torch_geometric")
from torch_geometric.loader import DataLoader  # noqa: E402

from neural_format.adapters.batch_columns import epoch_order  # noqa: E402
from neural_format.adapters.pyg_batches import GraphBatchLoader, to_device  # noqa: E402
from neural_format.cli.split_cmd import split  # noqa: E402


def assert_same_tensor(a, b, where):
    assert torch.is_tensor(a) and torch.is_tensor(b), where
    assert a.dtype == b.dtype and a.shape == b.shape, (where, a.dtype, b.dtype, a.shape, b.shape)
    torch.testing.assert_close(a, b, rtol=0, atol=0, equal_nan=True, msg=where)


def assert_same_value(ours, reference, where):
    if torch.is_tensor(reference):
        assert_same_tensor(ours, reference, where)
    elif isinstance(reference, dict):
        assert list(ours) == list(reference), where
        for key, value in reference.items():
            assert_same_value(ours[key], value, f"{where}/{key}")
    elif reference is None:
        assert ours is None, where
    else:
        assert ours == reference, where


def assert_same_batch(ours, reference):
    """Every store (order, keys), field (names, order, tensors, dtypes) and the slice/increment tables equal."""
    assert type(ours) is type(reference)
    assert list(ours.__dict__) == list(reference.__dict__)
    assert len(ours.stores) == len(reference.stores)
    for mine, theirs in zip(ours.stores, reference.stores):
        where = getattr(theirs, "_key", None)
        assert getattr(mine, "_key", None) == where
        assert list(mine.__dict__) == list(theirs.__dict__), where
        assert mine._parent() is ours, where
        assert_same_value(dict(mine._mapping), dict(theirs._mapping), str(where))
        if "_num_nodes" in theirs.__dict__:
            assert mine._num_nodes == theirs._num_nodes, where
    assert ours._num_graphs == reference._num_graphs
    assert_same_value(ours._slice_dict, reference._slice_dict, "slices")
    assert_same_value(ours._inc_dict, reference._inc_dict, "increments")
    for k in {0, reference.num_graphs - 1}:  # get_example undoes the collation with those tables
        mine, theirs = ours.get_example(k), reference.get_example(k)
        for a, b in zip(mine.stores, theirs.stores):
            assert_same_value(dict(a._mapping), dict(b._mapping), f"example {k}")


HETERO_OPTIONS = ("label", "label_names", "label_dtype", "dtype")


def reference_batches(records, order, batch_size, drop_last, hetero=False, **options):
    if hetero:
        options = {k: v for k, v in options.items() if k in HETERO_OPTIONS}
    data = [(records[i].to_pyg_hetero if hetero else records[i].to_pyg)(**options) for i in order]
    return list(DataLoader(data, batch_size=batch_size, shuffle=False, drop_last=drop_last))


@st.composite
def setups(draw):
    dim = draw(st.integers(1, 6))
    entity_dim = draw(st.sampled_from([0, dim, dim + 2]))
    labels = draw(st.sampled_from([("pneumonia",), ("pneumonia", "effusion")]))
    meta = synthetic_meta(feature_dim=dim, entity_feature_dim=entity_dim, dtype=draw(st.sampled_from(["float16", "float32"])),
                          axes=draw(st.sampled_from([2, 3])), label_names=labels)
    n = draw(st.integers(1, 40))
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    patches = draw(st.sampled_from([(0, 0), (0, 6), (3, 12)]))
    entities = draw(st.sampled_from([(0, 0), (0, 4), (1, 5)]))
    records = [synthetic_record(rng, i, meta, patches=patches, entities=entities) for i in range(n)]
    label = draw(st.sampled_from([None, "pneumonia", list(labels), [labels[-1], 0]]))
    options = dict(
        label=label, label_names=meta.label_names,
        label_dtype=draw(st.sampled_from([None, torch.float64])),
        dtype=draw(st.sampled_from([None, torch.float16, torch.float64])),
        entity_features="zeros" if entity_dim == 0 else draw(st.sampled_from(["raise", "zeros"])),
        pad="zeros" if entity_dim not in (0, dim) else draw(st.sampled_from(["raise", "zeros"])),
        extras=draw(st.booleans()), hetero=draw(st.booleans()))
    loading = dict(batch_size=draw(st.integers(1, 9)), shuffle=draw(st.booleans()), drop_last=draw(st.booleans()),
                   seed=draw(st.integers(0, 100)), world_size=draw(st.sampled_from([1, 1, 3])))
    loading["rank"] = draw(st.integers(0, loading["world_size"] - 1))
    storage = dict(shards=draw(st.sampled_from([1, 1, 3])), compression=draw(st.sampled_from([None, None, "gzip"])),
                   mmap=draw(st.booleans()), subset=draw(st.booleans()), epoch=draw(st.integers(0, 3)))
    return meta, records, options, loading, storage


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(setup=setups())
def test_batches_equal_pyg_collation_of_to_pyg(tmp_path_factory, setup):
    meta, records, options, loading, storage = setup
    tmp = tmp_path_factory.mktemp("b")
    path = nf.write_collection(tmp / "c.h5", meta, records, compression=storage["compression"])
    source = path
    if storage["shards"] > 1:  # shards, some possibly empty, read as one collection
        split(path, tmp / "sharded", shards=storage["shards"], compression=storage["compression"])
        source = tmp / "sharded"
    n = len(records)
    subset = np.arange(n)[::2][::-1].copy() if storage["subset"] else None
    loader = GraphBatchLoader(source, indices=subset, mmap=storage["mmap"],
                              **{k: v for k, v in options.items() if k != "label_names"}, **loading)
    loader.set_epoch(storage["epoch"])
    order = loader.rank_indices().tolist()
    ours = list(loader)
    assert len(ours) == len(loader)
    reference = reference_batches(records, order, loading["batch_size"], loading["drop_last"], **options)
    assert len(ours) == len(reference)
    for mine, theirs in zip(ours, reference):
        assert_same_batch(mine, theirs)
    loader.close()


def test_epoch_order_is_distributed_samplers():
    from torch.utils.data.distributed import DistributedSampler
    for count, world, seed, epoch, shuffle in [(10, 3, 0, 0, True), (10, 3, 5, 2, True), (7, 4, 1, 1, False),
                                               (2, 5, 0, 3, True), (32, 1, 9, 4, True)]:
        for rank in range(world):
            sampler = DistributedSampler(range(count), num_replicas=world, rank=rank, shuffle=shuffle, seed=seed)
            sampler.set_epoch(epoch)
            assert epoch_order(count, shuffle=shuffle, seed=seed, epoch=epoch, rank=rank, world=world).tolist() \
                == list(sampler)


META = synthetic_meta(feature_dim=8, entity_feature_dim=8, dtype="float16", label_names=("pneumonia", "effusion"))


@pytest.fixture(scope="module")
def collection(tmp_path_factory):
    path = tmp_path_factory.mktemp("w") / "c.h5"
    records = list(synthetic_records(120, META, seed=2))
    nf.write_collection(path, META, records)
    return path, records


def test_workers_build_the_same_batches(collection):
    path, records = collection
    kw = dict(batch_size=16, shuffle=True, seed=4, label="effusion", dtype=torch.float16)
    in_process = GraphBatchLoader(path, **kw)
    workers = GraphBatchLoader(path, num_workers=2, persistent_workers=True, **kw)
    for epoch in (0, 1):
        in_process.set_epoch(epoch)
        workers.set_epoch(epoch)
        a, b = list(in_process), list(workers)
        assert len(a) == len(b) == 8
        for mine, theirs in zip(b, a):
            assert_same_batch(mine, theirs)
        assert a[0].x.dtype == torch.float16  # float16 stays float16 until the device
    workers.close()


def test_ranks_cover_every_record_once_per_epoch(collection):
    path, _ = collection
    seen = []
    for rank in range(3):
        loader = GraphBatchLoader(path, batch_size=8, shuffle=True, seed=1, rank=rank, world_size=3)
        loader.set_epoch(5)
        seen += [rid for batch in loader for rid in batch.record_id]
    assert len(seen) == 120 and len(set(seen)) == 120


def test_a_batch_is_two_storages(collection):
    """x, and one buffer for every other tensor: a worker passes two shared-memory segments per batch."""
    path, _ = collection
    batch = next(iter(GraphBatchLoader(path, batch_size=8)))
    tensors = [v for v in batch._store._mapping.values() if torch.is_tensor(v)]
    tensors += list(batch._slice_dict.values()) + [v for v in batch._inc_dict.values() if v is not None]
    assert len({t.untyped_storage().data_ptr() for t in tensors}) == 2


def test_to_device_upcasts_after_the_move(collection):
    path, _ = collection
    batch = next(iter(GraphBatchLoader(path, batch_size=4, dtype=torch.float16)))
    moved = to_device(batch, "cpu")
    assert moved.x.dtype == torch.float32 and torch.equal(moved.x, batch.x.float())


def test_missing_entity_features_named_clearly(tmp_path):
    meta = synthetic_meta(feature_dim=4, entity_feature_dim=0)
    path = nf.write_collection(tmp_path / "c.h5", meta, synthetic_records(6, meta, seed=1, entities=(2, 3)))
    with pytest.raises(ValueError, match=r"record 'rec-000000' \(index 0\) has \d entities but the collection "
                                         r"stores no entity features; pass entity_features='zeros'"):
        next(iter(GraphBatchLoader(path, batch_size=3, entity_features="raise")))
    batch = next(iter(GraphBatchLoader(path, batch_size=3)))  # the default: zero rows, node_type marks them
    assert torch.equal(batch.x[batch.node_type == 1], torch.zeros_like(batch.x[batch.node_type == 1]))


def test_bad_arguments(collection):
    path, _ = collection
    with pytest.raises(ValueError, match="batch_size"):
        GraphBatchLoader(path, batch_size=0)
    with pytest.raises(IndexError):
        GraphBatchLoader(path, indices=[0, 120])
    with pytest.raises(ValueError, match="rank"):
        GraphBatchLoader(path, rank=2, world_size=2).rank_indices()


def test_batches_own_their_memory(collection):
    """A sequential batch's tensors never alias the read-only map (writing to them must be safe)."""
    path, _ = collection
    for hetero in (False, True):
        batch = next(iter(GraphBatchLoader(path, batch_size=8, dtype=torch.float16, hetero=hetero)))
        x = batch["patch"].x if hetero else batch.x
        x += 1  # would crash (SIGSEGV) on a view of the PROT_READ map
        assert x.dtype == torch.float16
