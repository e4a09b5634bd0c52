"""The build's command-line options and the one path from them to a build job.

``neural-format build`` (:mod:`neural_builders.cli.build_cmd`), ``python -m neural_builders.build``
and the sharded build (``python -m neural_builders.distributed_build``, and ``torchrun -m
neural_builders.build``) all take the options of :func:`add_arguments`, whose defaults are read
from :class:`~neural_builders.build_config.BuildConfig`; :func:`config_from_args` turns them into
a BuildConfig and :func:`job_from_args` into a :class:`BuildJob` (the config, the paired inputs
with their CSV labels, the pairing skips and the loaded model). Running the job is
:mod:`neural_builders.build_cli`'s (:func:`~neural_builders.build_cli.build_job`, one file or one
rank's shard). This module sits below the pipeline (:mod:`neural_builders.build` re-exports its
names), the command line above it.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass

from neural_format.cli import int_at_least
from neural_format.format.metadata import ScoreAggregation
from neural_format.graphs.pruning import policy_from_args

from .build_config import DEFAULT_TOP_K_PERCENT, PIPELINE_MODES, BuildConfig
from .build_inputs import BuildInput, inputs_from_pairs
from .labels_csv import labels_from_csv

_DEFAULTS = BuildConfig()


def add_arguments(p: argparse.ArgumentParser) -> None:
    d = _DEFAULTS
    p.add_argument("--images", required=True, help="directory of DICOM/PNG/JPEG images (ID = file stem)")
    p.add_argument("--reports", required=True, help="reports CSV (id + report or findings/impression) or a *.txt dir")
    p.add_argument("--model", required=True, help="report-generator directory (neural-format finetune output)")
    p.add_argument("--out", required=True, help="output collection file (.h5)")
    rule = p.add_mutually_exclusive_group()
    rule.add_argument("--top-k-percent", type=float, default=DEFAULT_TOP_K_PERCENT, metavar="K")
    rule.add_argument("--nucleus", type=float, default=None, metavar="P")
    rule.add_argument("--threshold", type=float, default=None, metavar="TAU")
    p.add_argument("--min-nodes", type=int_at_least(0), default=d.policy.min_nodes)
    p.add_argument("--max-nodes", type=int_at_least(1), default=d.policy.max_nodes)
    p.add_argument("--layers", choices=["last", "all"], default=d.aggregation.layers,
                   help="cross-attention layers to average")
    p.add_argument("--adjacency", choices=["4-neighbour", "8-neighbour"], default=d.adjacency)
    p.add_argument("--bridge-tie-break", choices=["score-then-relations", "lowest-index"], default=d.bridge_tie_break,
                   help="how the bridge chooses among equally central nodes (lowest-index: the reference's rule)")
    p.add_argument("--labels", default=",".join(d.label_names), help="comma-separated label columns of the reports CSV")
    p.add_argument("--tiles", choices=["uint8", "uint16"], default=d.tiles, help="store full-resolution pixel tiles")
    p.add_argument("--entity-embeddings", action="store_true", help="embed entity text with the local MiniLM")
    p.add_argument("--float16", action="store_true", help="store patch features as float16")
    p.add_argument("--compression", choices=["gzip", "lzf"], default=d.compression)
    p.add_argument("--batch-size", type=int_at_least(1), default=d.batch_size)
    p.add_argument("--attention", choices=["fused", "eager"], default=d.attention,
                   help="scoring path: fused (SDPA decoder, weights of the scored layers only) or the eager reference")
    p.add_argument("--pipeline", choices=list(PIPELINE_MODES), default=_pipeline_mode(d.pipelined),
                   help="overlap decoding, the model and the record stages (auto: on a GPU; off: the serial reference)")
    p.add_argument("--prepare-workers", type=int_at_least(0), default=d.prepare_workers, metavar="N",
                   help="image decoding threads of the overlapped build (default: min(4, CPUs))")
    p.add_argument("--device", default=d.device)
    p.add_argument("--overwrite", action="store_true")


def _pipeline_mode(pipelined) -> str:
    return next(mode for mode, value in PIPELINE_MODES.items() if value is pipelined)


def config_from_args(args, **overrides) -> BuildConfig:
    """The BuildConfig that the command-line options describe; ``overrides`` win (e.g. a rank's device)."""
    settings = dict(policy=policy_from_args(args), aggregation=ScoreAggregation(layers=args.layers),
                    adjacency=args.adjacency, bridge_tie_break=args.bridge_tie_break, batch_size=args.batch_size,
                    feature_dtype="float16" if args.float16 else "float32", tiles=args.tiles,
                    entity_embeddings=args.entity_embeddings,
                    label_names=tuple(n.strip() for n in args.labels.split(",") if n.strip()),
                    compression=args.compression, device=args.device, overwrite=args.overwrite,
                    attention=getattr(args, "attention", _DEFAULTS.attention),
                    pipelined=PIPELINE_MODES[getattr(args, "pipeline", _pipeline_mode(_DEFAULTS.pipelined))],
                    prepare_workers=getattr(args, "prepare_workers", _DEFAULTS.prepare_workers))
    settings.update(overrides)
    return BuildConfig(**settings)


@dataclass
class BuildJob:
    """What the options describe, ready to build: ``skipped`` are the pairing's skips."""
    config: BuildConfig
    inputs: list[BuildInput]
    skipped: list
    model: object


def job_from_args(args, **overrides) -> BuildJob:
    """Pair ``--images`` with ``--reports`` (labels from the CSV's ``--labels`` columns) and load
    ``--model``; ``overrides`` go to :func:`config_from_args`."""
    from .inputs import load_reports, pair_inputs
    from .vlm.model import ReportGenerator
    config = config_from_args(args, **overrides)
    pairs, skipped = pair_inputs(args.images, load_reports(args.reports), load_images=False)
    labels = labels_from_csv(args.reports, config.label_names) if str(args.reports).lower().endswith(".csv") else {}
    model = ReportGenerator.from_pretrained(args.model)
    return BuildJob(config, inputs_from_pairs(pairs, labels), skipped, model)
