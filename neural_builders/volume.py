"""3-D volumes, MedPruner style: drop near-duplicate slices, then prune tokens within the kept ones.

A volume ``(D, H, W)`` in [0, 1] is scored slice by slice with the 2-D pipeline (each slice is
one image for the Swin + T5 model, teacher-forced on the volume's report), giving per-slice
Swin features and cross-attention scores over the slice's real patches.

**Slice-anchor filtering.** Each slice is summarised by the mean of its real patch features,
``f_d``. Slice 0 is the first anchor and is kept. Walking up the volume, slice ``d`` is dropped
when ``cos(f_d, f_anchor) >= threshold`` (a near-duplicate of the current anchor); otherwise it
is kept and becomes the new anchor. (The rule is :class:`neural_format.format.metadata.SliceAnchorFilter`,
recorded in the collection's ``provenance.pruning.slice_filter``.)

**Token pruning** then applies the pruning policy within each kept slice, to that slice's
scores (MedPruner's per-slice nucleus; any policy works).

Positions are 3-D ``(slice, row, col)`` in the original volume's indexing, so geometry is
``image_size = (D, H, W)``, ``patch_size = (1, pr, pc)``, ``grid_shape = (D, gr, gc)``.
Edges are ``6-neighbour``: kept slices that were adjacent in the volume are linked; a dropped
slice leaves a gap, because its neighbours were not adjacent in space.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from neural_format.format.metadata import SliceAnchorFilter
from neural_format.internals.progress import Progress
from neural_format.graphs.pruning import describe, select
from neural_format.format.record import Geometry, Record

from .summary import BuildSummary
from . import optional_deps


@dataclass
class VolumeInput:
    case_id: str
    volume: np.ndarray                       # (D, H, W) float in [0, 1]
    report: str
    labels: Optional[Sequence[float]] = None
    spacing: Optional[tuple[float, float, float]] = None   # (slice, row, col) mm
    group_key: Optional[str] = None
    source_bytes: int = 0


def slice_anchor_filter(descriptors: np.ndarray, rule: SliceAnchorFilter) -> np.ndarray:
    """Indices (ascending) of the slices kept by anchor filtering; see the module docstring."""
    f = np.asarray(descriptors, np.float64)
    if f.shape[0] == 0:
        return np.zeros(0, np.int64)
    norms = np.linalg.norm(f, axis=1)
    unit = f / np.where(norms > 0, norms, 1.0)[:, None]
    kept, anchor = [0], 0
    for d in range(1, f.shape[0]):
        if float(unit[d] @ unit[anchor]) >= rule.threshold:
            continue
        kept.append(d)
        anchor = d
    return np.asarray(kept, np.int64)


def score_volume(model, volume: np.ndarray, report: str, config, device=None):
    """Per-slice ``(plan, features (D, S, C), scores (D, S))`` for one volume."""
    torch = optional_deps.load("torch", needed_by="a 3-D build")

    from .scoring import score_batch
    from .vlm.patch_grid import to_working
    from .vlm.train import encode_labels
    volume = np.asarray(volume, np.float32)
    plan = model.plan(volume.shape[1:])
    device = device or next(model.parameters()).device
    feats, scores = [], []
    for start in range(0, volume.shape[0], config.batch_size):
        chunk = volume[start:start + config.batch_size]
        pixels = torch.from_numpy(np.stack([to_working(s, plan) for s in chunk]))[:, None].to(device)
        labels = encode_labels(model.tokenizer, [report] * len(chunk), config.max_report_tokens, device)
        f, s, _ = score_batch(model, pixels, [plan] * len(chunk), labels, config.aggregation,
                              attention=getattr(config, "attention", "fused"), loss=False)
        feats.append(f)
        scores.append(s)
    return plan, np.concatenate(feats), np.concatenate(scores)


def volume_record(item: VolumeInput, model, config, rule: SliceAnchorFilter, extractor, *, device=None) -> tuple[Record, dict]:
    """One 3-D record and facts about it (kept slices, patches seen)."""
    from neural_format.graphs.fusion import record_bridge
    from neural_format.graphs.grid import grid_adjacency

    from .kg import ENTITY_TYPES, RELATION_TYPES
    plan, features, scores = score_volume(model, item.volume, item.report, config, device)
    real = plan.real_token_indices()
    descriptors = features[:, real].mean(axis=1)
    slices = slice_anchor_filter(descriptors, rule)
    rows, feats, kept_scores = [], [], []
    for d in slices:
        local = real[select(scores[d, real], config.policy)]
        rc = plan.token_positions(local)
        rows.append(np.column_stack([np.full(len(local), d, np.int32), rc]))
        feats.append(features[d, local])
        kept_scores.append(scores[d, local])
    positions = np.concatenate(rows).astype(np.int32) if rows else np.zeros((0, 3), np.int32)
    edges = grid_adjacency(positions, "6-neighbour")
    kg = extractor.extract(item.report).to_arrays(ENTITY_TYPES, RELATION_TYPES)
    D, H, W = item.volume.shape
    labels = item.labels if item.labels is not None else [float("nan")] * len(config.label_names)
    record = Record(
        record_id=item.case_id, patch_features=np.concatenate(feats) if feats else np.zeros((0, model.swin_dim), np.float32),
        patch_scores=np.concatenate(kept_scores).astype(np.float32) if kept_scores else np.zeros(0, np.float32),
        patch_positions=positions, patch_edges=edges, entity_types=kg["entity_types"],
        entity_assertions=kg["entity_assertions"], entity_text=kg["entity_text"], relations=kg["relations"],
        relation_types=kg["relation_types"],
        bridge=record_bridge(len(positions), edges, np.concatenate(kept_scores) if kept_scores else np.zeros(0),
                             kg["relations"], kg["entity_types"], kg["entity_assertions"], ENTITY_TYPES,
                             config.bridge_tie_break),
        labels=np.asarray(labels, np.float32),
        geometry=Geometry((D, H, W), (1, *plan.native_patch), (D, *plan.grid_shape), item.spacing),
        report=item.report, report_source="ground_truth", group_key=item.group_key)
    return record, {"slices_kept": slices.tolist(), "patches_seen": int(real.size) * D}


def build_volume_collection(volumes: Sequence[VolumeInput], model, config, out_path, rule: SliceAnchorFilter, *,
                            skipped: Optional[list] = None) -> BuildSummary:
    """Write one 3-D collection (``spatial_axes = 3``, ``6-neighbour``) from ``volumes``."""
    torch = optional_deps.load("torch", needed_by="a 3-D build")

    from .build_config import open_writer
    from .provenance import collection_meta
    from .kg import extractor_ref, get_extractor
    from .devices import resolve_device
    device = resolve_device(config.device)
    model.to(device).eval()
    extractor = get_extractor(config.kg_extractor)
    out_path = Path(out_path)
    summary = BuildSummary(out_path=out_path, skipped=list(skipped or []), device=str(device),
                           source_bytes=int(sum(v.source_bytes for v in volumes)),
                           policy=f"slice filter cos >= {rule.threshold:g}, then {describe(config.policy)} per slice")
    config_3d = config
    if config.adjacency != "6-neighbour":
        from dataclasses import replace
        config_3d = replace(config, adjacency="6-neighbour", tiles=None)
    meta = collection_meta(model, config_3d, extractor_ref(extractor), entity_dim=0, tile_shape=None,
                           source_bytes=summary.source_bytes, spatial_axes=3, slice_filter=rule)
    began = time.perf_counter()
    with torch.no_grad(), open_writer(config, out_path, meta) as writer, \
            Progress(len(volumes), "building volumes", enabled=config.progress) as bar:
        for item in volumes:
            t0 = time.perf_counter()
            record, facts = volume_record(item, model, config_3d, rule, extractor, device=device)
            t1 = time.perf_counter()
            writer.append(record)
            summary.times.forward += t1 - t0
            summary.times.write += time.perf_counter() - t1
            summary.records_written += 1
            summary.patches_seen += facts["patches_seen"]
            summary.patches_kept += record.num_patches
            bar.update(1)
    summary.seconds = time.perf_counter() - began
    summary.bytes_written = out_path.stat().st_size
    return summary
