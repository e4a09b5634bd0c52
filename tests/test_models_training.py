"""Reference models: shapes, learning a planted signal, exact reload, no pickles, train/evaluate CLI."""
import json

import pytest
pytest.importorskip("torch")
import torch  # noqa: E402

pytest.importorskip("torch_geometric")

from neural_format.cli import main as cli_main  # noqa: E402
from neural_format.collections.synthetic import synthetic_meta, synthetic_records  # noqa: E402
from neural_models.checkpoint import load_model, save_model  # noqa: E402
from neural_models.examples import load_examples  # noqa: E402
from neural_models.experiment import run_variant, split_examples  # noqa: E402
from neural_models.graph_input import NodeFeatures, convert  # noqa: E402
from neural_models.planted import write_planted_collection  # noqa: E402
from neural_models.registry import new_model  # noqa: E402
from neural_models.train import TrainConfig, make_loader, predict  # noqa: E402
from neural_models.views import view  # noqa: E402

torch.set_num_threads(1)  # tiny graphs: extra intra-op threads only contend on a shared machine
PICKLE_SUFFIXES = {".pt", ".pth", ".pkl", ".pickle", ".bin", ".ckpt"}


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    return write_planted_collection(tmp_path_factory.mktemp("planted") / "planted.h5", 160, seed=3, feature_dim=8,
                                    image_signal=0.5, text_signal=0.4)


@pytest.mark.parametrize("kind", ["gcn", "hetero"])
@pytest.mark.parametrize("modality", ["fused", "image", "text"])
def test_forward_shapes_including_empty_graphs(kind, modality):
    meta = synthetic_meta(feature_dim=8)
    # patches/entities from 0: some graphs have no patch or no entity nodes at all
    records = list(synthetic_records(7, meta, seed=4, patches=(0, 6), entities=(0, 4)))
    features = NodeFeatures.from_meta(meta)
    graphs = [convert(view(r, modality), features, 0, kind) for r in records]
    model = new_model(kind, features, hidden=8)
    batch = next(iter(make_loader(graphs, 7, shuffle=False)))
    logits = model(batch)
    assert logits.shape == (7,) and torch.isfinite(logits).all()
    if kind == "gcn":
        assert batch.x.shape[1] == features.homogeneous_dim
        if modality == "fused":
            with_bridge = sum(r.bridge is not None for r in records)
            plain = [convert(view(r, "fused", bridge=False), features, 0, kind) for r in records]
            assert sum(g.edge_index.shape[1] for g in graphs) - sum(g.edge_index.shape[1] for g in plain) == 2 * with_bridge


def test_short_training_learns_planted_signal(planted):
    examples = load_examples([planted], "pneumonia")
    split = split_examples(examples, seed=0)
    result = run_variant(examples, split, TrainConfig(model="gcn", hidden=16, max_epochs=10, patience=4, seed=0),
                         bootstrap=50)
    assert result.summary["roc_auc"] > 0.8
    assert result.summary["split_sizes"]["test"] == len(split.test) > 0


@pytest.mark.parametrize("kind", ["gcn", "hetero"])
def test_save_load_reproduces_predictions_exactly(planted, tmp_path, kind):
    examples = load_examples([planted], "pneumonia")
    split = split_examples(examples, seed=1)
    result = run_variant(examples, split, TrainConfig(model=kind, hidden=8, max_epochs=3, seed=1), bootstrap=20)
    graphs = examples.graphs(kind, "fused", True, split.test)
    before = torch.from_numpy(predict(result.model, graphs))
    save_model(tmp_path / "m", result.model, examples.features, extra={"note": "test"})
    model, features, config = load_model(tmp_path / "m")
    assert features == examples.features and config["note"] == "test"
    after = torch.from_numpy(predict(model, graphs))
    assert torch.equal(before, after)
    # a config edited after saving no longer matches the weights
    path = tmp_path / "m" / "config.json"
    edited = json.loads(path.read_text())
    edited["model"]["hidden"] = 9
    path.write_text(json.dumps(edited))
    with pytest.raises(ValueError, match="config_sha256"):
        load_model(tmp_path / "m")


def test_train_and_evaluate_commands(planted, tmp_path, capsys):
    out = tmp_path / "run"
    code = cli_main(["train", str(planted), "--out", str(out), "--hidden", "8", "--max-epochs", "4",
                     "--bootstrap", "50", "--quiet"])
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["test"]) == {"fused", "image", "text"}
    for summary in metrics["test"].values():
        low, high = summary["roc_auc_ci95"]
        assert low <= summary["roc_auc"] <= high
    assert (out / "roc.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    written = [p for p in out.rglob("*") if p.is_file()]
    assert not [p for p in written if p.suffix in PICKLE_SUFFIXES]
    assert {p.suffix for p in written} <= {".json", ".safetensors", ".png"}
    import stat
    modes = {stat.S_IMODE(p.stat().st_mode) for p in (out / "fused").iterdir()}
    assert len(modes) == 1, modes  # model.safetensors like config.json (safetensors' save_file made 0600)
    assert cli_main(["evaluate", str(out / "fused"), str(planted), "--bootstrap", "50"]) == 0
    evaluation = json.loads((out / "fused" / "evaluation.json").read_text())
    assert evaluation["reproduced"] is True
    assert evaluation["test"]["roc_auc"] == metrics["test"]["fused"]["roc_auc"]
    assert "reproduced exactly: True" in capsys.readouterr().out
    # the run's top directory is not a model: a coded error names the model directories in it
    assert cli_main(["evaluate", str(out), str(planted)]) == 2
    err = capsys.readouterr().err
    assert "NM-M001" in err and str(out / "fused") in err and "Traceback" not in err
    # a model directory that does not exist is NM-M001 too, and is not created as the output
    assert cli_main(["evaluate", str(tmp_path / "no-model"), str(planted)]) == 2
    assert "NM-M001" in capsys.readouterr().err and not (tmp_path / "no-model").exists()
    # a collection whose features do not fit: a coded error saying what differs, no traceback
    other = write_planted_collection(tmp_path / "narrow.h5", 40, seed=1, feature_dim=4)
    assert cli_main(["evaluate", str(out / "fused"), str(other)]) == 2
    err = capsys.readouterr().err
    assert "NM-F001" in err and "patch_dim" in err
