"""Prune an existing collection further, with no model: the stored patch scores decide.

For every record, :func:`neural_format.graphs.pruning.select` picks a subset of the *stored* patches
from their stored scores, so percentages, thresholds and nucleus mass are relative to what the
file holds, not to the original image's full token grid (which is gone): ``--top-k-percent 50``
keeps half of the stored patches, ``--nucleus 0.8`` keeps the smallest set holding 80 % of the
stored score mass. Re-pruning can only shrink a record.

Then, per record:

* features, scores, positions and tiles of the kept patches are kept, in their stored order;
* patch edges are rebuilt among the kept patches with :func:`neural_format.graphs.grid.grid_adjacency`
  under the collection's declared ``adjacency`` rule; for ``custom``/``unknown`` adjacency the
  stored edges between two kept patches are kept (the induced subgraph);
* the bridge: when the collection declares the ``betweenness-bridge`` fusion rule it is
  recomputed with :func:`neural_format.graphs.fusion.betweenness_bridge` on the pruned graph (the file
  must still obey its declared rule, and the most central patch of a smaller graph may change;
  when the bridged patch was dropped this is the only option). Under other fusion rules the
  bridge is kept (re-indexed) if its patch survives and removed otherwise;
* the KG, labels, report and geometry are unchanged.

The output's provenance gets ``pruning = policy`` with ``applied_to = "re-prune"`` and one
``history`` line naming the operation, the input file and the previous policy. The output is a
new single file (any shard membership is dropped: its record hashes differ from the manifest's).
It keeps the input's storage settings (compression, gzip level, chunk size, feature dtypes:
:mod:`neural_format.files.storage`) unless ``compression``/``compression_level``/``chunk_bytes``/
``dtype`` say otherwise.
"""
from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Optional

import numpy as np

from ..graphs.grid import RULE_AXES, grid_adjacency
from ..format.metadata import CollectionMeta, PruningPolicy
from ..internals.progress import Progress
from ..graphs.pruning import describe, select
from ..files.reader import CollectionReader
from ..format.record import Record
from ..files.writer import CollectionWriter

__all__ = ["RepruneSummary", "reprune_record", "reprune_records", "reprune_meta", "reprune_collection"]


@dataclass
class RepruneSummary:
    records: int
    patches_before: int
    patches_after: int
    bridges_recomputed: int
    bytes_before: int
    bytes_after: int

    def lines(self) -> list[str]:
        kept = self.patches_after / self.patches_before if self.patches_before else 0.0
        return [f"records            {self.records:,}",
                f"patches            {self.patches_before:,} -> {self.patches_after:,} ({kept:.1%} kept)",
                f"bridges recomputed {self.bridges_recomputed:,}",
                f"bytes              {self.bytes_before:,} -> {self.bytes_after:,}"]


def _induced_edges(edges: np.ndarray, kept: np.ndarray, total: int) -> np.ndarray:
    new_index = np.full(total, -1, np.int64)
    new_index[kept] = np.arange(kept.size)
    edges = np.asarray(edges, np.int64).reshape(-1, 2)
    mapped = new_index[edges] if edges.size else np.zeros((0, 2), np.int64)
    return mapped[(mapped >= 0).all(axis=1)].astype(np.int32)


