"""The bridge's tie-break on held-out phantoms: where the bridge patch lands, and the fused AUC.

    .venv/bin/python benchmarks/bench_bridge_tiebreak.py --out OUT [--cases 200] [--size 384]
        [--vlm-steps 100] [--seed 0] [--retention 10 5 2.3] [--max-epochs 60] [--skip-build]

1. Builds the phantom study's collection (:func:`neural_models.phantom_study.build_phantom_collection`:
   phantoms with planted lesions, the tiny Swin + T5 fine-tuned on the first 70 % of the cases,
   every patch stored with its cross-attention score S_i) unless ``--skip-build``.
2. Splits it as ``neural-format ablate`` does (70/15/15, stratified, ``--seed``).
3. For each tie-break rule (``lowest-index``, the reference's, and ``score-then-relations``,
   the builder's default) every record's bridge is recomputed under that rule, and the records
   are re-pruned to each retention as the ablation does (:func:`neural_models.ablation.retained`,
   which recomputes the bridge with the collection's recorded rule).
4. Reports, on the **test split's positive records** (the held-out phantoms with a lesion): the
   share whose bridge patch's pixel box holds a pixel of a lesion mask, next to the mean share
   of kept patches that do (what a bridge patch drawn at random among the kept ones would
   score); and the ``fused`` model's test ROC-AUC per retention under each rule (same split,
   same seed, same training settings).

``--demo OUT`` instead reads the held-out collection ``neural-format demo --out OUT`` built
(``OUT/phantom_collection.h5``, 10 % retention) and regenerates its phantoms' lesion masks
(seed + 1000, the demo's phantom settings) for the lesion figures at 10 % and 2.3 % (no AUC:
60 records are too few to train on).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

RULES = ("lowest-index", "score-then-relations")


def with_rule(examples, rule: str):
    """The examples with every bridge recomputed under ``rule``, and the rule recorded in the meta."""
    from neural_format.graphs.fusion import record_bridge
    meta = examples.meta
    fusion = meta.provenance.fusion.model_copy(update={"tie_break": rule})
    meta = meta.model_copy(update={"provenance": meta.provenance.model_copy(update={"fusion": fusion})})

    def rebridge(record):
        bridge = record_bridge(record.num_patches, record.patch_edges, record.patch_scores, record.relations,
                               record.entity_types, record.entity_assertions, meta.entity_types, rule)
        return dataclasses.replace(record, bridge=bridge)

    return dataclasses.replace(examples.map_records(rebridge), meta=meta)


def touches(record, masks) -> tuple[bool, float]:
    """(the bridge patch holds a lesion pixel, the share of kept patches that do)."""
    boxes = record.patch_boxes()
    hit = np.array([any(m[r0:r1, c0:c1].any() for m in masks) for r0, c0, r1, c1 in boxes.tolist()])
    bridged = record.bridge is not None and bool(hit[record.bridge[0]])
    return bridged, float(hit.mean()) if hit.size else 0.0


def lesion_rows(examples, indices, masks, retentions) -> dict:
    """Per rule and retention: bridge-on-lesion share and kept-on-lesion mean over ``indices``."""
    from neural_models.ablation import retained
    out = {}
    for rule in RULES:
        base = with_rule(examples, rule)
        for percent in retentions:
            pruned = retained(base, percent)
            pairs = [touches(pruned.records[i], masks[pruned.records[i].record_id]) for i in indices]
            out.setdefault(rule, {})[f"{percent:g}"] = {
                "bridge_on_lesion": float(np.mean([p[0] for p in pairs])),
                "kept_on_lesion": float(np.mean([p[1] for p in pairs])),
                "mean_kept": float(np.mean([pruned.records[i].num_patches for i in indices]))}
    return out


def demo_lesions(args) -> int:
    from neural_builders.phantom import generate_cases
    from neural_builders.cli.demo_cmd import FULL, QUICK
    from neural_models.examples import load_examples
    settings = QUICK if args.demo_quick else FULL
    examples = load_examples([str(Path(args.demo) / "phantom_collection.h5")], "pneumonia")
    cases = generate_cases(settings.test, seed=args.seed + 1000, size=(settings.size, settings.size),
                           **settings.phantoms.kwargs())
    masks = {c.case_id: c.lesion_masks for c in cases}
    positives = [i for i, r in enumerate(examples.records) if len(masks.get(r.record_id, ()))]
    # 2.3 % of the image's patches (the demo's figure: 2 of 64), as a share of the stored ones
    first = examples.records[positives[0]]
    wanted = math.ceil(0.023 * int(np.prod(first.geometry.grid_shape)))
    low = 100.0 * (wanted - 0.5) / first.num_patches
    rows = lesion_rows(examples, positives, masks, [100.0, low])   # 100 % = as stored (10 %)
    print(f"demo held-out collection: {len(examples.records)} records, {len(positives)} with a lesion; "
          f"{examples.meta.provenance.pruning.rule} stored")
    print("| retention | kept/record | bridge on a lesion, lowest-index | bridge on a lesion, score-then-relations "
          "| a kept patch on a lesion (mean) |")
    print("|---:|---:|---:|---:|---:|")
    for key, label in (("100", "10 % (as built)"), (f"{low:g}", f"2.3 % ({wanted} patches)")):
        a, b = rows[RULES[0]][key], rows[RULES[1]][key]
        print(f"| {label} | {a['mean_kept']:.1f} | {a['bridge_on_lesion']:.3f} | {b['bridge_on_lesion']:.3f} | "
              f"{a['kept_on_lesion']:.3f} |")
    (Path(args.demo) / "bridge_tiebreak.json").write_text(json.dumps({"positives": len(positives), "rules": rows}, indent=1))
    return 0


def main(argv=None) -> int:
    from neural_models.metrics import BOOTSTRAP_RESAMPLES
    from neural_models.phantom_study import DEFAULTS as STUDY
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--cases", type=int, default=200)
    parser.add_argument("--size", type=int, default=STUDY.size)
    parser.add_argument("--vlm-steps", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--retention", type=float, nargs="+", default=[10.0, 5.0, 2.3])
    parser.add_argument("--max-epochs", type=int, default=STUDY.max_epochs)
    parser.add_argument("--bootstrap", type=int, default=BOOTSTRAP_RESAMPLES)
    parser.add_argument("--no-ablation", action="store_true", help="only the lesion figures")
    parser.add_argument("--skip-build", action="store_true", help="reuse OUT/phantoms.h5")
    parser.add_argument("--demo", default=None, metavar="DEMO_OUT",
                        help="lesion figures on a `neural-format demo` run's held-out collection instead")
    parser.add_argument("--demo-quick", action="store_true", help="that demo ran with --quick")
    args = parser.parse_args(argv)
    if args.demo:
        return demo_lesions(args)

    import torch

    from neural_builders.phantom import generate_cases
    from neural_models.ablation import AblationSettings, run_ablation
    from neural_models.examples import load_examples
    from neural_models.experiment import split_examples
    from neural_models.phantom_study import build_phantom_collection
    from neural_models.train import TrainConfig

    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    if not args.skip_build:
        info = build_phantom_collection(out, args.cases, args.seed, args.size, args.vlm_steps, 16)
        print(f"built {info['records_written']} records in {sum(info['timings'].values()):.0f} s", flush=True)
    examples = load_examples([str(out / "phantoms.h5")], "pneumonia")
    split = split_examples(examples, args.seed)
    masks = {c.case_id: c.lesion_masks for c in generate_cases(args.cases, seed=args.seed, size=(args.size, args.size))}
    test_pos = [i for i in split.test if examples.labels[i] == 1 and len(masks[examples.records[i].record_id])]
    retentions = [100.0] + sorted(args.retention, reverse=True)
    print(f"{len(examples.records)} records, test split {len(split.test)} ({len(test_pos)} positive with a lesion); "
          f"{examples.records[0].num_patches} patches stored per record", flush=True)

    results = {"settings": vars(args), "test_positive": len(test_pos), "rules": {}}
    lesions = lesion_rows(examples, test_pos, masks, retentions)
    for rule in RULES:
        base = with_rule(examples, rule)
        entry = results["rules"].setdefault(rule, {"lesion": lesions[rule], "auc": {}})
        if not args.no_ablation:
            config = TrainConfig(max_epochs=args.max_epochs, seed=args.seed)
            rows = run_ablation(base, split, config, AblationSettings(retentions=retentions, variants=("fused",),
                                                                     bootstrap=args.bootstrap))
            for row in rows:
                entry["auc"][f"{row['retention_percent']:g}"] = {"roc_auc": row["roc_auc"], "ci95": row["roc_auc_ci95"]}
        print(f"rule {rule} done at {time.perf_counter() - began:.0f} s", flush=True)

    print("\n| retention | kept/record | bridge on a lesion, lowest-index | bridge on a lesion, score-then-relations "
          "| a kept patch on a lesion (mean) | fused AUC, lowest-index | fused AUC, score-then-relations |")
    print("|---:|---:|---:|---:|---:|---|---|")
    for percent in retentions:
        key = f"{percent:g}"
        a, b = (results["rules"][r] for r in RULES)

        def auc(entry):
            if key not in entry["auc"]:
                return "-"
            v = entry["auc"][key]
            return f"{v['roc_auc']:.3f} [{v['ci95'][0]:.3f}, {v['ci95'][1]:.3f}]"

        print(f"| {key} % | {a['lesion'][key]['mean_kept']:.1f} | {a['lesion'][key]['bridge_on_lesion']:.3f} | "
              f"{b['lesion'][key]['bridge_on_lesion']:.3f} | {a['lesion'][key]['kept_on_lesion']:.3f} | "
              f"{auc(a)} | {auc(b)} |")
    results["seconds"] = time.perf_counter() - began
    (out / "bridge_tiebreak.json").write_text(json.dumps(results, indent=1))
    print(f"\n{len(test_pos)} held-out positive phantoms; {results['seconds']:.0f} s; -> {out / 'bridge_tiebreak.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
