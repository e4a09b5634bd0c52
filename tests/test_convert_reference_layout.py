"""Pickles laid out as the NEURAL reference's stage 2 writes them convert with no option, exactly.

The files come from tests/reference_stage2.py (real torch.save of real PyG Data; see its docstring
for the layout). Every graph must convert, the recovered split, bridge and entity text must be the
truth the generator reports, features must round-trip exactly (float32) or within the stated
float16 bound, and the fusion rule must be recorded as verified betweenness.
"""
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import neural_format as nf
from neural_format.errors import SchemaError

torch = pytest.importorskip("torch")
pytest.importorskip("torch_geometric")
pytest.importorskip("networkx")
sys.path.insert(0, str(Path(__file__).parent))
from reference_stage2 import GraphSpec, Stage2Writer, random_reference_pickle, special_specs, write_reference_pickle  # noqa: E402


def _check_against_truth(target, truths, source_graphs, dtype="float32"):
    with nf.open(target) as reader:
        records = list(reader)
        meta = reader.meta
    assert len(records) == len(truths)
    for record, truth, data in zip(records, truths, source_graphs):
        assert (record.num_patches, record.num_entities) == (truth.patches, truth.entities)
        assert record.bridge == truth.bridge
        rebuilt = record.to_pyg(label_names=meta.label_names)
        assert torch.equal(rebuilt.edge_index, data.edge_index)
        if dtype == "float32":
            assert torch.equal(rebuilt.x, data.x)
        else:
            assert torch.allclose(rebuilt.x, data.x, rtol=2 ** -11, atol=2 ** -25)
        assert rebuilt.y.tolist() == data.y.tolist()
    return records, meta


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_every_reference_graph_converts_with_no_option(tmp_path, dtype):
    source = tmp_path / "fused_graphs_prune_10.pt"
    truths = random_reference_pickle(source, 24, dim=1024, seed=7)
    assert {(t.patches > 0, t.entities > 0) for t in truths} == {(True, True), (True, False), (False, True)}
    report = nf.convert_pickle(source, tmp_path / "out.h5", dtype=dtype, progress=False)
    assert report.converted == 24 and not report.skipped and report.verified
    assert set(report.rules) <= {"entity-row", "label"} and report.rules["label"] == 2
    assert report.corroborated["edge-order"] == 24 and report.corroborated["edge-direction"] >= 18
    assert report.edge_convention.startswith("pairs stored once")
    fused = sum(t.fused for t in truths)
    assert report.bridges_checked == fused and report.bridges_off_betweenness == []
    records, meta = _check_against_truth(tmp_path / "out.h5", truths, torch.load(source, weights_only=False), dtype)
    assert meta.provenance.fusion.kind == "betweenness-bridge"
    conversion = meta.provenance.conversion
    assert "decided by: entity-row 22, label 2" in conversion.split_rule and "entity row:" in conversion.split_rule
    # two KG-only graphs hold text (`label`), the fused ones do not: kept where present, unknown
    # elsewhere (format 1.1.0 entity_text_partial), never invented
    assert meta.has_entity_text and meta.entity_text_partial
    assert report.entity_text_records == 2 and report.entity_text_unknown == fused
    assert [r.entity_text for r in records] == [t.text if t.text is not None else (None if t.entities else [])
                                                for t in truths]
    validation = nf.validate(tmp_path / "out.h5")
    # clean: the reference's one-directional patch edges are kept as stored (NF-R018 exempts
    # converted collections from the missing-reverse rule)
    assert not validation.findings, str(validation)


def test_entity_text_recovered_when_every_graph_with_entities_has_it(tmp_path):
    specs = [GraphSpec([], ["pneumonia", "left base", "nodule"], [[0, 1]], 1.0), GraphSpec([], ["edema"]),
             GraphSpec([3, 4, 60], [], [], 0.0), GraphSpec([143])]
    truths = write_reference_pickle(tmp_path / "t.pt", specs, dim=16)
    report = nf.convert_pickle(tmp_path / "t.pt", tmp_path / "t.h5", progress=False)
    assert report.converted == 4 and report.entity_text_records == 2 and "entity_text" not in report.unrecoverable
    with nf.open(tmp_path / "t.h5") as reader:
        assert reader.meta.has_entity_text
        texts = [r.entity_text for r in reader]
    assert texts == [truths[0].text, ["edema"], [], []]
    assert truths[0].text == ["pneumonia", "left base", "nodule"]


