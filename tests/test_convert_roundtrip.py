"""PyG Data list -> torch.save -> convert -> HDF5 -> to_pyg() gives back the original tensors."""
import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import neural_format as nf
from neural_format.cli import main as cli_main
from neural_format.errors import SchemaError

torch = pytest.importorskip("torch")
pyg_data = pytest.importorskip("torch_geometric.data")
Data, InMemoryDataset = pyg_data.Data, pyg_data.InMemoryDataset


def reference_graph(rng, p, m, dim=6, chain=False):
    """A graph as the NEURAL reference saves it: patch rows, KG rows; patch edges, KG edges, fusion edge."""
    cols = []

    def undirected(pairs, shift):
        for a, b in pairs:
            cols.extend([(a + shift, b + shift), (b + shift, a + shift)])

    if chain:  # connected: every node touches an edge, so the split is never ambiguous
        undirected([(i, i + 1) for i in range(p - 1)], 0)
        undirected([(i, i + 1) for i in range(m - 1)], p)
    else:
        undirected([tuple(rng.choice(p, 2, replace=False)) for _ in range(rng.integers(0, 2 * p))] if p > 1 else [], 0)
        undirected([tuple(rng.choice(m, 2, replace=False)) for _ in range(rng.integers(0, 2 * m))] if m > 1 else [], p)
    if p and m:
        cols.append((int(rng.integers(p)), p + int(rng.integers(m))))
    edge_index = torch.tensor(cols, dtype=torch.long).reshape(-1, 2).T.contiguous()
    return Data(x=torch.from_numpy(rng.standard_normal((p + m, dim)).astype(np.float32)),
                edge_index=edge_index, y=torch.tensor([int(rng.integers(0, 2))]))


def assert_same(original, rebuilt):
    assert torch.equal(rebuilt.x, original.x)
    assert torch.equal(rebuilt.edge_index, original.edge_index)
    assert torch.equal(rebuilt.y, original.y)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sizes=st.lists(st.tuples(st.integers(0, 7), st.integers(0, 5)), min_size=1, max_size=12),
       seed=st.integers(0, 2 ** 16), inmemory=st.booleans())
def test_round_trip_random_lists(tmp_path, sizes, seed, inmemory):
    rng = np.random.default_rng(seed)
    sizes = sizes + [(3, 0), (0, 2)]  # always include empty-KG and empty-visual graphs
    graphs = [reference_graph(rng, p, m) for p, m in sizes]
    source = tmp_path / f"g{seed}.pt"
    if inmemory:
        data, slices = InMemoryDataset.collate(graphs)
        torch.save((data.to_dict(), slices, data.__class__), source)  # what InMemoryDataset.save writes
    else:
        torch.save(graphs, source)
    target = tmp_path / f"g{seed}.h5"
    report = nf.convert_pickle(source, target, patch_nodes=[p for p, _ in sizes], overwrite=True)
    assert report.verified and report.converted == len(graphs)
    assert report.source_format == ("pyg-inmemory-pickle" if inmemory else "pyg-data-list-pickle")
    with nf.open(target) as reader:
        for original, record in zip(graphs, reader):
            assert_same(original, record.to_pyg(label="label", label_names=reader.meta.label_names,
                                                label_dtype=torch.long))


