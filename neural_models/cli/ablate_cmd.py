"""``neural-format ablate COLLECTION... --out DIR``: retention x modality x fusion in one command.

Writes ``ablation.json`` (settings and one row per retention and variant), ``ablation.md`` (the
same as a Markdown table) and ``auc_vs_retention.png`` (test AUC against retention with 95% CI
bands, as the paper's Fig. 2). See :mod:`neural_models.ablation` for what each variant is.
"""
from __future__ import annotations

from .train_cmd import add_training_arguments, prepare_run, split_settings, train_config


def run(args) -> int:
    import sys

    from ..ablation import VARIANTS, AblationSettings, already_pruned_warning, markdown_table, run_ablation
    from ..plots import plot_auc_vs_retention
    from ..run_files import write_json

    out, log, examples, split = prepare_run(args)
    config = train_config(args)
    variants = args.variants.split(",") if args.variants else list(VARIANTS)
    warning = already_pruned_warning(examples, args.retention)
    if warning:
        print("neural-format ablate: warning: " + warning, file=sys.stderr)
    settings = AblationSettings(retentions=args.retention, variants=variants, bootstrap=args.bootstrap)
    rows = run_ablation(examples, split, config, settings, log=log)
    payload = {"label": args.label, "model": args.model, "sources": examples.sources,
               "records": len(examples.records), "unknown_labels_skipped": examples.unknown_labels,
               "retention_rule": "top-k % of each record's stored patches by stored score, min 1 patch; "
                                 "grid edges rebuilt, bridge recomputed (neural_format.collections.reprune)",
               "split": {**split_settings(args), "sizes": {k: len(v) for k, v in split.as_dict().items()}},
               "train": config.to_dict(), "warnings": [warning] if warning else [], "rows": rows}
    write_json(out / "ablation.json", payload)
    table = markdown_table(rows)
    header = (f"# Ablation: {args.label} ({args.model}), {len(examples.records)} records, "
              f"test n={len(split.test)}\n\n")
    if warning:
        header += "> **Warning:** " + warning.replace("\n", "\n> ") + "\n\n"
    (out / "ablation.md").write_text(header + table, encoding="utf-8")
    plot_auc_vs_retention(rows, out / "auc_vs_retention.png", title=f"{args.label}: test AUC vs patch retention")
    print(table)
    print(f"wrote {out / 'ablation.json'}, {out / 'ablation.md'} and {out / 'auc_vs_retention.png'}")
    return 0


def register(sub) -> None:
    p = sub.add_parser("ablate", help="retention sweep x fused/image/text x bridge/no-bridge; table + plot")
    add_training_arguments(p)
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--retention", type=float, nargs="+", default=[100.0, 10.0, 5.0, 2.3],
                   help="percentages of the stored patches to keep (default: 100 10 5 2.3)")
    p.add_argument("--variants", default=None,
                   help="comma-separated subset of fused,image-only,text-only,fused-no-bridge (default: all)")
    p.set_defaults(func=run)
