"""CollectionDataset: equals record.to_pyg, batched reads, DataLoader workers each open their own handle."""
import pickle

import pytest

import neural_format as nf
from neural_format.collections.synthetic import synthetic_meta, synthetic_records

torch = pytest.importorskip("torch")
pytest.importorskip("torch_geometric")
from torch_geometric.loader import DataLoader  # noqa: E402

from neural_format.adapters.torch_dataset import CollectionDataset  # noqa: E402

META = synthetic_meta(feature_dim=8, entity_feature_dim=8, label_names=("pneumonia", "effusion"))


@pytest.fixture(scope="module")
def collection(tmp_path_factory):
    path = tmp_path_factory.mktemp("ds") / "c.h5"
    records = list(synthetic_records(150, META, seed=5))
    nf.write_collection(path, META, records)
    return path, records


def _equal(a, b):
    assert set(a.keys()) == set(b.keys())
    for key in b.keys():
        if torch.is_tensor(b[key]):
            assert a[key].dtype == b[key].dtype and a[key].shape == b[key].shape
            assert torch.equal(torch.nan_to_num(a[key], 5.0), torch.nan_to_num(b[key], 5.0)), key
        else:
            assert a[key] == b[key], key


@pytest.fixture(scope="module")
def compressed(tmp_path_factory, collection):
    path = tmp_path_factory.mktemp("dsz") / "z.h5"
    nf.write_collection(path, META, collection[1], compression="gzip")
    return path, collection[1]


@pytest.mark.parametrize("readahead, preload, mmap, gzip", [
    (0, False, False, False), (64, False, False, False), (512, True, False, False),
    (0, False, True, False), (64, False, True, False), (512, False, True, False),
    (64, False, True, True)])  # a compressed file cannot be mapped: read through HDF5
def test_items_equal_record_to_pyg(collection, compressed, readahead, preload, mmap, gzip):
    path, records = compressed if gzip else collection
    dataset = CollectionDataset(path, label="effusion", readahead=readahead, preload=preload, mmap=mmap)
    dataset[0]
    assert (dataset._full is not None) == (preload or (mmap and not gzip))
    assert len(dataset) == 150
    order = list(range(40, 80)) + [3, 149, 3, -1, 17, 18, 90] + list(range(100, 140)) + [60, 61]
    got = dataset.__getitems__(order)
    for graph, i in zip(got, order):
        _equal(graph, records[i].to_pyg(label="effusion", label_names=META.label_names))
        assert graph.edge_index.stride(1) == 1  # rows contiguous; a view like InMemoryDataset hands out
    _equal(dataset[7], records[7].to_pyg(label="effusion", label_names=META.label_names))
    # sequential batches served from read-ahead blocks, including one that straddles two blocks
    for start in (0, 32, 56, 130):
        for graph, i in zip(dataset.__getitems__(list(range(start, min(150, start + 20)))), range(start, 150)):
            _equal(graph, records[i].to_pyg(label="effusion", label_names=META.label_names))
    with pytest.raises(IndexError):
        dataset[150]


def test_pickles_without_handle(collection):
    path, _ = collection
    dataset = CollectionDataset(path)
    dataset[0]
    assert dataset._reader is not None
    clone = pickle.loads(pickle.dumps(dataset))
    assert clone._reader is None and clone._built is None
    assert clone[1].record_id == "rec-000001"


@pytest.mark.parametrize("workers", [0, 2])
def test_dataloader_workers(collection, workers):
    path, records = collection
    dataset = CollectionDataset(path, label="pneumonia")
    loader = DataLoader(dataset, batch_size=16, shuffle=True, num_workers=workers,
                        generator=torch.Generator().manual_seed(0))
    seen = []
    nodes = 0
    for batch in loader:
        seen += list(batch.record_id)
        nodes += batch.num_nodes
        assert batch.y.shape == (batch.num_graphs,)
    assert sorted(seen) == [r.record_id for r in records]
    assert nodes == sum(r.num_patches + r.num_entities for r in records)


def test_hetero_items(collection):
    path, records = collection
    dataset = CollectionDataset(path, hetero=True, label="pneumonia")
    data = dataset[5]
    assert data["patch"].num_nodes == records[5].num_patches and data.record_id == records[5].record_id