def test_inferred_split_and_report(tmp_path):
    rng = np.random.default_rng(1)
    sizes = [(4, 3), (1, 1), (5, 0), (2, 4), (6, 2)]
    graphs = [reference_graph(rng, p, m, chain=True) for p, m in sizes]
    graphs.append(Data(x=torch.zeros((0, 6)), edge_index=torch.zeros((2, 0), dtype=torch.long), y=torch.tensor([0])))
    source = tmp_path / "ref.pt"
    torch.save(graphs, source)
    report = nf.convert_pickle(source, tmp_path / "ref.h5", unfused="visual")
    validation = nf.validate(tmp_path / "ref.h5")
    assert not [f for f in validation.findings if f.severity == "error"], str(validation)
    assert report.rules == {"fusion-edge": 4, "unfused:visual": 1, "empty": 1}
    assert "patch_positions" in report.unrecoverable and report.verified
    with nf.open(tmp_path / "ref.h5") as reader:
        meta = reader.meta
        assert not meta.has_positions and not meta.has_entity_text
        conversion = meta.provenance.conversion
        assert conversion.source_format == "pyg-data-list-pickle" and "reverse-pair" in conversion.split_rule
        assert len(conversion.source_sha256) == 64
        records = list(reader)
        assert [r.num_patches for r in records] == [4, 1, 5, 2, 6, 0]
        assert records[0].entity_types.tolist() == [-1, -1, -1]
        assert records[0].entity_assertions.tolist() == [-1, -1, -1]
        assert records[2].bridge is None and records[0].bridge is not None
        assert not records[0].patch_scores.any() and meta.provenance.score_aggregation.source == "converted"
        for original, record in zip(graphs, records):
            assert_same(original, record.to_pyg(label_names=meta.label_names, label_dtype=torch.long))


def test_ambiguous_fails_without_output_then_skip(tmp_path):
    rng = np.random.default_rng(2)
    graphs = [reference_graph(rng, 3, 2, chain=True), reference_graph(rng, 4, 0, chain=True)]
    source = tmp_path / "amb.pt"
    torch.save(graphs, source)
    with pytest.raises(SchemaError) as err:
        nf.convert_pickle(source, tmp_path / "amb.h5")
    assert err.value.code == "NF-X001"
    assert not (tmp_path / "amb.h5").exists() and list(tmp_path.glob(".amb*")) == []
    report = nf.convert_pickle(source, tmp_path / "amb.h5", skip_invalid=True)
    assert report.converted == 1 and [(s.index, s.code) for s in report.skipped] == [(1, "NF-X001")]
    assert "graph 1: [NF-X001]" in str(report)


def test_float16_within_stated_tolerance(tmp_path):
    rng = np.random.default_rng(3)
    graphs = [reference_graph(rng, 4, 3, chain=True) for _ in range(5)]
    source = tmp_path / "h.pt"
    torch.save(graphs, source)
    report = nf.convert_pickle(source, tmp_path / "h.h5", dtype="float16")
    rel, absolute = report.tolerance
    assert rel == 2 ** -11 and report.verified and 0 < report.max_abs_error
    with nf.open(tmp_path / "h.h5") as reader:
        for original, record in zip(graphs, reader):
            x = record.to_pyg().x.double()
            bound = torch.clamp(rel * original.x.double().abs(), min=absolute)
            assert bool(((x - original.x.double()).abs() <= bound).all())


def test_float16_overflow_is_an_error(tmp_path):
    graph = Data(x=torch.tensor([[1e6, 0.0], [0.0, 1.0]]), edge_index=torch.tensor([[0], [1]]), y=torch.tensor([1]))
    torch.save([graph], tmp_path / "o.pt")
    with pytest.raises(SchemaError) as err:
        nf.convert_pickle(tmp_path / "o.pt", tmp_path / "o.h5", dtype="float16")
    assert err.value.code == "NF-X006"


def test_patch_count_from_attribute_and_callable(tmp_path):
    rng = np.random.default_rng(4)
    graphs = [reference_graph(rng, 3, 3), reference_graph(rng, 2, 0)]
    for g, p in zip(graphs, (3, 2)):
        g.n_patch = p
    torch.save(graphs, tmp_path / "a.pt")
    report = nf.convert_pickle(tmp_path / "a.pt", tmp_path / "a.h5", patch_nodes="n_patch")
    assert report.rules == {"declared": 2} and report.dropped_attributes == []
    report = nf.convert_pickle(tmp_path / "a.pt", tmp_path / "b.h5", patch_nodes=lambda i, g: (3, 2)[i])
    assert report.rules == {"declared": 2}
    with nf.open(tmp_path / "b.h5") as reader:
        assert [r.num_patches for r in reader] == [3, 2]


