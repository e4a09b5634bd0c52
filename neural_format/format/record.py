"""One fused graph: retained image patches, a clinical knowledge graph, and the bridge between them.

A record is plain numpy arrays. Indices in ``patch_edges``, ``relations`` and ``bridge`` are
local to the record: patch ``i`` is row ``i`` of ``patch_features``, entity ``k`` is row ``k`` of
``entity_types``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Optional

import numpy as np

# the stored codes live with the file layout (hashing and the adapters read them without a Record)
from .layout import ASSERTION_CODES, REPORT_SOURCE_NAMES, REPORT_SOURCES, UNKNOWN  # noqa: F401 (re-exported)

ReportSource = Literal["ground_truth", "generated"]


@dataclass(frozen=True)
class Geometry:
    """Image geometry of one record, one entry per spatial axis ((row, col) or (slice, row, col)).

    ``image_size`` is in pixels (voxels), ``patch_size`` in pixels per axis, ``grid_shape`` the
    number of patches per axis (ceil(image_size / patch_size), padded at the high end), and
    ``pixel_spacing`` in millimetres per pixel (NaN where unknown).
    """
    image_size: tuple[int, ...]
    patch_size: tuple[int, ...]
    grid_shape: tuple[int, ...]
    pixel_spacing: Optional[tuple[float, ...]] = None

    @classmethod
    def for_image(cls, image_size, patch_size, pixel_spacing=None) -> "Geometry":
        image_size = tuple(int(v) for v in image_size)
        patch_size = tuple(int(v) for v in patch_size)
        grid = tuple(-(-s // p) for s, p in zip(image_size, patch_size))
        spacing = None if pixel_spacing is None else tuple(float(v) for v in pixel_spacing)
        return cls(image_size, patch_size, grid, spacing)

    @property
    def axes(self) -> int:
        return len(self.image_size)


@dataclass
class Record:
    """A fused patch/KG graph. See spec section 4 for each field's clause."""
    record_id: str
    patch_features: np.ndarray
    patch_scores: np.ndarray
    patch_positions: Optional[np.ndarray] = None
    patch_edges: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.int32))
    entity_types: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.int16))
    entity_assertions: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.int8))
    entity_text: Optional[list[str]] = None
    entity_features: Optional[np.ndarray] = None
    relations: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.int32))
    relation_types: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.int16))
    bridge: Optional[tuple[int, int]] = None
    labels: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.float32))
    geometry: Optional[Geometry] = None
    tiles: Optional[np.ndarray] = None
    report: Optional[str] = None
    report_source: Optional[ReportSource] = None
    group_key: Optional[str] = None

    @property
    def num_patches(self) -> int:
        return int(self.patch_features.shape[0])

    @property
    def num_entities(self) -> int:
        return int(self.entity_types.shape[0])

    @property
    def has_bridge(self) -> bool:
        return self.bridge is not None

    def patch_boxes(self) -> np.ndarray:
        """Pixel boxes of the retained patches as ``[start_0, ..., start_{A-1}, stop_0, ..., stop_{A-1}]``.

        For position ``g`` on axis ``a``: ``start = g * patch_size[a]`` and
        ``stop = min(start + patch_size[a], image_size[a])``, so patches in the padded last
        row/column are clipped at the image edge. Shape ``(num_patches, 2 * A)``, int64.
        """
        if self.patch_positions is None or self.geometry is None:
            raise ValueError(f"record {self.record_id!r} has no positions/geometry; boxes are unknown")
        size = np.asarray(self.geometry.patch_size, np.int64)
        limit = np.asarray(self.geometry.image_size, np.int64)
        start = self.patch_positions.astype(np.int64) * size
        stop = np.minimum(start + size, limit)
        return np.concatenate([start, stop], axis=1)

    def entity_names(self, vocabulary: list[str]) -> list[str]:
        """Entity type codes resolved against the collection's ``entity_types`` vocabulary."""
        return [vocabulary[t] if 0 <= t < len(vocabulary) else "unknown" for t in self.entity_types]

    def __eq__(self, other: object) -> bool:  # arrays compare by value, dtype and shape
        if not isinstance(other, Record):
            return NotImplemented
        from .hashing import record_digest
        return record_digest(self) == record_digest(other) and self.group_key == other.group_key

    # adapters live in neural_format.adapters and import torch/networkx only when called
    def to_pyg(self, **kwargs):
        from ..adapters.pyg_graphs import record_to_pyg
        return record_to_pyg(self, **kwargs)

    def to_pyg_hetero(self, **kwargs):
        from ..adapters.pyg_graphs import record_to_pyg_hetero
        return record_to_pyg_hetero(self, **kwargs)

    def to_networkx(self, **kwargs):
        from ..adapters.networkx import record_to_networkx
        return record_to_networkx(self, **kwargs)
