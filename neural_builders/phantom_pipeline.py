"""Phantoms -> stage-1 fine-tuning -> build: the one pipeline behind ``neural-format demo``
(:mod:`neural_builders.cli.demo_cmd`) and the model study (:mod:`neural_models.phantom_study`).

The callers make their phantoms (:mod:`neural_builders.phantom`, in a
:class:`~neural_builders.phantom.PhantomStyle`) and say which images and reports train the tiny
Swin + T5 report generator and which inputs the collection is built from; this module trains the
word-level tokenizer and the generator (:mod:`neural_builders.vlm`), reloads the saved weights and
builds the collection with them (:func:`neural_builders.build.build_collection`). How the generator
is shaped and trained is a :class:`PhantomTraining` (with a :class:`SwinShape`): the settings the
demo's presets and the study both give, each default written once here or in
:class:`~neural_builders.vlm.generator_config.FinetuneConfig`. torch and transformers are
imported inside the functions.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Optional, Sequence

from .vlm.generator_config import FinetuneConfig
from . import optional_deps

if TYPE_CHECKING:  # types only: torch and transformers are imported inside the functions
    from .summary import BuildSummary
    from .vlm.model import ReportGenerator
    from .vlm.train import TrainResult


@dataclass(frozen=True)
class SwinShape:
    """The tiny generator's Swin encoder, overriding ``tiny_config``'s (all four stages)."""
    embed_dim: int
    depths: tuple[int, ...]
    num_heads: tuple[int, ...]
    window_size: int

    def overrides(self) -> dict:
        """The ``swin`` section entries (lists, as ``config.json`` holds them)."""
        return {"embed_dim": self.embed_dim, "depths": list(self.depths), "num_heads": list(self.num_heads),
                "window_size": self.window_size}


@dataclass(frozen=True)
class PhantomTraining:
    """The tiny generator's shape and its stage-1 fine-tuning on phantom reports.

    A None takes the default of its owner: ``lr`` and ``device`` :class:`FinetuneConfig`'s,
    ``swin`` ``tiny_config``'s encoder, ``registers`` ``ProjectionConfig``'s;
    ``checkpoint_every`` None saves halfway (``max(1, steps // 2)``), 0 never.
    """
    steps: int
    batch_size: int
    freeze_encoder_steps: int = 0  # first steps train projection + T5 on cached Swin features
    lr: Optional[float] = None
    checkpoint_every: Optional[int] = None
    device: Optional[str] = None
    swin: Optional[SwinShape] = None
    registers: Optional[int] = None

    def finetune_config(self, seed: int) -> FinetuneConfig:
        settings: dict = dict(steps=self.steps, batch_size=self.batch_size, seed=seed,
                              freeze_encoder_steps=self.freeze_encoder_steps,
                              checkpoint_every=max(1, self.steps // 2) if self.checkpoint_every is None
                              else self.checkpoint_every)
        if self.lr is not None:
            settings["lr"] = self.lr
        if self.device is not None:
            settings["device"] = self.device
        return FinetuneConfig(**settings)


@dataclass
class PipelineResult:
    """The reloaded generator, its fine-tuning result, the build summary and each stage's seconds."""
    model: ReportGenerator
    finetune: TrainResult
    summary: BuildSummary
    timings: dict = field(default_factory=dict)


def finetune_tiny_generator(images: Sequence, reports: Sequence[str], training: PhantomTraining, out_dir, *,
                            seed: int, tokenizer_reports: Optional[Sequence[str]] = None,
                            progress: Optional[bool] = None):
    """Train the tokenizer on ``tokenizer_reports`` (default: ``reports``), then a seeded
    ``tiny_config`` generator shaped by ``training`` on ``images`` with ``reports``; returns
    ``(generator reloaded from out_dir/model, TrainResult)``."""
    torch = optional_deps.load("torch", needed_by="finetune_generator")

    from .vlm.model import ReportGenerator, tiny_config
    from .vlm.tokenizer import train_report_tokenizer
    from .vlm.train import ReportImageSet, finetune

    tokenizer = train_report_tokenizer(list(tokenizer_reports if tokenizer_reports is not None else reports))
    torch.manual_seed(seed)
    config = tiny_config(len(tokenizer))
    if training.swin is not None:
        config["swin"].update(training.swin.overrides())
    if training.registers is not None:
        config["projection"]["registers"] = training.registers
    model = ReportGenerator(config)
    result = finetune(model, tokenizer, ReportImageSet(model, list(images), list(reports)),
                      training.finetune_config(seed), Path(out_dir), progress=progress)
    return ReportGenerator.from_pretrained(result.model_dir), result


def finetune_and_build(train_images: Sequence, train_reports: Sequence[str], training: PhantomTraining, model_dir,
                       build_inputs: Sequence, build_config, collection, *, seed: int,
                       tokenizer_reports: Optional[Sequence[str]] = None, skipped: Optional[list] = None,
                       after_finetune: Optional[Callable] = None) -> PipelineResult:
    """Fine-tune the tiny generator (:func:`finetune_tiny_generator`), then build ``collection``
    from ``build_inputs`` with it. ``after_finetune(model, train_result, seconds)`` runs between
    the two stages (the demo reports there)."""
    from .build import build_collection

    timings = {}
    t0 = time.perf_counter()
    model, result = finetune_tiny_generator(train_images, train_reports, training, model_dir, seed=seed,
                                            tokenizer_reports=tokenizer_reports)
    timings["vlm_finetune_s"] = time.perf_counter() - t0
    if after_finetune is not None:
        after_finetune(model, result, timings["vlm_finetune_s"])
    t0 = time.perf_counter()
    summary = build_collection(build_inputs, model, build_config, collection, skipped=skipped)
    timings["build_s"] = time.perf_counter() - t0
    return PipelineResult(model=model, finetune=result, summary=summary, timings=timings)
