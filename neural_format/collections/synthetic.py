"""Random but valid collections, for the demo, tests and benchmarks (no real patient data)."""
from __future__ import annotations

import datetime as dt
from typing import Iterator

import numpy as np

from ..graphs.grid import grid_adjacency
from ..format.metadata import CollectionMeta, FeatureDtype, FusionRule, Provenance, PruningPolicy, SoftwareRef, SpatialAxes, TopKPercent
from ..format.record import Geometry, Record

ENTITY_TYPES = ["finding", "anatomy", "device", "observation_modifier"]
RELATION_TYPES = ["located_at", "modifies", "suggestive_of"]
WORDS = ["opacity", "consolidation", "effusion", "lobe", "pneumothorax", "cardiomegaly", "catheter",
         "édème", "肺炎", "nodule", "atelectasis", "left", "right", "basal"]


def synthetic_meta(*, feature_dim: int = 64, entity_feature_dim: int = 0, dtype: FeatureDtype = "float32",
                   axes: SpatialAxes = 2, tiles: bool = False, label_names=("pneumonia",)) -> CollectionMeta:
    from ..version import SDK_VERSION as __version__
    return CollectionMeta(
        spatial_axes=axes, patch_feature_dim=feature_dim, patch_feature_dtype=dtype,
        entity_feature_dim=entity_feature_dim, entity_feature_dtype=dtype,
        tile_shape=([1, 8, 8] if axes == 3 else [8, 8]) if tiles else None,
        tile_dtype="uint8" if tiles else None,
        adjacency="4-neighbour" if axes == 2 else "6-neighbour",
        entity_types=ENTITY_TYPES, relation_types=RELATION_TYPES, label_names=list(label_names),
        provenance=Provenance(
            builder=SoftwareRef(name="neural_format.collections.synthetic", version=__version__),
            sdk=SoftwareRef(name="neural-format", version=__version__),
            created=dt.datetime.now(dt.timezone.utc),
            pruning=PruningPolicy(rule=TopKPercent(percent=10.0)),
            fusion=FusionRule()))


def grid_edges(positions: np.ndarray) -> np.ndarray:
    """4-neighbour (2-D) or 6-neighbour (3-D) edges among the given grid positions, both directions."""
    positions = np.asarray(positions)
    axes = positions.shape[1] if positions.ndim == 2 else 2
    return grid_adjacency(positions.reshape(-1, axes), "4-neighbour" if axes == 2 else "6-neighbour")


def synthetic_record(rng: np.random.Generator, index: int, meta: CollectionMeta, *,
                     patches: int | tuple[int, int] = (0, 30), entities: int | tuple[int, int] = (0, 12)) -> Record:
    axes = meta.spatial_axes
    P = patches if isinstance(patches, int) else int(rng.integers(patches[0], patches[1] + 1))
    M = entities if isinstance(entities, int) else int(rng.integers(entities[0], entities[1] + 1))
    image = (4, 224, 200) if axes == 3 else (224, 200)
    patch = (1, 8, 8) if axes == 3 else (8, 8)
    geometry = Geometry.for_image(image, patch, pixel_spacing=(0.14,) * axes if index % 2 else None)
    cells = int(np.prod(geometry.grid_shape))
    flat = rng.choice(cells, size=min(P, cells), replace=False)
    positions = np.stack(np.unravel_index(flat, geometry.grid_shape), axis=1).astype(np.int32)
    P = int(positions.shape[0])
    feats = rng.standard_normal((P, meta.patch_feature_dim)).astype(meta.patch_feature_dtype)
    scores = rng.random(P).astype(np.float32)
    text = [" ".join(rng.choice(WORDS, size=int(rng.integers(1, 3)))) for _ in range(M)]
    R = int(rng.integers(0, 2 * M + 1)) if M > 1 else 0
    relations = rng.integers(0, max(M, 1), size=(R, 2)).astype(np.int32)
    # relations follow the 1.1.0 convention (NF-R019): no self-loops, no pair twice; the draws stay
    # the same (types are drawn for all R and then cut), so every other synthetic value is unchanged
    _, first = np.unique(relations, axis=0, return_index=True) if R else (None, np.zeros(0, np.int64))
    keep = np.zeros(R, bool)
    keep[first] = True
    keep &= relations[:, 0] != relations[:, 1]
    relations = relations[keep]
    tiles = None
    if meta.tile_shape is not None:
        tiles = rng.integers(0, 255, size=(P, *meta.tile_shape)).astype(meta.tile_dtype)
    efeats = None
    if meta.entity_feature_dim:
        efeats = rng.standard_normal((M, meta.entity_feature_dim)).astype(meta.entity_feature_dtype)
    has_report = index % 3 != 2
    return Record(
        record_id=f"rec-{index:06d}", patch_features=feats, patch_scores=scores, patch_positions=positions,
        patch_edges=grid_edges(positions), entity_types=rng.integers(0, len(meta.entity_types), M).astype(np.int16),
        entity_assertions=rng.integers(0, 3, M).astype(np.int8), entity_text=text, entity_features=efeats,
        relations=relations, relation_types=rng.integers(0, len(meta.relation_types), R).astype(np.int16)[keep],
        bridge=(int(rng.integers(P)), int(rng.integers(M))) if P and M else None,
        labels=np.array([rng.integers(0, 2) if index % 7 else np.nan for _ in meta.label_names], np.float32),
        geometry=geometry, tiles=tiles,
        report=("Opacity in the right lower lobe. No effusion." if has_report else None),
        report_source="ground_truth" if has_report else None,
        group_key=f"patient-{index // 2:05d}")


def synthetic_records(n: int, meta: CollectionMeta, seed: int = 0, **kwargs) -> Iterator[Record]:
    rng = np.random.default_rng(seed)
    for i in range(n):
        yield synthetic_record(rng, i, meta, **kwargs)