def test_entity_text_kept_where_present_and_unknown_elsewhere(tmp_path):
    """Mixed `label` / no-`label` graphs: the text of graphs that have `label` is kept, in order;
    graphs with entities and no `label` read None (unknown), not empty strings; graphs without
    entities read []. Verified on re-read, hashed, validated, and carried by merge, split and reprune."""
    specs = [GraphSpec([], ["pneumonia", "left base", "nodule"], [[0, 1]], 1.0),   # KG-only: `label`
             GraphSpec([3, 4, 60], ["edema", "effusion"], [[0, 1]], 0.0),         # fused: no `label`
             GraphSpec([143]),                                                     # visual-only
             GraphSpec([], ["édème"]),                                             # KG-only, non-ASCII
             GraphSpec([0, 1], ["x"])]                                             # fused, one entity
    truths = write_reference_pickle(tmp_path / "m.pt", specs, dim=16)
    assert [t.text is not None for t in truths] == [True, False, False, True, False]
    report = nf.convert_pickle(tmp_path / "m.pt", tmp_path / "m.h5", progress=False)
    assert report.converted == 5 and report.verified
    assert (report.entity_text_records, report.entity_text_unknown) == (2, 2)
    assert "entity_text" not in report.unrecoverable
    assert any("entity_text of 2 graph(s)" in u for u in report.unrecoverable)
    expected = [["pneumonia", "left base", "nodule"], None, [], ["édème"], None]
    with nf.open(tmp_path / "m.h5", verify=True) as reader:
        assert reader.meta.has_entity_text and reader.meta.entity_text_partial
        assert [r.entity_text for r in reader] == expected           # one record at a time
        assert [r.entity_text for r in reader.read_all()] == expected  # bulk
        assert reader.cols["/records/entity_text_known"][()].tolist() == [1, 0, 1, 1, 0]
        fused = reader[1]
    # adapters: unknown text gives no `text` node attribute (networkx), never ""
    graph = fused.to_networkx()
    assert graph.number_of_nodes() == 5 and all("text" not in attrs for _, attrs in graph.nodes(data=True))
    assert fused.to_pyg().x.shape[0] == 5
    validation = nf.validate(tmp_path / "m.h5")
    assert not validation.findings, str(validation)
    # the column survives reprune, split and merge (with a collection whose text is all known)
    from neural_format.cli.merge_cmd import merge
    from neural_format.cli.split_cmd import split
    from neural_format.format.metadata import PruningPolicy, TopKPercent
    from neural_format.collections.reprune import reprune_collection
    reprune_collection(tmp_path / "m.h5", tmp_path / "r.h5", PruningPolicy(rule=TopKPercent(percent=50.0)))
    split(tmp_path / "m.h5", tmp_path / "shards", shards=2)
    from neural_format.collections.collection import open_collection
    with open_collection(tmp_path / "shards") as collection:
        assert [r.entity_text for r in collection] == expected
    assert nf.validate(tmp_path / "shards").ok
    full = [GraphSpec([], ["a", "b"], [[0, 1]], 1.0), GraphSpec([], ["c"])]
    write_reference_pickle(tmp_path / "f.pt", full, dim=16)
    nf.convert_pickle(tmp_path / "f.pt", tmp_path / "f.h5", progress=False)
    with nf.open(tmp_path / "f.h5") as reader:
        assert not reader.meta.entity_text_partial
        renamed = [r for r in reader]
    for r in renamed:
        r.record_id = "other-" + r.record_id
    with nf.open(tmp_path / "f.h5") as reader:
        nf.write_collection(tmp_path / "g.h5", reader.meta, renamed, fsync=False)
    # the first source's text is all known: the output is partial because the second one's is
    merge(tmp_path / "merged.h5", [tmp_path / "g.h5", tmp_path / "r.h5"], allow_mixed_provenance=True)
    for path, texts in ((tmp_path / "r.h5", expected), (tmp_path / "merged.h5", [["a", "b"], ["c"]] + expected)):
        with nf.open(path, verify=True) as reader:
            assert reader.meta.entity_text_partial
            assert [r.entity_text for r in reader] == texts
        assert nf.validate(path).ok


