"""Stage 1: fine-tune the report generator to write the report from the image (teacher forcing).

Each step draws a batch (a deterministic function of ``seed`` and the step number, so a resumed
run sees exactly the batches an uninterrupted one would), encodes the images, and trains T5 to
predict every report token from the image and the previous tokens: labels are the tokenised
report ending in ``</s>``, padded with -100 so padding never counts in the loss. AdamW, linear
warm-up then cosine decay, gradient clipping at 1.0. On CUDA the forward pass runs under
``torch.autocast`` (bfloat16 where supported, else float16 with a gradient scaler).
Checkpoints: :mod:`neural_builders.vlm.checkpoint` (safetensors + JSON, no pickle).
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from neural_format.internals.progress import Progress

from .generator_config import FinetuneConfig
from ..devices import resolve_device  # noqa: F401  (the builders' one device rule; imported from here too)
from .checkpoint import load_checkpoint, save_checkpoint
from .model import Encoded
from .patch_grid import PatchPlan, to_working
from .. import optional_deps

optional_deps.require("torch", needed_by="fine-tuning the report generator")
import torch  # noqa: E402 (after the NF-E-EXTRA check above)

CHECKPOINT_DIR = "checkpoint"
FINAL_DIR = "model"


TrainConfig = FinetuneConfig  # the former name, kept for one minor version (the MPNN's is neural_models.train.TrainConfig)


@dataclass
class TrainResult:
    steps: int
    losses: list[float] = field(default_factory=list)
    seconds: float = 0.0
    resumed_from: Optional[int] = None
    model_dir: Optional[Path] = None
    model: object = None

    def loss_summary(self, window: int = 10) -> str:
        """The first step's loss -> the last step's, and the means of the first and last ``window``
        steps; the windows never overlap (at most half the steps each), so a short run cannot
        print the same average twice."""
        losses = self.losses
        if not losses:
            return "no steps run"
        if len(losses) == 1:
            return f"loss {losses[0]:.3f} (one step)"
        text = f"loss {losses[0]:.3f} -> {losses[-1]:.3f} (step 1 -> {len(losses)})"
        k = min(window, len(losses) // 2)
        if k > 1:
            head, tail = sum(losses[:k]) / k, sum(losses[-k:]) / k
            text += f"; mean of the first/last {k} steps {head:.3f} -> {tail:.3f}"
        return text


class ReportImageSet:
    """Working images, their patch plans and reports, bucketed by working size for batching."""

    def __init__(self, model, images: Sequence[np.ndarray], reports: Sequence[str]):
        if len(images) != len(reports):
            raise ValueError("one report per image")
        self.plans: list[PatchPlan] = [model.plan(img.shape) for img in images]
        self.working = [to_working(np.asarray(img, np.float32), plan) for img, plan in zip(images, self.plans)]
        self.reports = list(reports)
        buckets: dict = {}
        for i, plan in enumerate(self.plans):
            buckets.setdefault(plan.working_size, []).append(i)
        self.buckets = [np.asarray(v) for _, v in sorted(buckets.items())]

    def __len__(self) -> int:
        return len(self.reports)

    def batch_indices(self, seed: int, step: int, batch_size: int) -> np.ndarray:
        rng = np.random.default_rng([seed, step])
        sizes = np.array([len(b) for b in self.buckets], np.float64)
        bucket = self.buckets[int(rng.choice(len(self.buckets), p=sizes / sizes.sum()))]
        return rng.choice(bucket, size=min(batch_size, len(bucket)), replace=False)


def encode_labels(tokenizer, reports: Sequence[str], max_tokens: int, device) -> torch.Tensor:
    """Token ids ending in ``</s>``, right-padded with -100 (ignored by the loss)."""
    enc = tokenizer(list(reports), padding=True, truncation=True, max_length=max_tokens, return_tensors="pt")
    labels = enc["input_ids"].masked_fill(enc["attention_mask"] == 0, -100)
    return labels.to(device)


def stack_pixels(dataset: ReportImageSet, indices, device) -> tuple[torch.Tensor, list[PatchPlan]]:
    pixels = torch.from_numpy(np.stack([dataset.working[i] for i in indices]))[:, None]
    return pixels.to(device), [dataset.plans[i] for i in indices]




def make_optimizer(config: FinetuneConfig):
    def factory(model):
        decay: list[torch.nn.Parameter] = []
        no_decay: list[torch.nn.Parameter] = []
        for name, param in model.named_parameters():
            (no_decay if param.ndim < 2 or "norm" in name else decay).append(param)
        return torch.optim.AdamW([{"params": decay, "weight_decay": config.weight_decay},
                                  {"params": no_decay, "weight_decay": 0.0}], lr=config.lr)
    return factory


def learning_rate(config: FinetuneConfig, step: int) -> float:
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    span = max(1, config.steps - config.warmup_steps)
    progress = min(1.0, (step - config.warmup_steps) / span)
    floor = config.min_lr_fraction
    return config.lr * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress)))


def encoder_cache(model, dataset: ReportImageSet, device, batch_size: int) -> torch.Tensor:
    """Swin features of every image, for the frozen-encoder phase (one bucket size only)."""
    if len(dataset.buckets) != 1:
        raise ValueError("freeze_encoder_steps needs images of one working size")
    model.eval()
    parts = []
    with torch.no_grad():
        for start in range(0, len(dataset), batch_size):
            idx = range(start, min(len(dataset), start + batch_size))
            pixels, plans = stack_pixels(dataset, idx, device)
            parts.append(model.encode(pixels, plans).features.float().cpu())
    model.train()
    return torch.cat(parts)


def finetune(model, tokenizer, dataset: ReportImageSet, config: FinetuneConfig, out_dir, *,
             resume: bool = False, progress: Optional[bool] = None, stop_after: Optional[int] = None) -> TrainResult:
    """Train for ``config.steps`` steps in total, checkpointing into ``out_dir/checkpoint``.

    With ``resume`` and an existing checkpoint, training continues from its step with its
    weights, optimizer state and RNG state. ``stop_after`` ends the run early after that many
    steps of this call (for tests of resuming). The final model goes to ``out_dir/model``.
    """
    out_dir = Path(out_dir)
    device = resolve_device(config.device)
    ckpt = out_dir / CHECKPOINT_DIR
    factory = make_optimizer(config)
    start, losses, resumed = 0, [], None
    if resume and (ckpt / "trainer_state.json").is_file():
        model, tokenizer, optimizer, state = load_checkpoint(ckpt, factory, device=device)
        start, losses, resumed = int(state["step"]), list(state["losses"]), int(state["step"])
    else:
        model = model.to(device)
        optimizer = factory(model)
    model.tokenizer = tokenizer
    model.train()
    use_amp = config.mixed_precision and device.type == "cuda"
    amp_dtype = torch.bfloat16 if use_amp and torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler("cuda") if use_amp and amp_dtype == torch.float16 else None
    began = time.monotonic()
    end = config.steps if stop_after is None else min(config.steps, start + stop_after)

    def checkpoint(step: int) -> None:
        save_checkpoint(ckpt, model, tokenizer, optimizer,
                        {"step": step, "losses": losses, "config": asdict(config)})

    cache = None
    if start < min(end, config.freeze_encoder_steps):
        cache = encoder_cache(model, dataset, device, config.batch_size)
    with Progress(end - start, "fine-tuning", enabled=progress) as bar:
        for step in range(start, end):
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(config, step)
            indices = dataset.batch_indices(config.seed, step, config.batch_size)
            labels = encode_labels(tokenizer, [dataset.reports[i] for i in indices], config.max_report_tokens, device)
            # frozen steps read the encoder cache, which exists exactly when some step of this run is frozen
            frozen_cache = cache if step < config.freeze_encoder_steps else None
            with torch.autocast(device.type, dtype=amp_dtype, enabled=use_amp):
                if frozen_cache is not None:
                    plans = [dataset.plans[i] for i in indices]
                    features = frozen_cache[torch.as_tensor(indices)].to(device)
                    mask = torch.as_tensor(np.stack([p.real_token_mask() for p in plans]), device=device).long()
                    encoded = Encoded(features, model.projection(features, plans), mask, plans)
                    loss = model.decode(encoded, labels).loss
                else:
                    pixels, plans = stack_pixels(dataset, indices, device)
                    loss = model(pixels, plans, labels).loss
            optimizer.zero_grad(set_to_none=True)
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.unscale_(optimizer)
            else:
                loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            if scaler is not None:
                scaler.step(optimizer)
                scaler.update()
            else:
                optimizer.step()
            losses.append(float(loss.detach()))
            bar.update(1)
            if config.checkpoint_every and (step + 1) % config.checkpoint_every == 0 and step + 1 < end:
                checkpoint(step + 1)
    checkpoint(end)
    model.eval()
    result = TrainResult(steps=end, losses=losses, seconds=time.monotonic() - began, resumed_from=resumed)
    if end >= config.steps:
        result.model_dir = model.save_pretrained(out_dir / FINAL_DIR, tokenizer=tokenizer)
    result.model = model
    return result
