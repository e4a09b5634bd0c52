"""``neural-format demo``: the end-to-end demo on synthetic chest phantoms, on CPU in a few minutes.

1. generates a phantom set (train + held-out test) with planted lesions and reports that say
   where they are (:mod:`neural_builders.phantom`), written as PNGs + reports.csv;
2. fine-tunes a tiny Swin + T5 report generator on the training reports (stage 1);
3. builds the held-out assets: cross-attention scores, top-k pruning, grid graph, KG, bridge;
4. validates the collection (``neural_format.validate``);
5. prints the build summary and the pruning quality: lesion recall at 2.3 % and 10 % retention
   against random pruning in the same run (:mod:`neural_builders.lesion_recall`);
6. renders a PNG overlaying the kept patches on the X-ray and drawing the KG; and, unless
   ``--quick``, runs the real PA chest X-ray ``RG1_UNCR.dcm`` (pydicom-data) through the same
   model at native resolution with a generated report, reporting the bytes saved at 2.3 %.

Steps 2 and 3 are :func:`neural_builders.phantom_pipeline.finetune_and_build`, the pipeline the
phantom study (:mod:`neural_models.phantom_study`) runs too. torch and transformers are imported
inside :func:`run`.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from neural_format.cli import int_at_least
from ..phantom import PhantomStyle
from ..phantom_pipeline import PhantomTraining, SwinShape
from .. import optional_deps


@dataclass(frozen=True)
class DemoSettings:
    """One demo run: training and held-out phantom counts, their side in pixels and style, how the
    tiny generator is shaped and trained, and the decoder layers the scores average."""
    train: int
    test: int
    size: int
    training: PhantomTraining
    phantoms: PhantomStyle = PhantomStyle()
    layers: Literal["last", "all"] = "all"

    def with_counts(self, train=None, test=None, steps=None) -> "DemoSettings":
        """These settings with the command line's ``--train``/``--test``/``--steps`` where given."""
        return replace(self, train=train or self.train, test=test or self.test,
                       training=replace(self.training, steps=steps or self.training.steps))


# Settings measured to train in the demo's time budget on 2 CPU cores and to meet the lesion-recall
# targets on held-out phantoms (docs/builders-pipeline.md, "Measured"): 256 px phantoms (8 x 8
# patches) with clearly visible lesions and reports made only of findings and places (both
# needed); a Swin with window 1 (no token attention: cheaper than window 4, which measured the
# same at 256 px), 4 registers that take the attention of words that need no patch, and S_i
# averaged over all (both) decoder layers (ScoreAggregation(layers="all")).
PHANTOM = PhantomStyle(positive_fraction=0.7, lesion_radius=(0.06, 0.09), lesion_contrast=(0.45, 0.6),
                       report_style="findings")
FULL = DemoSettings(train=300, test=60, size=256, phantoms=PHANTOM, layers="all", training=PhantomTraining(
    steps=700, batch_size=16, freeze_encoder_steps=0, lr=3e-3, registers=4,
    swin=SwinShape(embed_dim=8, depths=(1, 1, 1, 1), num_heads=(1, 2, 2, 4), window_size=1)))
QUICK = replace(FULL, train=24, test=6, size=128, training=replace(
    FULL.training, steps=12, batch_size=8, freeze_encoder_steps=12,
    swin=SwinShape(embed_dim=8, depths=(1, 1, 1, 1), num_heads=(1, 1, 2, 2), window_size=4)))


def rg1_path():
    import importlib.util
    spec = importlib.util.find_spec("data_store")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / "RG1_UNCR.dcm"
    return path if path.is_file() else None