def test_cli_convert(tmp_path, capsys):
    rng = np.random.default_rng(5)
    graphs = [reference_graph(rng, 3, 2, chain=True), reference_graph(rng, 2, 0, chain=True)]
    torch.save(graphs, tmp_path / "c.pt")
    assert cli_main(["convert", str(tmp_path / "c.pt"), str(tmp_path / "c.h5")]) == 2
    assert "NF-X001" in capsys.readouterr().err
    code = cli_main(["convert", str(tmp_path / "c.pt"), str(tmp_path / "c.h5"), "--unfused", "visual",
                     "--label-names", "pneumonia", "--json"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["converted"] == 2 and report["verified"]
    code = cli_main(["convert", str(tmp_path / "c.pt"), str(tmp_path / "d.h5"), "--patch-nodes", "2",
                     "--skip-invalid"])
    out = capsys.readouterr().out
    assert code == 0 and "records converted" in out  # graph 0 (3 patches) does not fit 2: skipped
    assert "graph 0: [NF-X002]" in out
    (tmp_path / "counts.json").write_text("[3, null]")
    code = cli_main(["convert", str(tmp_path / "c.pt"), str(tmp_path / "e.h5"), "--patch-nodes-file",
                     str(tmp_path / "counts.json"), "--unfused", "visual", "--dtype", "float16"])
    out = capsys.readouterr().out
    assert code == 0 and "declared: 1" in out and "unfused:visual: 1" in out and "float16" in out


def _chain_graph(bridge_patch, bridge_entity, p=3, m=3):
    """Patch chain 0-1-2 and KG chain 0-1-2 (both centred on node 1), then the given fusion edge."""
    cols = []
    for shift, n in ((0, p), (p, m)):
        for i in range(n - 1):
            cols += [(shift + i, shift + i + 1), (shift + i + 1, shift + i)]
    cols.append((bridge_patch, p + bridge_entity))
    return Data(x=torch.randn(p + m, 4), edge_index=torch.tensor(cols).T.contiguous(), y=torch.tensor([1]))


def test_check_bridge_reports_fusion_edges_off_betweenness(tmp_path, capsys):
    pytest.importorskip("networkx")
    graphs = [_chain_graph(1, 1), _chain_graph(0, 1), _chain_graph(1, 2), _chain_graph(0, 1, p=2),
              _chain_graph(1, 1, p=2)]
    torch.save(graphs, tmp_path / "b.pt")
    counts = [3, 3, 3, 2, 2]
    report = nf.convert_pickle(tmp_path / "b.pt", tmp_path / "b.h5", patch_nodes=counts, check_bridge=True)
    # graphs 3 and 4: a two-node patch chain, both nodes of centrality 0; the reference's max() takes
    # the first in node order, so only graph 3's bridge (at patch 0) is where the reference puts it
    assert report.bridges_checked == 5 and report.bridges_off_betweenness == [1, 2, 4]
    assert "2 of 5 join the highest-betweenness patch and entity (first maximum in node order); not: graphs 1, 2, 4" \
        in str(report)
    with nf.open(tmp_path / "b.h5") as reader:
        assert reader.meta.provenance.fusion.kind == "unknown"
    unchecked = nf.convert_pickle(tmp_path / "b.pt", tmp_path / "c.h5", patch_nodes=counts, check_bridge=False)
    assert unchecked.bridges_checked == 0 and "betweenness" not in str(unchecked)
    torch.save(graphs[:1] + graphs[3:4], tmp_path / "ok.pt")
    verified = nf.convert_pickle(tmp_path / "ok.pt", tmp_path / "ok.h5", patch_nodes=[3, 2])  # checked by default
    assert verified.bridges_checked == 2 and not verified.bridges_off_betweenness
    with nf.open(tmp_path / "ok.h5") as reader:
        fusion = reader.meta.provenance.fusion
        assert (fusion.kind, fusion.centrality, fusion.tie_break) == ("betweenness-bridge", "betweenness", "lowest-index")
    (tmp_path / "n.json").write_text(json.dumps(counts))
    capsys.readouterr()
    code = cli_main(["convert", str(tmp_path / "b.pt"), str(tmp_path / "e.h5"), "--patch-nodes-file",
                     str(tmp_path / "n.json"), "--check-bridge", "--json", "--no-progress"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["bridges_checked"] == 5 and out["bridges_off_betweenness"] == [1, 2, 4]
