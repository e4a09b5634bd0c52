"""Pruning quality on phantoms with known lesions: lesion recall at a retention, against random pruning.

Definitions (per retention ``r``, over held-out positive cases; negatives have no lesion):

* A record's *retained set at r* is the first ``n = ceil(r * P)`` patches of its ranking by
  stored score (``P`` = real patches of the image = ``prod(grid_shape)``; ties by lower index),
  i.e. exactly what :class:`~neural_format.format.metadata.TopKPercent` keeps with ``min_nodes = 1``.
  The collection must have been built at a retention >= r, so the stored patches contain it.
* **Lesion recall** (the headline figure): the fraction of planted lesions for which at least one
  retained patch's native pixel box (:meth:`~neural_format.format.record.Record.patch_boxes`) contains
  at least one pixel of the lesion's mask. (A "hit" in the pointing-game sense: the pruned graph
  still holds a piece of every lesion.)
* **Lesion-patch recall** (stricter, reported alongside): the fraction of lesion-overlapping
  patches (over all lesions) that are retained. With ``n`` small it is bounded by ``n / (lesion
  patches)``, so it is low at 2.3 % by construction; it is not the headline figure.
* **Random baseline**: the same ``n`` per record drawn uniformly without replacement from the
  record's ``P`` real patches; both recalls averaged over ``draws`` draws (fixed seed), in the
  same run.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from neural_format.graphs.pruning import rank


@dataclass
class RecallRow:
    retention_percent: float
    lesions: int
    lesion_recall: float
    random_lesion_recall: float
    patch_recall: float
    random_patch_recall: float
    mean_kept: float

    def line(self) -> str:
        return (f"  {self.retention_percent:>5.1f}%  kept/image {self.mean_kept:>5.1f}   lesion recall "
                f"{self.lesion_recall:.3f} (random {self.random_lesion_recall:.3f})   lesion-patch recall "
                f"{self.patch_recall:.3f} (random {self.random_patch_recall:.3f})   [{self.lesions} lesions]")


def _cell_boxes(geometry) -> np.ndarray:
    """Boxes of every grid cell (row-major), clipped at the image edge: (P, 4)."""
    gr, gc = geometry.grid_shape
    pr, pc = geometry.patch_size
    H, W = geometry.image_size
    rows, cols = np.divmod(np.arange(gr * gc), gc)
    r0, c0 = rows * pr, cols * pc
    return np.stack([r0, c0, np.minimum(r0 + pr, H), np.minimum(c0 + pc, W)], axis=1)


def _overlaps(boxes: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Which boxes contain at least one mask pixel (integral image, O(1) per box)."""
    integral = np.pad(mask.astype(np.int64).cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    r0, c0, r1, c1 = boxes.T
    counts = integral[r1, c1] - integral[r0, c1] - integral[r1, c0] + integral[r0, c0]
    return counts > 0


def lesion_recall(records: Sequence, masks: Mapping[str, np.ndarray], retentions=(2.3, 10.0), *,
                  draws: int = 50, seed: int = 0) -> list[RecallRow]:
    """Recall rows for ``records`` (2-D, with positions and geometry) and lesion ``masks``
    ``{record_id: (K, H, W) bool}`` (K = 0 or absent for negatives)."""
    rng = np.random.default_rng(seed)
    rows = []
    for r in retentions:
        hit = patch = total_patches = lesions = 0
        rnd_hit = rnd_patch = 0.0  # expectations over the random draws
        kept_counts = []
        for record in records:
            lesion_masks = masks.get(record.record_id)
            if lesion_masks is None or len(lesion_masks) == 0:
                continue
            geometry = record.geometry
            P = int(np.prod(geometry.grid_shape))
            n = min(P, max(1, math.ceil(round(r * P / 100.0, 9))))
            if n > record.num_patches:
                raise ValueError(f"record {record.record_id!r} stores {record.num_patches} patches; "
                                 f"{r}% retention needs {n}: build at a higher retention")
            order = rank(record.patch_scores)[:n]
            pos = record.patch_positions[order].astype(np.int64)
            kept_cells = pos[:, 0] * geometry.grid_shape[1] + pos[:, 1]
            kept_counts.append(n)
            cells = _cell_boxes(geometry)
            for mask in lesion_masks:
                covering = np.flatnonzero(_overlaps(cells, mask))
                lesions += 1
                total_patches += covering.size
                inter = np.intersect1d(kept_cells, covering).size
                hit += inter > 0
                patch += inter
                for _ in range(draws):
                    sample = rng.choice(P, size=n, replace=False)
                    k = np.intersect1d(sample, covering).size
                    rnd_hit += (k > 0) / draws
                    rnd_patch += k / draws
        rows.append(RecallRow(r, lesions, hit / max(lesions, 1), rnd_hit / max(lesions, 1),
                              patch / max(total_patches, 1), rnd_patch / max(total_patches, 1),
                              float(np.mean(kept_counts)) if kept_counts else 0.0))
    return rows