def reprune_record(record: Record, policy: PruningPolicy, meta: CollectionMeta) -> tuple[Record, bool]:
    """The pruned record and whether its bridge was recomputed."""
    kept = select(record.patch_scores, policy)
    P = record.num_patches
    positions = None if record.patch_positions is None else record.patch_positions[kept]
    if positions is not None and meta.adjacency in RULE_AXES:
        edges = grid_adjacency(positions, meta.adjacency)
    else:
        edges = _induced_edges(record.patch_edges, kept, P)
    fusion = meta.provenance.fusion
    bridge, recomputed = None, False
    if fusion is not None and fusion.kind == "betweenness-bridge" and record.bridge is not None:
        from ..graphs.fusion import record_bridge
        # the rule the collection's bridges were made with (1.0.0 files: the reference's lowest index)
        bridge = record_bridge(kept.size, edges, record.patch_scores[kept], record.relations, record.entity_types,
                               record.entity_assertions, meta.entity_types, fusion.tie_break)
        recomputed = bridge is not None and (bridge[0] >= kept.size or kept[bridge[0]] != record.bridge[0]
                                             or bridge[1] != record.bridge[1])
    elif record.bridge is not None:
        where = np.flatnonzero(kept == record.bridge[0])
        bridge = (int(where[0]), int(record.bridge[1])) if where.size else None
    out = Record(
        record_id=record.record_id, patch_features=record.patch_features[kept],
        patch_scores=record.patch_scores[kept], patch_positions=positions, patch_edges=edges,
        entity_types=record.entity_types, entity_assertions=record.entity_assertions,
        entity_text=record.entity_text, entity_features=record.entity_features,
        relations=record.relations, relation_types=record.relation_types, bridge=bridge,
        labels=record.labels, geometry=record.geometry,
        tiles=None if record.tiles is None else record.tiles[kept],
        report=record.report, report_source=record.report_source, group_key=record.group_key)
    return out, recomputed


def reprune_records(records: Iterable[Record], policy: PruningPolicy, meta: CollectionMeta) -> Iterator[Record]:
    for record in records:
        yield reprune_record(record, policy, meta)[0]


def reprune_meta(meta: CollectionMeta, policy: PruningPolicy, source_name: str) -> CollectionMeta:
    """The output metadata: the new policy (applied_to="re-prune") and a history line."""
    previous = meta.provenance.pruning
    policy = policy.model_copy(update={"applied_to": "re-prune",
                                       "slice_filter": policy.slice_filter or (previous.slice_filter if previous else None)})
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    line = f"{stamp} re-prune {describe(policy)} of {source_name}"
    line += f" (was {describe(previous)}, {previous.applied_to})" if previous else ""
    provenance = meta.provenance.model_copy(update={"pruning": policy,
                                                    "history": [*meta.provenance.history, line[:256]]})
    return meta.model_copy(update={"provenance": provenance, "shard": None})


def with_feature_dtype(meta: CollectionMeta, dtype: Optional[str]) -> CollectionMeta:
    """``meta`` storing patch (and entity) features as ``dtype`` ("float16"/"float32"); None keeps it."""
    if dtype is None:
        return meta
    update = {"patch_feature_dtype": dtype}
    if meta.entity_feature_dim:
        update["entity_feature_dtype"] = dtype
    return meta.model_copy(update=update)


def reprune_collection(source, destination, policy: PruningPolicy, *, overwrite: bool = False,
                       compression: Optional[str] = None, compression_level: Optional[int] = None,
                       chunk_bytes: Optional[int] = None, dtype: Optional[str] = None,
                       progress: Optional[bool] = None) -> RepruneSummary:
    """Write ``destination``: every record of ``source`` re-pruned by ``policy``.

    Storage follows the input unless overridden: ``compression`` None keeps the input's filter,
    ``"none"``/``"gzip"``/``"lzf"`` set it; ``compression_level``, ``chunk_bytes`` and ``dtype``
    (feature dtype) likewise."""
    source, destination = Path(source), Path(destination)
    if source.resolve() == destination.resolve():
        raise ValueError("re-prune writes a new file; choose an output path other than the input")
    before = after = recomputed = 0
    with CollectionReader(source) as reader:
        meta = with_feature_dtype(reprune_meta(reader.meta, policy, source.name), dtype)
        storage = reader.storage.overridden(compression, compression_level, chunk_bytes)
        with CollectionWriter(destination, meta, overwrite=overwrite, **storage.writer_kwargs()) as writer, \
                Progress(len(reader), "re-pruning", enabled=progress) as bar:
            policy_applied = meta.provenance.pruning
            assert policy_applied is not None  # reprune_meta always sets it
            for record in reader:
                out, changed = reprune_record(record, policy_applied, reader.meta)
                before += record.num_patches
                after += out.num_patches
                recomputed += int(changed)
                writer.append(out)
                bar.update(1)
            count = len(writer)
    return RepruneSummary(count, before, after, recomputed, os.path.getsize(source), os.path.getsize(destination))
