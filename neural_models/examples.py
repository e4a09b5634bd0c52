"""Labelled examples read from one or more collections (files, shard lists or collection dirs).

All sources must share one node-feature layout (patch feature width, entity vocabularies) and
name the label. Records whose label is unknown (NaN) are left out and counted. The records are
held in memory as read (``read_all`` views), and turned into graphs per model kind and view on
demand, so one read serves every ablation variant. Each example also remembers its position in
the sources (``positions``): for the GCN, :meth:`Examples.graphs` then hands out
:class:`~neural_models.batch_input.FileExamples`, which training and scoring read batch by batch
from the file (:class:`~neural_format.adapters.pyg_batches.GraphBatchLoader`) instead of
building one graph per record; examples whose records were transformed (``map_records``, e.g.
re-pruned in memory) are turned into graphs one by one.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

import numpy as np

from neural_format.record import Record

from .graph_input import NodeFeatures, convert
from .views import view


@dataclass
class Examples:
    records: list[Record]
    labels: np.ndarray
    features: NodeFeatures
    label: str
    label_index: int
    sources: list[str]
    unknown_labels: int = 0
    meta: object = None
    extra: dict = field(default_factory=dict)
    positions: Optional[np.ndarray] = None  # each example's global index in ``sources``, when read from them
    _columns: object = field(default=None, repr=False)

    @property
    def group_keys(self) -> list[Optional[str]]:
        return [r.group_key for r in self.records]

    @property
    def record_ids(self) -> list[str]:
        return [r.record_id for r in self.records]

    def subset(self, indices) -> "Examples":
        indices = [int(i) for i in indices]
        return Examples([self.records[i] for i in indices], self.labels[indices], self.features, self.label,
                        self.label_index, self.sources, 0, self.meta,
                        positions=None if self.positions is None else self.positions[indices], _columns=self._columns)

    def map_records(self, transform: Callable[[Record], Record]) -> "Examples":
        """The same examples with every record replaced by ``transform(record)`` (e.g. re-pruned)."""
        return Examples([transform(r) for r in self.records], self.labels, self.features, self.label,
                        self.label_index, self.sources, self.unknown_labels, self.meta, dict(self.extra))

    def graphs(self, model_kind: str, modality: str = "fused", bridge: bool = True,
               indices: Optional[Sequence[int]] = None):
        """Model inputs of the examples ``indices``: :class:`FileExamples` for the GCN when read from files, else graphs."""
        chosen = range(len(self.records)) if indices is None else indices
        if model_kind == "gcn" and self.positions is not None:
            from .batch_input import FileExamples, HomogeneousBatches
            chosen = np.asarray(list(chosen), np.int64)
            return FileExamples(self.columns(), self.positions[chosen],
                                HomogeneousBatches(self.features, self.label_index, modality, bridge),
                                self.labels[chosen])
        return [convert(view(self.records[i], modality, bridge), self.features, self.label_index, model_kind)
                for i in chosen]


    def columns(self):
        """Column access to ``sources`` (opened once, shared by every split and variant)."""
        if self._columns is None:
            from neural_format.adapters.batch_columns import CollectionColumns
            self._columns = CollectionColumns(list(self.sources), extras=False)
        return self._columns


def load_examples(sources: Sequence, label: str) -> Examples:
    """Read every record of ``sources`` that has a known value for ``label``."""
    from neural_format.collection import open_collection

    records: list[Record] = []
    labels: list[float] = []
    positions: list[int] = []
    seen = 0
    features = meta = None
    unknown = 0
    label_index = -1
    for source in sources:
        with open_collection(source) as collection:
            this_meta = collection.meta
            if label not in this_meta.label_names:
                raise ValueError(f"{source}: no label {label!r} (labels: {list(this_meta.label_names)})")
            this_index = list(this_meta.label_names).index(label)
            this_features = NodeFeatures.from_meta(this_meta)
            if features is None:
                features, meta, label_index = this_features, this_meta, this_index
            elif this_features != features or this_index != label_index:
                raise ValueError(f"{source}: feature layout or label position differs from {sources[0]}")
            for position, record in enumerate(collection.read_all(), start=seen):
                value = float(record.labels[label_index]) if record.labels.size > label_index else float("nan")
                if np.isnan(value):
                    unknown += 1
                    continue
                if value not in (0.0, 1.0):
                    raise ValueError(f"{source}: record {record.record_id!r} has non-binary label {value}")
                records.append(record)
                labels.append(value)
                positions.append(position)
            seen += len(collection)
    if features is None:
        raise ValueError("no collection given")
    return Examples(records, np.asarray(labels, np.float64), features, label, label_index,
                    [str(s) for s in sources], unknown, meta, positions=np.asarray(positions, np.int64))
