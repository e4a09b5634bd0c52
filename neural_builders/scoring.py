"""Patch scores from the decoder's cross-attention (NEURAL's S_i = sum_j alpha_ji).

For one image with ``S`` encoder tokens and a teacher-forced report of ``T`` decoder positions,
layer ``l`` and head ``h`` give cross-attention weights ``alpha[l, h, j, i]`` (decoder position
``j`` attending to encoder token ``i``; each row sums to 1 over the real tokens, padding
tokens being masked). The score of patch ``i`` is

    S_i = TOK_{j in J} LAYER_{l in L} HEAD_h alpha[l, h, j, i]

* ``HEAD`` is the mean (default), sum or max over heads (``ScoreAggregation.heads``);
* ``LAYER`` is the mean (default) or sum over the chosen layers ``L``: the last layer
  (default), all layers, or a list of layer indices (``layers``, ``layer_reduction``);
* ``TOK`` is the sum (default, the paper's S_i) or mean over ``J``, the decoder positions
  whose label is a real report token (label != -100: the words and the final ``</s>``;
  padding excluded).

Scores are computed for real (non-padding) encoder tokens only, one per patch, in token order.
Padding tokens get NaN here and are dropped by the caller, never ranked.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from neural_format.format.metadata import ScoreAggregation

from . import optional_deps

__all__ = ["ATTENTION_PATHS", "aggregate_cross_attention", "score_batch"]


def _layer_indices(layers, count: int) -> list[int]:
    if layers == "last":
        return [count - 1]
    if layers == "all":
        return list(range(count))
    chosen = [int(i) for i in layers]
    if not chosen or min(chosen) < 0 or max(chosen) >= count:
        raise ValueError(f"layers {chosen} are outside 0..{count - 1}")
    return chosen


def aggregate_cross_attention(cross_attentions: Sequence, target_mask, source_mask,
                              aggregation: ScoreAggregation = ScoreAggregation()) -> np.ndarray:
    """Scores ``(B, S)`` float64 from per-layer attention arrays ``(B, H, T, S)``.

    ``target_mask`` ``(B, T)`` marks real report positions, ``source_mask`` ``(B, S)`` real
    encoder tokens; padding sources come out as NaN. See the module docstring for the formula.
    """
    if len(cross_attentions) == 0:
        raise ValueError("no cross-attention weights: was the decoder run with attn_implementation='eager'?")
    layers = _layer_indices(aggregation.layers, len(cross_attentions))
    per_layer = []
    for layer in layers:
        a = np.asarray(_to_numpy(cross_attentions[layer]), np.float64)       # (B, H, T, S)
        if aggregation.heads == "mean":
            a = a.mean(axis=1)
        elif aggregation.heads == "sum":
            a = a.sum(axis=1)
        else:
            a = a.max(axis=1)
        per_layer.append(a)                                                    # (B, T, S)
    stacked = np.stack(per_layer)
    a = stacked.mean(axis=0) if aggregation.layer_reduction == "mean" else stacked.sum(axis=0)
    target = np.asarray(_to_numpy(target_mask)).astype(bool)                  # (B, T)
    if target.shape != a.shape[:2]:
        raise ValueError(f"target mask {target.shape} does not match attention {a.shape[:2]}")
    scores = np.einsum("bts,bt->bs", a, target.astype(np.float64))
    if aggregation.tokens == "mean":
        scores = scores / np.maximum(target.sum(axis=1, keepdims=True), 1)
    source = np.asarray(_to_numpy(source_mask)).astype(bool)
    if aggregation.exclude_padding:
        scores = np.where(source, scores, np.nan)
    return scores


ATTENTION_PATHS = ("fused", "eager")


def score_batch(model, pixels, plans, labels, aggregation: ScoreAggregation = ScoreAggregation(), *,
                attention: str = "fused", loss: bool = True):
    """Run the encoder and the teacher-forced decoder once.

    Returns ``(features (B, S, C) float32, scores (B, S) float64 with NaN for padding tokens,
    loss per image (B,))``. With ``loss=False`` (the builder, which does not use it) the loss is
    None and, on the fused path, the vocabulary projection is skipped (for T5-base about 6 % of
    the FLOPs and a ``(B, T, 32128)`` float32 logits tensor per batch).

    ``attention="fused"`` (the default) runs the decoder on fused attention (SDPA) and computes
    the cross-attention weights of only the layers the aggregation uses, from their queries and
    keys (:meth:`~neural_builders.vlm.model.ReportGenerator.decode_tapped`); heads are reduced
    in the hook and the scores aggregated on the model's device, so only ``(B, S)`` scores are
    copied to the host. ``attention="eager"`` is the reference: the eager decoder returns every
    layer's weights and :func:`aggregate_cross_attention` reduces them on the host in float64.
    Both give the same scores (float32: to rounding; tested).
    """
    torch = optional_deps.load("torch", needed_by="scoring patches")
    if attention not in ATTENTION_PATHS:
        raise ValueError(f"attention must be one of {ATTENTION_PATHS}, not {attention!r}")
    with torch.no_grad():
        encoded = model.encode(pixels, plans)
        target = labels != -100
        if attention == "eager":
            out = model.decode(encoded, labels, output_attentions=True)
            scores = aggregate_cross_attention(out.cross_attentions, target, encoded.token_mask, aggregation)
        else:
            layers = _layer_indices(aggregation.layers, len(model.t5.decoder.block))
            out, reduced = model.decode_tapped(encoded, labels, layers, logits=loss,
                                               reduce=lambda w: _reduce_heads(w.float(), aggregation.heads))
            scores = _aggregate_on_device(reduced, target, encoded.token_mask, aggregation)
        if not loss:
            return encoded.features.float().cpu().numpy(), scores, None
        logits = out.logits.float()
        nll = torch.nn.functional.cross_entropy(logits.transpose(1, 2), labels.masked_fill(~target, -100),
                                                ignore_index=-100, reduction="none")
        per_image = (nll.sum(1) / target.sum(1).clamp(min=1)).cpu().numpy()
    return encoded.features.float().cpu().numpy(), scores, per_image


def _reduce_heads(weights, heads: str):
    """``(B, H, T, S)`` -> ``(B, T, S)`` by the aggregation's head reduction."""
    if heads == "mean":
        return weights.mean(dim=1)
    if heads == "sum":
        return weights.sum(dim=1)
    return weights.amax(dim=1)


