"""``neural-format generate-reports COLLECTION --generator DIR --out NEW.h5``: the paper's CI+GT.

Generates one report per record with the stage-1 decoder from the stored (pruned) patch features
only, writes the records with the generated reports and KGs rebuilt from them to a new
collection, scores BLEU-2 against the stored ground-truth reports and, with ``--model MODEL_DIR``
(a directory from ``neural-format train``), evaluates that MPNN on the test split of the graphs
built from the generated reports. Writes ``NEW.h5`` and ``<NEW stem>.generation.json``.

The two MPNN figures (graphs from ground-truth reports vs from generated reports) are computed on
the SAME test records: the model's test split of the source collection, restricted to the
records that got a generated report (all of them, unless ``--limit``); each figure is printed
with its n, and an undefined AUC (no record, or one class only) says why.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from neural_format.cli import int_at_least
from neural_format.cli.reprune_cmd import add_storage_arguments

from ..metrics import BOOTSTRAP_RESAMPLES
from ..report_generation import GENERATION_BATCH_SIZE, MAX_NEW_TOKENS
from .. import optional_deps


def paired_test_records(truth_ids, generated_ids, test) -> tuple[list[int], list[int]]:
    """Indices into the ground-truth and the generated examples of the same test records, in the
    test split's order: test records with no generated counterpart (``--limit``) are left out."""
    where = {rid: i for i, rid in enumerate(generated_ids)}
    truth = [int(i) for i in test if truth_ids[int(i)] in where]
    return truth, [where[truth_ids[i]] for i in truth]


def undefined_reason(labels) -> str | None:
    """Why a ROC-AUC over ``labels`` is undefined, or None when it is defined."""
    if len(labels) == 0:
        return "no test record has a generated report (raise --limit)"
    if min(labels) == max(labels):
        return f"all {len(labels)} test records are {'positive' if labels[0] else 'negative'}"
    return None


def run(args) -> int:
    torch = optional_deps.load("torch", needed_by="`neural-format generate-reports`")

    from neural_builders.vlm.model import ReportGenerator

    from .. import metrics
    from ..checkpoint import load_model
    from ..examples import load_examples
    from ..experiment import split_examples
    from ..report_generation import generate_collection
    from ..run_files import write_json
    from ..train import predict
    from ..train_config import PREDICT_BATCH_SIZE

    torch.set_num_threads(max(1, args.threads))
    out = Path(args.out)
    generator = ReportGenerator.from_pretrained(args.generator)
    summary = generate_collection(args.collection, out, generator, batch_size=args.batch_size,
                                  max_new_tokens=args.max_new_tokens, limit=args.limit, overwrite=args.overwrite,
                                  compression=args.compression, compression_level=args.compression_level,
                                  chunk_bytes=args.chunk_bytes, dtype=args.dtype)
    summary.update({"source": str(args.collection), "output": str(out), "generator": str(args.generator)})
    print(f"wrote {out}: {summary['records']} records; BLEU-2 vs ground truth: corpus {summary['corpus_bleu2']:.4f}, "
          f"mean sentence {summary['mean_sentence_bleu2']:.4f} ({summary['with_ground_truth']} references)")
    if args.model:
        model, features, config = load_model(args.model)
        import numpy as np
        truth = load_examples([args.collection], config["label"])
        generated = load_examples([out], config["label"])
        features.check(truth.meta)
        features.check(generated.meta)
        test = split_examples(truth, config["split"]["seed"], config["split"]["one_per_patient"]).test
        truth_rows, generated_rows = paired_test_records(truth.record_ids, generated.record_ids, test)
        labels = truth.labels[truth_rows]
        results: dict[str, Any] = {"test_records": len(test), "n": len(truth_rows),
                   "left_out": f"{len(test) - len(truth_rows)} test records have no generated report (--limit)"
                   if len(truth_rows) < len(test) else None}
        reason = undefined_reason(labels.tolist())
        print(f"  MPNN ({config['modality']}) on the same {len(truth_rows)} of {len(test)} test records"
              + (f" ({results['left_out']})" if results["left_out"] else "") + ":")
        for name, examples, rows in (("ground_truth_reports", truth, truth_rows),
                                     ("generated_reports", generated, generated_rows)):
            if reason is not None:
                results[name] = {"n": len(rows), "roc_auc": None, "undefined": reason}
                print(f"    graphs from {name.replace('_', ' ')}: ROC-AUC undefined (n = {len(rows)}: {reason})")
                continue
            graphs = examples.graphs(config["model"]["kind"], config["modality"], config["bridge"], rows)
            scores = predict(model, graphs, batch_size=config.get("predict_batch_size", PREDICT_BATCH_SIZE))
            assert np.array_equal(examples.labels[rows], labels)  # the same records, so the same labels
            results[name] = metrics.summarise(labels, scores, n_resamples=args.bootstrap,
                                              seed=config["train"]["seed"])
            ci = results[name]["roc_auc_ci95"]
            print(f"    graphs from {name.replace('_', ' ')}: ROC-AUC {results[name]['roc_auc']:.3f} "
                  f"[{ci[0]:.3f}, {ci[1]:.3f}] (n = {len(rows)}, {int(labels.sum())} positive)")
        summary["mpnn"] = {"model_dir": str(args.model), **results}
    report_path = out.with_name(out.stem + ".generation.json")
    write_json(report_path, summary)
    print(f"wrote {report_path}")
    return 0


def register(sub) -> None:
    p = sub.add_parser("generate-reports",
                       help="CI+GT: reports from stored patches with the stage-1 decoder, BLEU-2, rebuilt KGs")
    p.add_argument("collection")
    p.add_argument("--generator", required=True, help="a report-generator directory (neural_builders.vlm)")
    p.add_argument("--out", required=True, help="the new collection file to write")
    p.add_argument("--model", default=None, help="a trained MPNN directory to evaluate on the rebuilt graphs")
    p.add_argument("--batch-size", type=int_at_least(1), default=GENERATION_BATCH_SIZE)
    p.add_argument("--max-new-tokens", type=int_at_least(1), default=MAX_NEW_TOKENS)
    p.add_argument("--limit", type=int_at_least(1), default=None, help="only the first N records")
    p.add_argument("--bootstrap", type=int_at_least(1), default=BOOTSTRAP_RESAMPLES)
    p.add_argument("--threads", type=int_at_least(1), default=1)
    add_storage_arguments(p)
    p.add_argument("--overwrite", action="store_true")
    p.set_defaults(func=run)