def run(args) -> int:
    torch = optional_deps.load("torch", needed_by="`neural-format demo`")

    import neural_format as nf
    from neural_format.format.metadata import PruningPolicy, ScoreAggregation, TopKPercent

    from ..build_config import BuildConfig
    from ..build_inputs import inputs_from_pairs
    from ..labels_csv import labels_from_csv
    from ..inputs import load_image, load_reports, pair_inputs
    from ..lesion_recall import lesion_recall
    from ..phantom import generate_cases, write_cases
    from ..phantom_pipeline import finetune_and_build
    from ..render import render_to_png

    began = time.monotonic()
    if args.threads:
        torch.set_num_threads(args.threads)
    s = (QUICK if args.quick else FULL).with_counts(getattr(args, "train", None), getattr(args, "test", None),
                                                    getattr(args, "steps", None))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    say = print

    # 1. phantoms
    t = time.monotonic()
    train_cases = generate_cases(s.train, seed=args.seed, size=(s.size, s.size), **s.phantoms.kwargs())
    test_cases = generate_cases(s.test, seed=args.seed + 1000, size=(s.size, s.size), **s.phantoms.kwargs())
    train_files = write_cases(train_cases, out / "phantoms" / "train")
    test_files = write_cases(test_cases, out / "phantoms" / "test")
    say(f"[1/6] phantoms: {len(train_cases)} training + {len(test_cases)} held-out cases "
        f"({s.size} px) in {time.monotonic() - t:.1f} s -> {out / 'phantoms'}")

    # 2. stage-1 fine-tuning, then 3. build the held-out assets at 10 % retention (2.3 % is a
    # prefix of it) with the fine-tuned generator: one pipeline with the phantom study
    t = time.monotonic()
    pairs, _ = pair_inputs(train_files["images"], load_reports(train_files["reports"]), load_images=False)
    reports = [p.report.text_for_model for p in pairs]

    def finetuned(model, result, _seconds) -> None:
        say(f"[2/6] fine-tuned the tiny Swin+T5 ({sum(p.numel() for p in model.parameters()):,} parameters) for "
            f"{result.steps} steps in {time.monotonic() - t:.1f} s: {result.loss_summary(window=5)}; "
            f"weights in {result.model_dir}")

    collection = out / "phantom_collection.h5"
    test_pairs, skipped = pair_inputs(test_files["images"], load_reports(test_files["reports"]), load_images=False)
    build_config = BuildConfig(policy=PruningPolicy(rule=TopKPercent(percent=10.0)), tiles="uint8",
                               overwrite=True, compression="gzip",
                               aggregation=ScoreAggregation(layers=s.layers))
    pipeline = finetune_and_build(
        [load_image(p.image_path).pixels for p in pairs], reports, s.training, out / "report_generator",
        inputs_from_pairs(test_pairs, labels_from_csv(test_files["reports"], ("pneumonia",))), build_config,
        collection, seed=args.seed, skipped=skipped, after_finetune=finetuned)
    model, summary = pipeline.model, pipeline.summary
    say(f"[3/6] built {collection}")

    # 4. validate
    report = nf.validate(collection)
    say(f"[4/6] validation: {'OK' if report.ok else 'FAILED'} ({len(report.findings)} findings)")
    for finding in report.findings[:10]:
        say(f"      {finding}")

    # 5. summary and pruning quality
    say("[5/6] " + "\n".join(summary.lines()))
    with nf.open(collection) as reader:
        records = list(reader)
        meta = reader.meta
    masks = {c.case_id: c.lesion_masks for c in test_cases if c.lesion_masks is not None}
    rows = lesion_recall(records, masks, (2.3, 10.0))
    say("      pruning quality on held-out phantoms (lesion recall: a kept patch covers part of the lesion; "
        f"scores: cross-attention summed over report tokens, {s.layers} decoder layer(s)):")
    for row in rows:
        say(row.line())

    # 6. render
    positive = next((r for r in records if len(masks.get(r.record_id, ())) > 0), records[0] if records else None)
    if positive is not None:
        case = next(c for c in test_cases if c.case_id == positive.record_id)
        png = out / "render.png"
        render_to_png(positive, png, entity_types=meta.entity_types, relation_types=meta.relation_types,
                      label_names=meta.label_names, image=case.image)
        say(f"[6/6] rendered {positive.record_id} -> {png}  (also: neural-format render {collection} --record ...)")

    if not args.quick and not args.no_rg1:
        rg1 = rg1_path()
        if rg1 is None:
            say("RG1_UNCR.dcm: pydicom-data is not installed; skipped")
        else:
            run_rg1(model, rg1, out, say)
    status = 0 if report.ok and summary.records_written else 1
    say(f"demo finished in {time.monotonic() - began:.1f} s (exit {status})")
    return status


def run_rg1(model, path, out: Path, say) -> dict:
    """The real DICOM through the pipeline at native resolution: bytes at 2.3 % retention."""
    import os

    import neural_format as nf
    from neural_format.format.metadata import PruningPolicy, TopKPercent

    from ..build import build_collection
    from ..build_config import BuildConfig
    from ..build_inputs import BuildInput
    from ..render import render_to_png
    results = {}
    for tiles in (None, "uint16"):
        target = out / ("rg1_collection_tiles.h5" if tiles else "rg1_collection.h5")
        config = BuildConfig(policy=PruningPolicy(rule=TopKPercent(percent=2.3)), tiles=tiles, overwrite=True,
                             label_names=("pneumonia",), compression="gzip", max_report_tokens=48)
        summary = build_collection([BuildInput(case_id="RG1_UNCR", image_path=path, report=None)], model,
                                   config, target)
        ok = nf.validate(target).ok
        size = os.path.getsize(target)
        results[tiles or "no-tiles"] = (size, summary.reduction)
        say(f"RG1_UNCR.dcm ({summary.source_bytes:,} bytes) at 2.3 % retention{' + uint16 tiles' if tiles else ''}: "
            f"{size:,} bytes, {summary.reduction:.2%} smaller; valid: {ok}")
    with nf.open(out / "rg1_collection.h5") as reader:
        record = reader[0]
        meta = reader.meta
    g = record.geometry
    say(f"   native {g.image_size[0]}x{g.image_size[1]} px, {g.grid_shape[0]}x{g.grid_shape[1]} patches of "
        f"{g.patch_size[0]} px, {record.num_patches} kept; generated report: {record.report!r}")
    png = out / "rg1_render.png"
    render_to_png(record, png, entity_types=meta.entity_types, relation_types=meta.relation_types,
                  label_names=meta.label_names, image=path)
    say(f"   rendered -> {png}")
    return results


def register(sub) -> None:
    p = sub.add_parser("demo", help="end-to-end demo: phantoms -> fine-tune -> build -> validate -> render")
    p.add_argument("--out", default="demo_out")
    p.add_argument("--quick", action="store_true", help="a tiny run (< 60 s) that exercises every step")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--train", type=int_at_least(1), default=None, help="training phantoms")
    p.add_argument("--test", type=int_at_least(1), default=None, help="held-out phantoms")
    p.add_argument("--steps", type=int_at_least(1), default=None, help="fine-tuning steps")
    p.add_argument("--threads", type=int_at_least(0), default=1,
                   help="torch CPU threads (default 1: the tiny model's ops are too small to gain from more; "
                        "measured 0.25 s per training step on 1 thread vs 1.07 s on 2 of 2 shared cores); 0 = torch's choice")
    p.add_argument("--no-rg1", action="store_true", help="skip the real DICOM")
    p.set_defaults(func=run)