def _aggregate_on_device(per_layer: Sequence, target_mask, source_mask, aggregation: ScoreAggregation) -> np.ndarray:
    """:func:`aggregate_cross_attention` for head-reduced ``(B, T, S)`` float32 tensors, on their device.

    The layer reduction and the sum over report positions run where the weights are; only the
    ``(B, S)`` result reaches the host (as float64, like the reference)."""
    torch = optional_deps.load("torch", needed_by="scoring patches")
    stacked = torch.stack(list(per_layer))
    a = stacked.mean(dim=0) if aggregation.layer_reduction == "mean" else stacked.sum(dim=0)
    target = target_mask.to(a.device, a.dtype)
    if target.shape != a.shape[:2]:
        raise ValueError(f"target mask {tuple(target.shape)} does not match attention {tuple(a.shape[:2])}")
    scores = torch.einsum("bts,bt->bs", a, target)
    if aggregation.tokens == "mean":
        scores = scores / target.sum(dim=1, keepdim=True).clamp(min=1)
    host = scores.cpu().numpy().astype(np.float64)
    if aggregation.exclude_padding:
        source = np.asarray(_to_numpy(source_mask)).astype(bool)
        host = np.where(source, host, np.nan)
    return host


def _to_numpy(value):
    if hasattr(value, "detach"):
        return value.detach().float().cpu().numpy() if value.dtype.is_floating_point else value.detach().cpu().numpy()
    return value
