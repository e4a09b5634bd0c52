"""Modality and fusion views of a record, for training variants and ablations.

A view is a new :class:`~neural_format.format.record.Record` built from the stored one, with no copy of
the arrays it keeps:

* ``fused``: the record as stored (patches, KG and the bridge edge).
* ``image``: the patch graph alone (entities, relations and bridge dropped).
* ``text``: the knowledge graph alone (patches, patch edges and bridge dropped).
* ``no_bridge``: both graphs, without the single bridge edge that fuses them.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from neural_format.format.record import Record

MODALITIES = ("fused", "image", "text")


def image_only(record: Record) -> Record:
    return dataclasses.replace(
        record, entity_types=np.zeros((0,), np.int16), entity_assertions=np.zeros((0,), np.int8),
        entity_text=[] if record.entity_text is not None else None,
        entity_features=None if record.entity_features is None else record.entity_features[:0],
        relations=np.zeros((0, 2), np.int32), relation_types=np.zeros((0,), np.int16), bridge=None)


def text_only(record: Record) -> Record:
    return dataclasses.replace(
        record, patch_features=record.patch_features[:0], patch_scores=record.patch_scores[:0],
        patch_positions=None if record.patch_positions is None else record.patch_positions[:0],
        patch_edges=np.zeros((0, 2), np.int32), tiles=None if record.tiles is None else record.tiles[:0],
        bridge=None)


def without_bridge(record: Record) -> Record:
    return dataclasses.replace(record, bridge=None)


def view(record: Record, modality: str = "fused", bridge: bool = True) -> Record:
    """The record restricted to ``modality`` (fused|image|text), with or without its bridge edge."""
    if modality not in MODALITIES:
        raise ValueError(f"modality must be one of {MODALITIES}, not {modality!r}")
    if modality == "image":
        return image_only(record)
    if modality == "text":
        return text_only(record)
    return record if bridge else without_bridge(record)