def test_single_node_graphs_and_ties(tmp_path):
    specs = [GraphSpec([0]), GraphSpec([], ["edema"]), GraphSpec([7], ["edema"]),
             GraphSpec([0, 1, 12, 13], ["a", "b", "c", "d"], [[0, 1, 2, 3]]),
             GraphSpec([0, 2, 4], ["x", "y", "z"])]
    truths = write_reference_pickle(tmp_path / "s.pt", specs, dim=8)
    report = nf.convert_pickle(tmp_path / "s.pt", tmp_path / "s.h5", progress=False)
    assert report.converted == 5 and report.bridges_checked == 3 and not report.bridges_off_betweenness
    _check_against_truth(tmp_path / "s.h5", truths, torch.load(tmp_path / "s.pt", weights_only=False))
    assert truths[3].bridge == (0, 0) and truths[4].bridge == (0, 0)  # ties: first node in node order


def test_disagreeing_evidence_is_refused_and_listed(tmp_path):
    writer = Stage2Writer(dim=8, seed=3)
    graphs = [writer.graph(spec)[0] for spec in special_specs()]
    # graph 0: a patch row overwritten with the entity row -> the entity rows are no longer the last rows
    graphs[0].x[1] = graphs[0].x[-1]
    # graph 3: its KG-only `label` names one string too many
    graphs[3].label = graphs[3].label + ["extra"]
    torch.save(graphs, tmp_path / "bad.pt")
    with pytest.raises(SchemaError) as err:
        nf.convert_pickle(tmp_path / "bad.pt", tmp_path / "bad.h5", progress=False)
    assert err.value.code == "NF-X002" and "the evidence disagrees" in err.value.message
    assert "entity-row" in err.value.message and not (tmp_path / "bad.h5").exists()
    report = nf.convert_pickle(tmp_path / "bad.pt", tmp_path / "bad.h5", skip_invalid=True, progress=False)
    assert [(s.index, s.code) for s in report.skipped] == [(0, "NF-X002"), (3, "NF-X002")]
    assert "label: no split: `label` holds 4 strings for 3 rows" in report.skipped[1].reason
    assert report.converted == len(graphs) - 2


def test_without_entity_row_the_missing_evidence_is_named(tmp_path):
    # one fused graph whose KG has no edge, next to visual-only graphs: no entity row can be established
    specs = [GraphSpec([0, 1], ["edema"]), GraphSpec([5, 6, 7]), GraphSpec([30, 31])]
    write_reference_pickle(tmp_path / "m.pt", specs, dim=8)
    report = nf.convert_pickle(tmp_path / "m.pt", tmp_path / "m.h5", skip_invalid=True, progress=False)
    assert report.entity_row == "not established"
    skipped = {s.index: s for s in report.skipped}
    assert 0 in skipped and 2 in skipped  # graph 1 may be decided by edge direction alone (set order)
    assert all(s.code == "NF-X001" and "no file-wide entity row" in s.reason for s in report.skipped)
    assert "may be a patch edge or the fusion edge" in skipped[0].reason
    declared = nf.convert_pickle(tmp_path / "m.pt", tmp_path / "m.h5", patch_nodes=[2, 3, 2], overwrite=True,
                                 progress=False)
    assert declared.converted == 3 and declared.rules == {"declared": 3}


@pytest.mark.parametrize("kg_only_first", [False, True])
def test_reference_graphs_in_an_inmemory_dataset_file(tmp_path, kg_only_first):
    from torch_geometric.data import InMemoryDataset
    writer = Stage2Writer(dim=8, seed=5)
    specs = special_specs()
    if kg_only_first:  # collate then keeps `label` (one list per graph) and sums `num_nodes`
        specs = [s for s in specs if not s.kept]
    built = [writer.graph(spec) for spec in specs]
    graphs, truths = [g for g, _ in built], [t for _, t in built]
    data, slices = InMemoryDataset.collate(graphs)
    torch.save((data.to_dict(), slices, data.__class__), tmp_path / "d.pt")
    report = nf.convert_pickle(tmp_path / "d.pt", tmp_path / "d.h5", progress=False)
    assert report.source_format == "pyg-inmemory-pickle" and report.converted == len(graphs)
    _check_against_truth(tmp_path / "d.h5", truths, graphs)
    if kg_only_first:
        assert report.rules["label"] == len(graphs) and report.entity_text_records == len(graphs)
        with nf.open(tmp_path / "d.h5") as reader:
            assert [r.entity_text for r in reader] == [t.text for t in truths]


