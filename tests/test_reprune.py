"""Re-pruning an existing collection from its stored scores (neural_format.collections.reprune)."""
import math

import numpy as np
import pytest

import neural_format as nf
from neural_format.cli import main
from neural_format.graphs.fusion import betweenness_bridge
from neural_format.graphs.grid import grid_adjacency
from neural_format.format.metadata import Nucleus, PruningPolicy, TopKPercent
from neural_format.collections.reprune import reprune_collection
from neural_format.collections.synthetic import synthetic_meta, synthetic_records


@pytest.fixture()
def collection(tmp_path):
    meta = synthetic_meta(feature_dim=8, tiles=True)
    path = tmp_path / "in.h5"
    nf.write_collection(path, meta, synthetic_records(12, meta, seed=3, patches=(0, 30), entities=(0, 6)))
    return path


def test_top_k_percent_keeps_the_best_stored_patches_and_rebuilds_edges_and_bridge(collection, tmp_path):
    out = tmp_path / "out.h5"
    summary = reprune_collection(collection, out, PruningPolicy(rule=TopKPercent(percent=50)))
    with nf.open(collection) as before, nf.open(out) as after:
        assert len(after) == len(before) == summary.records
        assert after.meta.provenance.pruning.applied_to == "re-prune"
        assert after.meta.provenance.pruning.rule == TopKPercent(percent=50)
        assert "re-prune top-k 50%" in after.meta.provenance.history[-1]
        assert "in.h5" in after.meta.provenance.history[-1]
        for old, new in zip(before, after):
            P = old.num_patches
            assert new.num_patches == min(P, max(1, math.ceil(P / 2)))
            if P:
                assert new.patch_scores.min() >= np.sort(old.patch_scores)[::-1][new.num_patches - 1]
            # rows survive unchanged and in their stored order
            rows = [int(np.flatnonzero((old.patch_positions == p).all(1))[0]) for p in new.patch_positions]
            assert rows == sorted(rows)
            np.testing.assert_array_equal(new.patch_features, old.patch_features[rows])
            np.testing.assert_array_equal(new.tiles, old.tiles[rows])
            np.testing.assert_array_equal(new.patch_edges, grid_adjacency(new.patch_positions, "4-neighbour"))
            if old.bridge is not None:
                assert new.bridge == betweenness_bridge(new.num_patches, new.patch_edges,
                                                        new.num_entities, new.relations)
            np.testing.assert_array_equal(new.relations, old.relations)
            assert new.entity_text == old.entity_text and new.report == old.report
    assert summary.patches_after < summary.patches_before


def test_reprune_is_idempotent_for_nucleus_one_and_cli_works(collection, tmp_path, capsys):
    pytest.importorskip("networkx")  # the bridge (betweenness) of `reprune` needs the torch extra
    out = tmp_path / "cli.h5"
    assert main(["reprune", str(collection), str(out), "--nucleus", "0.5", "--min-nodes", "2"]) == 0
    text = capsys.readouterr().out
    assert "patches" in text and "kept" in text
    with nf.open(out) as reader:
        assert reader.meta.provenance.pruning.rule == Nucleus(p=0.5)
        assert reader.meta.provenance.pruning.min_nodes == 2
        for record in reader:
            assert record.num_patches >= min(2, record.num_patches)
    # re-pruning the output by the same rule on its (now smaller) stored mass can only shrink it
    again = tmp_path / "again.h5"
    reprune_collection(out, again, PruningPolicy(rule=Nucleus(p=1.0), min_nodes=0))
    with nf.open(out) as a, nf.open(again) as b:
        for ra, rb in zip(a, b):
            assert rb.num_patches <= ra.num_patches


def test_reprune_refuses_to_overwrite_its_input(collection):
    with pytest.raises(ValueError):
        reprune_collection(collection, collection, PruningPolicy(rule=TopKPercent(percent=5)))
    assert main(["reprune", str(collection), str(collection) + ".x", "--nucleus", "1.5"]) == 2
