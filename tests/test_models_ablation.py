"""Ablation: in-memory re-pruning, modality views, and the one-command table + plot."""
import json
import math

import pytest
pytest.importorskip("torch")
import torch  # noqa: E402

pytest.importorskip("torch_geometric")

from neural_format.cli import main as cli_main  # noqa: E402
from neural_models.ablation import retained  # noqa: E402
from neural_models.examples import load_examples  # noqa: E402
from neural_models.planted import write_planted_collection  # noqa: E402
from neural_models.views import view  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return write_planted_collection(tmp_path_factory.mktemp("abl") / "tiny.h5", 60, seed=5, feature_dim=8,
                                    patches=(5, 25))


def test_retention_keeps_top_scored_stored_patches(tiny):
    examples = load_examples([tiny], "pneumonia")
    pruned = retained(examples, 10.0)
    for before, after in zip(examples.records, pruned.records):
        assert after.num_patches == max(1, math.ceil(round(0.1 * before.num_patches, 9)))
        # the kept scores are the highest stored ones
        assert sorted(after.patch_scores.tolist()) == sorted(before.patch_scores.tolist())[-after.num_patches:]
        assert after.num_entities == before.num_entities
        if after.bridge is not None:
            assert 0 <= after.bridge[0] < after.num_patches
    assert retained(examples, 100.0) is examples


def test_views_drop_the_other_modality(tiny):
    record = load_examples([tiny], "pneumonia").records[0]
    image = view(record, "image")
    text = view(record, "text")
    assert image.num_entities == 0 and image.bridge is None and image.num_patches == record.num_patches
    assert text.num_patches == 0 and text.patch_edges.shape == (0, 2) and text.num_entities == record.num_entities
    assert view(record, "fused", bridge=False).bridge is None
    with pytest.raises(ValueError, match="modality"):
        view(record, "audio")


def test_ablate_command_writes_json_markdown_and_png(tiny, tmp_path):
    out = tmp_path / "ablation"
    code = cli_main(["ablate", str(tiny), "--out", str(out), "--retention", "100", "10", "--hidden", "8",
                     "--max-epochs", "2", "--bootstrap", "20", "--quiet"])
    assert code == 0
    payload = json.loads((out / "ablation.json").read_text())
    rows = payload["rows"]
    assert len(rows) == 2 * 4
    # the planted file declares top-k 10 % at build: the sweep is of what is left, and says so
    assert payload["warnings"] and "already pruned (top-k 10%" in payload["warnings"][0]
    assert "> **Warning:** the input is already pruned" in (out / "ablation.md").read_text()
    assert {r["variant"] for r in rows} == {"fused", "image-only", "text-only", "fused-no-bridge"}
    kept = {r["retention_percent"]: r["patches_kept"] for r in rows}
    assert kept[10.0] < kept[100.0] == rows[0]["patches_stored"]
    text_rows = [r for r in rows if r["variant"] == "text-only"]
    assert text_rows[0]["roc_auc"] == text_rows[1]["roc_auc"]
    markdown = (out / "ablation.md").read_text()
    assert markdown.count("\n| ") == len(rows) + 1  # the header line + one line per row
    assert (out / "auc_vs_retention.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_already_pruned_warning_names_what_the_sweep_keeps(tiny):
    import dataclasses

    from neural_format.format.metadata import KeepAll, PruningPolicy
    from neural_models.ablation import already_pruned_warning
    from neural_models.examples import load_examples
    examples = load_examples([tiny], "pneumonia")
    text = already_pruned_warning(examples, [100, 10])
    stored = sum(r.num_patches for r in examples.records) / len(examples.records)
    assert f"stores {stored:.1f} patches per record" in text
    kept = [max(1, -(-r.num_patches // 10)) for r in examples.records]
    assert f"10% -> {sum(kept) / len(kept):.1f} patches per record" in text
    provenance = examples.meta.provenance.model_copy(update={"pruning": PruningPolicy(rule=KeepAll())})
    unpruned = dataclasses.replace(examples, meta=examples.meta.model_copy(update={"provenance": provenance}))
    assert already_pruned_warning(unpruned, [100, 10]) is None
