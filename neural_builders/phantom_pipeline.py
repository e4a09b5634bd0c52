"""Phantoms -> stage-1 fine-tuning -> build: the one pipeline behind ``neural-format demo``
(:mod:`neural_builders.cli.demo_cmd`) and the model study (:mod:`neural_models.phantom_study`).

The callers make their phantoms (:mod:`neural_builders.phantom`) and say which images and reports
train the tiny Swin + T5 report generator and which inputs the collection is built from; this
module trains the word-level tokenizer and the generator (:mod:`neural_builders.vlm`), reloads
the saved weights and builds the collection with them (:func:`neural_builders.build.build_collection`).
torch and transformers are imported inside the functions.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence


@dataclass
class PipelineResult:
    """The reloaded generator, its fine-tuning result, the build summary and each stage's seconds."""
    model: object
    finetune: object          # neural_builders.vlm.train.TrainResult
    summary: object           # neural_builders.summary.BuildSummary
    timings: dict = field(default_factory=dict)


def finetune_tiny_generator(images: Sequence, reports: Sequence[str], train_config, out_dir, *, seed: int,
                            tokenizer_reports: Optional[Sequence[str]] = None, swin: Optional[dict] = None,
                            registers: Optional[int] = None, progress: Optional[bool] = None):
    """Train the tokenizer on ``tokenizer_reports`` (default: ``reports``), then a seeded
    ``tiny_config`` generator (``swin`` and ``registers`` override its encoder and projection) on
    ``images`` with ``reports``; returns ``(generator reloaded from out_dir/model, TrainResult)``."""
    import torch

    from .vlm.model import ReportGenerator, tiny_config
    from .vlm.tokenizer import train_report_tokenizer
    from .vlm.train import ReportImageSet, finetune

    tokenizer = train_report_tokenizer(list(tokenizer_reports if tokenizer_reports is not None else reports))
    torch.manual_seed(seed)
    config = tiny_config(len(tokenizer))
    if swin:
        config["swin"].update(swin)
    if registers is not None:
        config["projection"]["registers"] = registers
    model = ReportGenerator(config)
    result = finetune(model, tokenizer, ReportImageSet(model, list(images), list(reports)), train_config,
                      Path(out_dir), progress=progress)
    return ReportGenerator.from_pretrained(result.model_dir), result


def finetune_and_build(train_images: Sequence, train_reports: Sequence[str], train_config, model_dir,
                       build_inputs: Sequence, build_config, collection, *, seed: int,
                       tokenizer_reports: Optional[Sequence[str]] = None, swin: Optional[dict] = None,
                       registers: Optional[int] = None, skipped: Optional[list] = None,
                       after_finetune: Optional[Callable] = None) -> PipelineResult:
    """Fine-tune the tiny generator (:func:`finetune_tiny_generator`), then build ``collection``
    from ``build_inputs`` with it. ``after_finetune(model, train_result, seconds)`` runs between
    the two stages (the demo reports there)."""
    from .build import build_collection

    timings = {}
    t0 = time.perf_counter()
    model, result = finetune_tiny_generator(train_images, train_reports, train_config, model_dir, seed=seed,
                                            tokenizer_reports=tokenizer_reports, swin=swin, registers=registers)
    timings["vlm_finetune_s"] = time.perf_counter() - t0
    if after_finetune is not None:
        after_finetune(model, result, timings["vlm_finetune_s"])
    t0 = time.perf_counter()
    summary = build_collection(build_inputs, model, build_config, collection, skipped=skipped)
    timings["build_s"] = time.perf_counter() - t0
    return PipelineResult(model=model, finetune=result, summary=summary, timings=timings)
