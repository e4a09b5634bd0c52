"""``neural-format train COLLECTION... --out DIR``: train, test and save the reference MPNN.

Splits the labelled records 70/15/15 (stratified; all records of a patient in one split), trains
one model per requested modality on the same split with early stopping on validation AUC, and
writes, under ``--out``:

* ``<modality>/model.safetensors`` + ``<modality>/config.json`` (reload with ``evaluate``),
* ``<modality>/test_predictions.json`` (record IDs, labels and float32 scores of the test split),
* ``metrics.json`` (ROC-AUC and PR-AUC with bootstrap 95% CIs per modality, split, settings),
* ``roc.png`` (test ROC curves of every trained modality).
"""
from __future__ import annotations

import sys
from pathlib import Path

from ..metrics import BOOTSTRAP_RESAMPLES
from ..train_config import PREDICT_BATCH_SIZE
from .. import optional_deps

MODALITY_CHOICES = ("fused", "image", "text", "all")


def add_training_arguments(p) -> None:
    from neural_format.cli import int_at_least

    from ..train_config import TrainConfig  # torch-free: the training defaults live there
    defaults = TrainConfig()
    p.add_argument("collections", nargs="+", help="collection files, shard lists or collection directories")
    p.add_argument("--label", default="pneumonia", help="label column to predict (default: pneumonia)")
    p.add_argument("--model", choices=("gcn", "hetero"), default=defaults.model)
    p.add_argument("--seed", type=int, default=defaults.seed, help="seed for the split, initialisation and batches")
    p.add_argument("--hidden", type=int_at_least(1), default=defaults.hidden)
    p.add_argument("--dropout", type=float, default=defaults.dropout)
    p.add_argument("--lr", type=float, default=defaults.lr)
    p.add_argument("--batch-size", type=int_at_least(1), default=defaults.batch_size)
    p.add_argument("--max-epochs", type=int_at_least(1), default=defaults.max_epochs)
    p.add_argument("--patience", type=int_at_least(1), default=defaults.patience,
                   help="epochs without a validation AUC gain before stopping")
    p.add_argument("--workers", type=int_at_least(0), default=defaults.workers,
                   help="loader processes building training batches from the file (default 0: in this process)")
    p.add_argument("--bootstrap", type=int_at_least(1), default=BOOTSTRAP_RESAMPLES, help="bootstrap resamples for the 95%% CIs")
    p.add_argument("--one-per-patient", action="store_true",
                   help="keep only the first record of each patient (default: all records, patient-grouped)")
    p.add_argument("--threads", type=int_at_least(1), default=1,
                   help="torch intra-op threads (default 1: the graphs are small, more threads mostly contend)")
    p.add_argument("--quiet", action="store_true")


def train_config(args):
    from ..train_config import TrainConfig
    return TrainConfig(model=args.model, hidden=args.hidden, dropout=args.dropout, lr=args.lr,
                       batch_size=args.batch_size, max_epochs=args.max_epochs, patience=args.patience,
                       seed=args.seed, workers=args.workers)


def split_rule() -> str:
    from ..splits import __doc__ as rule
    return rule.strip().splitlines()[0]


def split_settings(args) -> dict:
    return {"seed": args.seed, "fractions": [0.70, 0.15, 0.15], "one_per_patient": bool(args.one_per_patient),
            "rule": split_rule()}


def prepare_run(args, records: bool = True):
    """What every training command does first: threads, output folder, log, examples and the split.

    ``records=False`` loads labels, IDs and patient keys only (the GCN reads its batches from the file).
    """
    torch = optional_deps.load("torch", needed_by="`neural-format train`")

    from ..examples import load_examples
    from ..experiment import split_examples

    torch.set_num_threads(max(1, args.threads))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    log = None if args.quiet else (lambda text: print(text, file=sys.stderr))
    examples = load_examples(args.collections, args.label, records=records)
    return out, log, examples, split_examples(examples, args.seed, args.one_per_patient)


def run(args) -> int:
    from ..checkpoint import save_model
    from ..experiment import run_variant
    from ..plots import plot_roc
    from ..run_files import write_json, write_predictions

    out, log, examples, split = prepare_run(args, records=args.model != "gcn")
    test_labels = examples.labels[split.test]
    if test_labels.size == 0 or test_labels.min() == test_labels.max():
        print(f"neural-format train: warning: the test split ({test_labels.size} records) holds one class only; "
              "ROC-AUC and its CI are undefined (NaN). Use more records.", file=sys.stderr)
    config = train_config(args)
    modalities = ("fused", "image", "text") if args.modality == "all" else (args.modality,)
    bridge = not args.no_bridge
    results, curves = {}, {}
    for modality in modalities:
        if log:
            log(f"-- training {args.model} on {modality} graphs ({'with' if bridge else 'without'} bridge)")
        variant = run_variant(examples, split, config, modality=modality, bridge=bridge,
                              bootstrap=args.bootstrap, log=log)
        directory = out / modality
        save_model(directory, variant.model, examples.features, extra={
            "label": args.label, "label_index": examples.label_index, "modality": modality, "bridge": bridge,
            "train": config.to_dict(), "split": split_settings(args),
            "sources": [str(Path(p).resolve()) for p in examples.sources],
            "best_epoch": variant.train.best_epoch, "best_val_auc": variant.train.best_val_auc,
            "predict_batch_size": PREDICT_BATCH_SIZE})
        write_predictions(directory, variant.test_ids, variant.test_labels, variant.test_scores)
        results[modality] = variant.summary
        curves[modality] = (variant.test_labels, variant.test_scores, variant.summary["roc_auc"])
    payload = {"label": args.label, "model": args.model, "bridge": bridge, "sources": examples.sources,
               "records": len(examples), "unknown_labels_skipped": examples.unknown_labels,
               "split": {**split_settings(args), "sizes": {k: len(v) for k, v in split.as_dict().items()}},
               "train": config.to_dict(), "test": results}
    write_json(out / "metrics.json", payload)
    plot_roc(curves, out / "roc.png", title=f"ROC on test: {args.label} ({args.model})")
    print(format_results(results))
    print(f"wrote {out / 'metrics.json'}, {out / 'roc.png'} and model directories {', '.join(str(out / m) for m in modalities)}")
    return 0


def format_results(results: dict) -> str:
    lines = [f"{'modality':<10}{'n':>6}{'pos':>6}  {'ROC-AUC [95% CI]':<26}{'PR-AUC [95% CI]':<26}{'epoch':>6}"]
    for name, s in results.items():
        auc = f"{s['roc_auc']:.3f} [{s['roc_auc_ci95'][0]:.3f}, {s['roc_auc_ci95'][1]:.3f}]"
        ap = f"{s['pr_auc']:.3f} [{s['pr_auc_ci95'][0]:.3f}, {s['pr_auc_ci95'][1]:.3f}]"
        lines.append(f"{name:<10}{s['n']:>6}{s['positives']:>6}  {auc:<26}{ap:<26}{s['best_epoch']:>6}")
    return "\n".join(lines)


def register(sub) -> None:
    p = sub.add_parser("train", help="train and test the reference MPNN; save safetensors + JSON config")
    add_training_arguments(p)
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--modality", choices=MODALITY_CHOICES, default="all",
                   help="graphs to train on; 'all' trains fused, image-only and text-only on one split")
    p.add_argument("--no-bridge", action="store_true", help="drop the bridge edge between patch graph and KG")
    p.set_defaults(func=run)