@pytest.mark.parametrize("meta_kw, options", [
    ({}, {"extras": False}),
    ({}, {"label": ["effusion", "pneumonia"]}),
    ({}, {"label": None, "dtype": torch.float64}),
    ({"axes": 3}, {"label": "pneumonia"}),
    ({"entity_feature_dim": 0}, {"label": "pneumonia", "entity_features": "zeros"}),
    ({"entity_feature_dim": 5}, {"label": "pneumonia", "pad": "zeros"}),
    ({"dtype": "float16"}, {"label": "pneumonia"}),
])
@pytest.mark.parametrize("mmap", [True, False])
def test_block_builds_equal_record_to_pyg(tmp_path, meta_kw, options, mmap):
    """Every option of to_pyg gives the same graphs through the dataset's block builder."""
    meta = synthetic_meta(**{"feature_dim": 8, "entity_feature_dim": 8, "label_names": ("pneumonia", "effusion"),
                             **meta_kw})
    records = list(synthetic_records(70, meta, seed=11))
    path = nf.write_collection(tmp_path / "o.h5", meta, records)
    dataset = CollectionDataset(path, readahead=32, mmap=mmap, **options)
    to_pyg = dict(options)
    order = list(range(0, 40)) + [69, 5, 5, 33] + list(range(50, 70))
    for graph, i in zip(dataset.__getitems__(order), order):
        _equal(graph, records[i].to_pyg(label_names=meta.label_names, **to_pyg))
    for start in (0, 20, 40, 60):  # sequential batches: sub-ranges of read-ahead blocks
        batch = list(range(start, min(70, start + 20)))
        for graph, i in zip(dataset.__getitems__(batch), batch):
            _equal(graph, records[i].to_pyg(label_names=meta.label_names, **to_pyg))


def test_spawned_worker_maps_its_own_file(collection):
    """Platforms that spawn workers (macOS, Windows) unpickle the dataset in a fresh interpreter."""
    path, records = collection
    dataset = CollectionDataset(path, label="pneumonia")
    dataset[0]  # the parent's map must not travel to the child
    loader = DataLoader(dataset, batch_size=50, num_workers=1, multiprocessing_context="spawn")
    seen = [rid for batch in loader for rid in batch.record_id]
    assert seen == [r.record_id for r in records]


def test_builder_like_file_loads_by_default_and_refusal_names_a_record(tmp_path):
    """No entity features (the builders' default): zero entity rows by default; "raise" names the record."""
    meta = synthetic_meta(feature_dim=4, entity_feature_dim=0)
    records = list(synthetic_records(5, meta, seed=3, entities=(1, 3)))
    path = nf.write_collection(tmp_path / "b.h5", meta, records)
    dataset = CollectionDataset(path, label="pneumonia")
    _equal(dataset[2], records[2].to_pyg(label="pneumonia", label_names=meta.label_names, entity_features="zeros"))
    with pytest.raises(ValueError, match=r"record 'rec-000000' \(index 0\) has \d entities but the collection stores "
                                         r"no entity features; pass entity_features='zeros'"):
        CollectionDataset(path, entity_features="raise")


def test_sharded_collection_and_pyg_helpers(tmp_path, collection):
    from neural_format.cli.split_cmd import split
    path, records = collection
    split(path, tmp_path / "sharded", shards=3)
    dataset = CollectionDataset(tmp_path / "sharded", label="effusion")
    assert len(dataset) == 150 and dataset.num_features == 8 and dataset.num_classes == 2
    order = [149, 0, 50, 51, 99, 100, 3]
    for graph, i in zip(dataset.__getitems__(order), order):
        _equal(graph, records[i].to_pyg(label="effusion", label_names=META.label_names))
    assert CollectionDataset(path, label=["pneumonia", "effusion"]).num_classes == 2
    assert CollectionDataset(path, label=None).num_classes == 2
    view = dataset[10:20]
    assert len(view) == 10 and view.indices() == list(range(10, 20))
    _equal(view[-1], records[19].to_pyg(label="effusion", label_names=META.label_names))
    shuffled, perm = dataset.shuffle(seed=1, return_perm=True)
    assert sorted(shuffled.indices()) == list(range(150)) and shuffled.indices() == perm.tolist()
    assert shuffled.indices() == dataset.shuffle(seed=1).indices()
    picked = view.index_select([3, 0])
    assert picked.indices() == [13, 10]
    _equal(picked[0], records[13].to_pyg(label="effusion", label_names=META.label_names))
    batches = list(DataLoader(picked, batch_size=2, num_workers=1))
    assert batches[0].record_id == ["rec-000013", "rec-000010"]
    with pytest.raises(IndexError):
        view[10]
