"""The model study on the builders' phantoms, end to end on CPU, from one command.

    python -m neural_models.phantom_study --out study --cases 400

1. ``neural_builders.phantom.generate_cases``: chest phantoms with planted lesions and reports
   that name them (label ``pneumonia``); no patient data. Phantoms have no patients, so every
   record is its own group in the split.
2. ``neural_builders.vlm``: a tiny Swin + T5 report generator (``tiny_config``), its word-level
   tokenizer trained on the phantom reports; projection and T5 fine-tuned for ``--vlm-steps``
   steps on cached features of the seeded, untrained Swin (the CPU budget of the demo), on the
   first 70 % of the cases only.
3. ``neural_builders.build.build_collection``: Swin features, cross-attention scores, KG and
   bridge, with the ``KeepAll`` policy so that the collection stores every patch of the grid
   and the retention sweep is a share of the image's patches (100 % = all of them).
4. ``neural-format train`` (fused, image-only, text-only on one split), ``neural-format
   ablate`` (retention x modality x bridge) and ``neural-format generate-reports`` (CI+GT) on
   that collection, each writing its JSON/Markdown/PNG outputs under ``--out``.

Every step is seeded; ``study.json`` records the settings and the wall time of each step.
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path

from neural_builders.phantom_pipeline import PhantomTraining
from neural_builders.vlm.generator_config import FinetuneConfig
from neural_format.cli import int_at_least

from . import optional_deps


@dataclass(frozen=True)
class StudySettings:
    """The study's settings and their defaults (the command line's flags read them from here)."""
    cases: int = 400
    size: int = 384           # phantom side in pixels (384 -> 12x12 patches)
    seed: int = 0
    vlm_steps: int = 200
    vlm_batch_size: int = FinetuneConfig.batch_size
    max_epochs: int = 60      # the MPNN's, for train and ablate
    entity_embeddings: bool = False

    def training(self) -> PhantomTraining:
        """The report generator's fine-tuning (:class:`neural_builders.phantom_pipeline.PhantomTraining`):
        projection + T5 learn on cached Swin features for every step, so the CPU cost of a step is the
        decoder's alone (the Swin stays at its seeded initialisation); no checkpoints; on the CPU."""
        return PhantomTraining(steps=self.vlm_steps, batch_size=self.vlm_batch_size,
                               freeze_encoder_steps=self.vlm_steps, checkpoint_every=0, device="cpu")


DEFAULTS = StudySettings()


def build_phantom_collection(out: Path, cases: int = DEFAULTS.cases, seed: int = DEFAULTS.seed,
                             size: int = DEFAULTS.size, vlm_steps: int = DEFAULTS.vlm_steps,
                             batch_size: int = DEFAULTS.vlm_batch_size,
                             entity_embeddings: bool = DEFAULTS.entity_embeddings) -> dict:
    """Steps 1-3: phantoms, then :func:`neural_builders.phantom_pipeline.finetune_and_build` (the
    demo's pipeline too) on the first 70 % of the cases, building every case into OUT/phantoms.h5."""
    from neural_builders.build_config import BuildConfig
    from neural_builders.build_inputs import BuildInput
    from neural_builders.phantom import generate_cases
    from neural_builders.phantom_pipeline import finetune_and_build
    from neural_format.format.metadata import KeepAll, PruningPolicy

    timings = {}
    t0 = time.perf_counter()
    phantoms = generate_cases(cases, seed=seed, size=(size, size))
    timings["phantoms_s"] = time.perf_counter() - t0

    # the report generator learns from the training share only, so test reports stay unseen
    train_share = phantoms[: int(0.7 * len(phantoms))]
    training = StudySettings(cases=cases, size=size, seed=seed, vlm_steps=vlm_steps, vlm_batch_size=batch_size,
                             entity_embeddings=entity_embeddings).training()
    inputs = [BuildInput(case_id=c.case_id, image=_loaded(c.image), report=c.report, labels=[float(c.label)])
              for c in phantoms]
    config = BuildConfig(policy=PruningPolicy(rule=KeepAll(), min_nodes=1), device="cpu",
                         overwrite=True, entity_embeddings=entity_embeddings)
    pipeline = finetune_and_build([c.image for c in train_share], [c.report for c in train_share], training,
                                  out / "vlm", inputs, config, out / "phantoms.h5", seed=seed,
                                  tokenizer_reports=[c.report for c in phantoms])
    timings.update(pipeline.timings)
    result, summary = pipeline.finetune, pipeline.summary
    return {"cases": cases, "size": size, "seed": seed, "vlm_steps": vlm_steps,
            "vlm_first_loss": result.losses[0] if result.losses else None,
            "vlm_last_loss": result.losses[-1] if result.losses else None,
            "vlm_dir": str(result.model_dir), "collection": str(out / "phantoms.h5"),
            "records_written": summary.records_written, "timings": timings,
            "positives": int(sum(c.label for c in phantoms))}


