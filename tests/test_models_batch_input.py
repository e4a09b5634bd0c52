"""HomogeneousBatches: the GCN input built from the columns equals PyG's collation of graph_input.convert."""
import numpy as np
import pytest

import neural_format as nf
from neural_format.collections.synthetic import synthetic_meta, synthetic_records

torch = pytest.importorskip("torch")
pytest.importorskip("torch_geometric")
from torch_geometric.loader import DataLoader  # noqa: E402

from neural_format.adapters.batch_columns import CollectionColumns  # noqa: E402
from neural_models.batch_input import HomogeneousBatches  # noqa: E402
from neural_models.graph_input import NodeFeatures, convert  # noqa: E402
from neural_models.views import view  # noqa: E402


@pytest.fixture(scope="module", params=[0, 6])
def collection(request, tmp_path_factory):
    meta = synthetic_meta(feature_dim=5, entity_feature_dim=request.param, dtype="float16",
                          label_names=("pneumonia", "effusion"))
    records = list(synthetic_records(60, meta, seed=11))
    records[3].entity_types[:] = -1  # codes outside the vocabulary go to the extra slot
    path = nf.write_collection(tmp_path_factory.mktemp("bi") / "c.h5", meta, records)
    return path, meta, records


@pytest.mark.parametrize("modality, bridge", [("fused", True), ("fused", False), ("image", True), ("text", True)])
def test_batches_equal_collated_convert(collection, modality, bridge):
    path, meta, records = collection
    features = NodeFeatures.from_meta(meta)
    columns = CollectionColumns(path, extras=False)
    assemble = HomogeneousBatches(features, 1, modality, bridge)
    order = np.random.default_rng(0).permutation(60)
    order = order[~np.isnan([records[i].labels[1] for i in order])]
    graphs = [convert(view(records[i], modality, bridge), features, 1, "gcn") for i in order]
    reference = list(DataLoader(graphs, batch_size=9))
    for k, expected in enumerate(reference):
        got = assemble(columns.gather(order[9 * k: 9 * (k + 1)]))
        assert list(got._store._mapping) == list(expected._store._mapping)
        for key in ("x", "edge_index", "y", "batch", "ptr"):
            assert got[key].dtype == expected[key].dtype and torch.equal(got[key], expected[key]), key
        assert got.num_nodes == expected.num_nodes and got.num_graphs == expected.num_graphs
        for key in ("x", "edge_index", "y"):
            assert torch.equal(got._slice_dict[key], expected._slice_dict[key]), key
            assert torch.equal(got._inc_dict[key], expected._inc_dict[key]), key
        last = got.num_graphs - 1
        assert torch.equal(got.get_example(last).edge_index, expected.get_example(last).edge_index)


def test_training_from_the_file_is_the_same_with_loader_workers(tmp_path):
    from neural_models.examples import load_examples
    from neural_models.experiment import split_examples
    from neural_models.planted import write_planted_collection
    from neural_models.registry import new_model
    from neural_models.train import TrainConfig, fit, predict, seed_everything
    path = write_planted_collection(tmp_path / "p.h5", 60, seed=2, feature_dim=6)
    examples = load_examples([path], "pneumonia")
    split = split_examples(examples, 0)
    results = []
    for workers in (0, 1):
        config = TrainConfig(hidden=8, max_epochs=2, patience=2, seed=0, workers=workers)
        seed_everything(0)
        model = new_model("gcn", examples.features, hidden=8, dropout=0.0)
        train = examples.graphs("gcn", indices=split.train)
        assert type(train).__name__ == "FileExamples"
        history = fit(model, train, examples.graphs("gcn", indices=split.val), config).history
        results.append((history, predict(model, examples.graphs("gcn", indices=split.test))))
    assert results[0][0] == results[1][0]
    assert np.array_equal(results[0][1], results[1][1])


def test_labels_only_examples_match_the_records(tmp_path):
    """load_examples(records=False) (what `train --model gcn` uses) gives the same examples and split."""
    from neural_format.cli.split_cmd import split as split_file
    from neural_models.examples import load_examples
    from neural_models.experiment import split_examples
    meta = synthetic_meta(feature_dim=4, label_names=("pneumonia",))
    path = nf.write_collection(tmp_path / "c.h5", meta, synthetic_records(50, meta, seed=4))
    split_file(path, tmp_path / "sharded", shards=3)
    sources = [tmp_path / "sharded", path]
    full, light = load_examples(sources, "pneumonia"), load_examples(sources, "pneumonia", records=False)
    assert light.records is None and len(light) == len(full) and light.unknown_labels == full.unknown_labels
    assert np.array_equal(light.labels, full.labels) and np.array_equal(light.positions, full.positions)
    assert light.record_ids == full.record_ids and light.group_keys == full.group_keys
    a, b = split_examples(full, 3), split_examples(light, 3)
    assert all(np.array_equal(x, y) for x, y in zip(a.as_dict().values(), b.as_dict().values()))
    with pytest.raises(ValueError, match="records=True"):
        light.graphs("hetero")