def test_write_pyg_of_reference_objects(tmp_path):
    from neural_format.adapters.pyg import write_pyg
    writer = Stage2Writer(dim=8, seed=9)
    built = [writer.graph(spec) for spec in special_specs()]
    report = write_pyg(tmp_path / "w.h5", [g for g, _ in built], progress=False)
    assert report.converted == len(built) and not report.skipped and report.rules["label"] == 2
    _check_against_truth(tmp_path / "w.h5", [t for _, t in built], [g for g, _ in built])


@st.composite
def reference_specs(draw):
    side = 6
    specs = []
    for _ in range(draw(st.integers(2, 8))):
        kept = sorted(draw(st.sets(st.integers(0, side * side - 1), max_size=8)))
        m = draw(st.integers(0, 5))
        entities = [f"term{k}" for k in range(m)]
        sentences = draw(st.lists(st.lists(st.integers(0, m - 1), min_size=1, max_size=m, unique=True).map(sorted),
                                  max_size=3)) if m else []
        if not kept and not m:
            kept = [draw(st.integers(0, side * side - 1))]
        specs.append(GraphSpec(kept, entities, sentences, float(draw(st.integers(0, 1)))))
    # the entity row is established from two graphs that end in two or more entities
    specs += [GraphSpec([0], ["u", "v"]), GraphSpec([1], ["u", "v", "w"], [[0, 2]])]
    return specs


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(specs=reference_specs(), seed=st.integers(0, 2 ** 16))
def test_generated_reference_files_convert_exactly(tmp_path, specs, seed):
    source = tmp_path / f"h{seed}.pt"
    truths = write_reference_pickle(source, specs, dim=4, seed=seed, side=6)
    report = nf.convert_pickle(source, tmp_path / f"h{seed}.h5", progress=False, overwrite=True)
    assert report.converted == len(specs) and report.verified
    assert report.bridges_off_betweenness == [] and report.bridges_checked == sum(t.fused for t in truths)
    _check_against_truth(tmp_path / f"h{seed}.h5", truths, torch.load(source, weights_only=False))


def test_stage2_patch_edges_are_the_reference_set_order():
    writer = Stage2Writer(dim=4, seed=0)
    data = writer.visual([0, 1, 12, 13, 50])
    pairs = [tuple(c) for c in data.edge_index.t().tolist()]
    assert all(a < b for a, b in pairs) and len(set(pairs)) == len(pairs) == 4
    assert set(pairs) == {(0, 1), (0, 2), (1, 3), (2, 3)}  # in the order the Python set iterates them
    assert np.isin(4, data.edge_index.numpy(), invert=True)  # patch 50 is isolated


def test_cli_converts_a_reference_file_with_no_option(tmp_path, capsys):
    from neural_format.cli import main as cli_main
    truths = random_reference_pickle(tmp_path / "fused_graphs_prune_10.pt", 12, dim=32, seed=11)
    code = cli_main(["convert", str(tmp_path / "fused_graphs_prune_10.pt"), str(tmp_path / "g.h5"), "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0 and "records converted             12" in out and "records skipped                0" in out
    assert "fusion rule           betweenness-bridge, verified on every fused graph" in out
    assert f"{sum(t.fused for t in truths)} of {sum(t.fused for t in truths)} join" in out


def test_converted_collections_keep_only_the_repeat_part_of_nf_r018(tmp_path):
    from torch_geometric.data import Data
    from neural_format.adapters.pyg import write_pyg
    once = Data(x=torch.randn(3, 4), edge_index=torch.tensor([[0, 1], [1, 2]]), y=torch.tensor([1.0]))
    repeated = Data(x=torch.randn(3, 4), edge_index=torch.tensor([[0, 0], [1, 1]]), y=torch.tensor([0.0]))
    write_pyg(tmp_path / "c.h5", [once, repeated], patch_nodes=3, progress=False)
    findings = [f for f in nf.validate(tmp_path / "c.h5").findings if f.code == "NF-R018"]
    assert len(findings) == 1 and "record 1" in findings[0].location and "repeated edge" in str(findings[0])
