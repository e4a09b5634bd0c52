"""``neural-format generate-reports COLLECTION --generator DIR --out NEW.h5``: the paper's CI+GT.

Generates one report per record with the stage-1 decoder from the stored (pruned) patch features
only, writes the records with the generated reports and KGs rebuilt from them to a new
collection, scores BLEU-2 against the stored ground-truth reports and, with ``--model MODEL_DIR``
(a directory from ``neural-format train``), evaluates that MPNN on the test split of the graphs
built from the generated reports. Writes ``NEW.h5`` and ``<NEW stem>.generation.json``.
"""
from __future__ import annotations

from pathlib import Path


def run(args) -> int:
    import torch

    from neural_builders.vlm.model import ReportGenerator

    from .. import metrics
    from ..checkpoint import load_model
    from ..examples import load_examples
    from ..experiment import split_examples
    from ..report_generation import generate_collection
    from ..run_files import write_json
    from ..train import predict

    torch.set_num_threads(max(1, args.threads))
    out = Path(args.out)
    generator = ReportGenerator.from_pretrained(args.generator)
    summary = generate_collection(args.collection, out, generator, batch_size=args.batch_size,
                                  max_new_tokens=args.max_new_tokens, limit=args.limit, overwrite=args.overwrite)
    summary.update({"source": str(args.collection), "output": str(out), "generator": str(args.generator)})
    print(f"wrote {out}: {summary['records']} records; BLEU-2 vs ground truth: corpus {summary['corpus_bleu2']:.4f}, "
          f"mean sentence {summary['mean_sentence_bleu2']:.4f} ({summary['with_ground_truth']} references)")
    if args.model:
        model, features, config = load_model(args.model)
        results = {}
        for name, source in (("ground_truth_reports", args.collection), ("generated_reports", out)):
            examples = load_examples([source], config["label"])
            features.check(examples.meta)
            test = split_examples(examples, config["split"]["seed"], config["split"]["one_per_patient"]).test
            graphs = examples.graphs(config["model"]["kind"], config["modality"], config["bridge"], test)
            scores = predict(model, graphs, batch_size=config.get("predict_batch_size", 64))
            results[name] = metrics.summarise(examples.labels[test], scores, n_resamples=args.bootstrap,
                                              seed=config["train"]["seed"])
            ci = results[name]["roc_auc_ci95"]
            print(f"  MPNN ({config['modality']}) on test graphs from {name.replace('_', ' ')}: "
                  f"ROC-AUC {results[name]['roc_auc']:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]")
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
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--max-new-tokens", type=int, default=64)
    p.add_argument("--limit", type=int, default=None, help="only the first N records")
    p.add_argument("--bootstrap", type=int, default=1000)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--overwrite", action="store_true")
    p.set_defaults(func=run)
