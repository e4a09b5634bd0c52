"""record_to_pyg / record_to_pyg_hetero / record_from_pyg / write_pyg, and the no-torch import guarantee."""
import subprocess
import sys

import numpy as np
import pytest

import neural_format as nf
from neural_format.collections.synthetic import synthetic_meta, synthetic_records


def test_import_neural_format_does_not_import_torch():
    code = ("import sys, neural_format, neural_format.convert, neural_format.files.blocks; "
            "neural_format.convert_pickle; "
            "bad = [m for m in ('torch', 'torch_geometric', 'networkx') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


torch = pytest.importorskip("torch")
pyg_data = pytest.importorskip("torch_geometric.data")
from neural_format.adapters.pyg import (data_from_fields, record_from_pyg, record_to_pyg,  # noqa: E402
                                        record_to_pyg_hetero, write_pyg)

META = synthetic_meta(feature_dim=8, entity_feature_dim=8, label_names=("pneumonia", "effusion"))
RECORDS = list(synthetic_records(40, META, seed=7))


def test_data_from_fields_equals_constructor():
    fields = {"x": torch.randn(4, 3), "edge_index": torch.tensor([[0, 1], [1, 2]]), "y": torch.tensor([1.0]),
              "num_patches": 2, "record_id": "r", "node_type": torch.tensor([0, 0, 1, 1])}
    fast, slow = data_from_fields(dict(fields)), pyg_data.Data(**fields)
    assert fast.keys() == slow.keys() and fast.num_nodes == slow.num_nodes == 4
    for key in slow.keys():
        assert fast[key] is slow[key]
    fast.extra = slow.extra = torch.zeros(1)  # the object behaves like any Data afterwards
    assert "extra" in fast.keys()
    batch = pyg_data.Batch.from_data_list([fast, slow])
    assert batch.num_graphs == 2 and batch.edge_index.tolist() == [[0, 1, 4, 5], [1, 2, 5, 6]]


def test_homogeneous_layout():
    record = next(r for r in RECORDS if r.bridge is not None and r.relations.shape[0])
    data = record.to_pyg(label="effusion", label_names=META.label_names)
    p, m = record.num_patches, record.num_entities
    assert data.num_nodes == p + m and data.num_patches == p
    np.testing.assert_array_equal(data.x[:p].numpy(), record.patch_features)
    np.testing.assert_array_equal(data.x[p:].numpy(), record.entity_features)
    e_adj, e_rel = record.patch_edges.shape[0], record.relations.shape[0]
    np.testing.assert_array_equal(data.edge_index[:, :e_adj].T.numpy(), record.patch_edges)
    np.testing.assert_array_equal(data.edge_index[:, e_adj:e_adj + e_rel].T.numpy(), record.relations + p)
    assert data.edge_index[:, -1].tolist() == [record.bridge[0], p + record.bridge[1]]
    assert data.edge_kind.tolist() == [0] * e_adj + [1] * e_rel + [2]
    assert data.node_type.tolist() == [0] * p + [1] * m
    np.testing.assert_array_equal(data.patch_pos.numpy(), record.patch_positions)
    assert data.y.shape == (1,) and np.array_equal(data.y.numpy(), record.labels[[1]], equal_nan=True)
    both = record.to_pyg(label=["pneumonia", "effusion"], label_names=META.label_names)
    assert both.y.shape == (1, 2)
    plain = record.to_pyg(extras=False)
    assert set(plain.keys()) == {"x", "edge_index", "y"}


def test_label_selection_errors_and_dtypes():
    record = RECORDS[1]
    with pytest.raises(ValueError, match="label_names"):
        record.to_pyg(label="pneumonia")
    with pytest.raises(ValueError, match="no label named"):
        record.to_pyg(label="cardiomegaly", label_names=META.label_names)
    unknown = next(r for r in RECORDS if np.isnan(r.labels).any())
    with pytest.raises(ValueError, match="NaN"):
        unknown.to_pyg(label_dtype=torch.long)
    assert record.to_pyg(label=0, label_dtype=torch.long).y.dtype == torch.long


def test_entity_features_absent_or_narrower():
    record = RECORDS[3]
    assert record.num_entities
    bare = nf.Record(record.record_id, record.patch_features, record.patch_scores,
                     entity_types=record.entity_types, entity_assertions=record.entity_assertions,
                     labels=record.labels)
    with pytest.raises(ValueError, match="entity_features='zeros'"):
        record_to_pyg(bare)
    zeros = record_to_pyg(bare, entity_features="zeros")
    assert zeros.x.shape == (record.num_patches + record.num_entities, 8) and not zeros.x[record.num_patches:].any()
    narrow = nf.Record(record.record_id, record.patch_features, record.patch_scores,
                       entity_types=record.entity_types, entity_assertions=record.entity_assertions,
                       entity_features=np.ones((record.num_entities, 3), np.float32), labels=record.labels)
    with pytest.raises(ValueError, match="pad='zeros'"):
        record_to_pyg(narrow)
    padded = record_to_pyg(narrow, pad="zeros")
    assert padded.x[record.num_patches:, :3].eq(1).all() and not padded.x[record.num_patches:, 3:].any()


def test_hetero():
    record = next(r for r in RECORDS if r.bridge is not None)
    data = record_to_pyg_hetero(record, label="pneumonia", label_names=META.label_names)
    assert data["patch"].num_nodes == record.num_patches and data["entity"].num_nodes == record.num_entities
    assert data["patch", "adjacent", "patch"].edge_index.shape[1] == record.patch_edges.shape[0]
    rel = data["entity", "related", "entity"]
    np.testing.assert_array_equal(rel.edge_type.numpy(), record.relation_types)
    assert data["patch", "bridge", "entity"].edge_index.T.tolist() == [list(record.bridge)]
    np.testing.assert_array_equal(data["entity"].type.numpy(), record.entity_types)
    assert record.to_pyg_hetero().metadata()[1] == [("patch", "adjacent", "patch"), ("entity", "related", "entity"),
                                                     ("patch", "bridge", "entity")]


def test_from_pyg_and_write_pyg(tmp_path):
    datas = [r.to_pyg(label_names=META.label_names) for r in RECORDS[:12]]
    record = record_from_pyg(datas[0], record_id="a")
    assert record.num_patches == RECORDS[0].num_patches and record.bridge == RECORDS[0].bridge
    np.testing.assert_array_equal(record.relations, RECORDS[0].relations)
    report = write_pyg(tmp_path / "w.h5", datas, label_names=META.label_names)
    assert report.verified and report.converted == 12 and report.rules == {"declared": 12}
    with nf.open(tmp_path / "w.h5") as reader:
        assert reader.meta.provenance.conversion.source_format == "pyg-objects"
        for original, stored in zip(datas, reader):
            again = stored.to_pyg(label_names=META.label_names)
            assert torch.equal(again.x, original.x) and torch.equal(again.edge_index, original.edge_index)
            assert torch.equal(torch.nan_to_num(again.y, 9), torch.nan_to_num(original.y, 9))