def _loaded(pixels):
    """A phantom array as the builders' LoadedImage (8-bit PNG-equivalent source size)."""
    from neural_builders.inputs.image import LoadedImage
    return LoadedImage(pixels=pixels, pixel_spacing=None, source_bytes=int(pixels.size), source_kind="png",
                       photometric="MONOCHROME2", normalisation="phantom [0, 1]")


def build_parser() -> argparse.ArgumentParser:
    """The command line's flags, their defaults read from :class:`StudySettings`."""
    parser = argparse.ArgumentParser(prog="python -m neural_models.phantom_study", description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    d = DEFAULTS
    parser.add_argument("--cases", type=int_at_least(1), default=d.cases)
    parser.add_argument("--size", type=int_at_least(1), default=d.size, help="phantom side in pixels (384 -> 12x12 patches)")
    parser.add_argument("--seed", type=int, default=d.seed)
    parser.add_argument("--vlm-steps", type=int_at_least(1), default=d.vlm_steps)
    parser.add_argument("--vlm-batch-size", type=int_at_least(1), default=d.vlm_batch_size)
    parser.add_argument("--skip-build", action="store_true", help="reuse OUT/phantoms.h5 and OUT/vlm/model")
    parser.add_argument("--max-epochs", type=int_at_least(1), default=d.max_epochs)
    parser.add_argument("--entity-embeddings", action="store_true")
    parser.add_argument("--only", default=None, help="comma-separated subset of train,ablate,generate_reports,evaluate")
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)

    torch = optional_deps.load("torch", needed_by="the phantom study")

    from neural_format.cli import main as cli

    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    study_path = out / "study.json"
    study = json.loads(study_path.read_text()) if study_path.exists() else {}
    if not args.skip_build:
        study["build"] = build_phantom_collection(out, args.cases, args.seed, args.size, args.vlm_steps,
                                                  args.vlm_batch_size, args.entity_embeddings)
        study_path.write_text(json.dumps(study, indent=2))
    collection = str(out / "phantoms.h5")
    common = ["--seed", str(args.seed), "--max-epochs", str(args.max_epochs), "--quiet"]
    steps = {
        "train": ["train", collection, "--out", str(out / "train"), *common],
        "ablate": ["ablate", collection, "--out", str(out / "ablation"), *common],
        "generate_reports": ["generate-reports", collection, "--generator", str(out / "vlm" / "model"),
                             "--out", str(out / "generated.h5"), "--model", str(out / "train" / "fused"),
                             "--overwrite"],
        "evaluate": ["evaluate", str(out / "train" / "fused"), collection],
    }
    study.setdefault("timings", {})
    if "build" in study:
        study["vlm_training_case_ids_below"] = int(0.7 * study["build"]["cases"])
    chosen = args.only.split(",") if args.only else list(steps)
    for name, argv_ in steps.items():
        if name not in chosen:
            continue
        t0 = time.perf_counter()
        code = cli(argv_)
        study["timings"][f"{name}_s"] = time.perf_counter() - t0
        study_path.write_text(json.dumps(study, indent=2))
        if code:
            print(f"step {name} exited with {code}")
            return code
    study["bleu2_unseen_by_vlm"] = unseen_bleu(collection, out / "generated.h5", study.get("vlm_training_case_ids_below"))
    study_path.write_text(json.dumps(study, indent=2))
    print(json.dumps(study["bleu2_unseen_by_vlm"]))
    return 0


def unseen_bleu(ground_truth, generated, first_unseen) -> dict:
    """BLEU-2 of the generated reports of the cases the report generator was not trained on."""
    from neural_format.collections.collection import open_collection

    from .report_generation import bleu2, corpus_bleu2
    if first_unseen is None:
        return {}
    with open_collection(ground_truth) as a, open_collection(generated) as b:
        pairs = [(g.report, t.report) for t, g in zip(a.read_all(), b.read_all())
                 if int(t.record_id.rsplit("-", 1)[-1]) >= first_unseen and t.report and g.report is not None]
    return {"records": len(pairs), "corpus_bleu2": corpus_bleu2([p[0] for p in pairs], [p[1] for p in pairs]),
            "mean_sentence_bleu2": sum(bleu2(c, r) for c, r in pairs) / max(len(pairs), 1)}


if __name__ == "__main__":
    raise SystemExit(main())
