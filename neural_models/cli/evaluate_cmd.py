"""``neural-format evaluate MODEL_DIR COLLECTION...``: reload a saved model and score collections.

By default the run's own test split is rebuilt from the split settings in ``config.json`` (same
seed, fractions and patient grouping) and, when the model directory holds
``test_predictions.json`` and the collections are the ones it was trained on, the new scores are
compared with the saved ones bit for bit (``reproduced`` in the output; exit code 1 if not).
Other collections with the same feature layout (e.g. graphs rebuilt from generated reports)
are scored on the test split of their own labels and patient keys. ``--all-records`` scores every labelled record instead (an
external test set). Writes ``evaluation.json`` and ``evaluation_roc.png`` into ``--out``
(default: the model directory).
"""
from __future__ import annotations

from pathlib import Path

from neural_format.cli import int_at_least
from ..metrics import BOOTSTRAP_RESAMPLES
from .. import optional_deps


def run(args) -> int:
    import numpy as np

    from .. import metrics
    from ..checkpoint import load_model
    from ..examples import load_examples
    from ..experiment import split_examples
    from ..plots import plot_roc
    from ..run_files import PREDICTIONS_NAME, read_predictions, write_json
    from ..train import predict
    from ..train_config import PREDICT_BATCH_SIZE

    torch = optional_deps.load("torch", needed_by="`neural-format evaluate`")

    torch.set_num_threads(max(1, args.threads))
    model_dir = Path(args.model_dir)
    model, features, config = load_model(model_dir)  # NM-M001 before anything is created
    out = Path(args.out) if args.out else model_dir
    out.mkdir(parents=True, exist_ok=True)
    examples = load_examples(args.collections, config["label"], records=config["model"]["kind"] != "gcn")
    features.check(examples.meta)
    if args.all_records:
        indices = np.arange(len(examples))
        scope = "all labelled records"
    else:
        split = config["split"]
        indices = split_examples(examples, split["seed"], split["one_per_patient"]).test
        scope = "test split rebuilt from config.json"
    graphs = examples.graphs(config["model"]["kind"], config["modality"], config["bridge"], indices)
    scores = predict(model, graphs, batch_size=config.get("predict_batch_size", PREDICT_BATCH_SIZE))
    labels = examples.labels[indices]
    all_ids = examples.record_ids
    ids = [all_ids[i] for i in indices]
    summary = metrics.summarise(labels, scores, n_resamples=args.bootstrap, seed=config["train"]["seed"])
    payload = {"model_dir": str(model_dir), "sources": examples.sources, "scope": scope,
               "label": config["label"], "modality": config["modality"], "bridge": config["bridge"], "test": summary}
    same_sources = [str(Path(s).resolve()) for s in examples.sources] == \
        [str(Path(s).resolve()) for s in config.get("sources", [])]
    if not args.all_records and same_sources and (model_dir / PREDICTIONS_NAME).exists():
        saved = read_predictions(model_dir)
        same_ids = saved["record_ids"] == ids
        payload["reproduced"] = bool(same_ids and np.array_equal(saved["scores"], scores))
        payload["max_abs_score_difference"] = (float(np.max(np.abs(saved["scores"] - scores), initial=0.0))
                                               if same_ids else None)
    write_json(out / "evaluation.json", payload)
    plot_roc({config["modality"]: (labels, scores, summary["roc_auc"])}, out / "evaluation_roc.png",
             title=f"ROC: {config['label']} ({scope})")
    ci = summary["roc_auc_ci95"]
    pci = summary["pr_auc_ci95"]
    print(f"{config['modality']} {config['model']['kind']} on {summary['n']} records ({scope}): "
          f"ROC-AUC {summary['roc_auc']:.3f} [{ci[0]:.3f}, {ci[1]:.3f}], "
          f"PR-AUC {summary['pr_auc']:.3f} [{pci[0]:.3f}, {pci[1]:.3f}]")
    if "reproduced" in payload:
        print(f"saved test predictions reproduced exactly: {payload['reproduced']}")
    print(f"wrote {out / 'evaluation.json'} and {out / 'evaluation_roc.png'}")
    return 0 if payload.get("reproduced", True) else 1


def register(sub) -> None:
    p = sub.add_parser("evaluate", help="reload a saved model (safetensors + JSON) and report test AUCs")
    p.add_argument("model_dir", help="a model directory written by 'neural-format train' (e.g. OUT/fused)")
    p.add_argument("collections", nargs="+")
    p.add_argument("--out", default=None, help="where to write evaluation.json (default: MODEL_DIR)")
    p.add_argument("--all-records", action="store_true", help="score every labelled record, not the test split")
    p.add_argument("--bootstrap", type=int_at_least(1), default=BOOTSTRAP_RESAMPLES)
    p.add_argument("--threads", type=int_at_least(1), default=1, help="torch intra-op threads")
    p.set_defaults(func=run)
