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
from typing import Callable, Iterable, Optional, Sequence, TypeVar

import numpy as np

from neural_format.format.metadata import CollectionMeta
from neural_format.format.record import Record

from .graph_input import NodeFeatures, convert
from .views import view


@dataclass
class Examples:
    records: Optional[list[Record]]  # None when loaded without records (GCN training reads the file)
    labels: np.ndarray
    features: NodeFeatures
    label: str
    label_index: int
    sources: list[str]
    unknown_labels: int = 0
    meta: Optional[CollectionMeta] = None
    extra: dict = field(default_factory=dict)
    positions: Optional[np.ndarray] = None  # each example's global index in ``sources``, when read from them
    _columns: object = field(default=None, repr=False)
    ids: Optional[list[str]] = None            # record IDs and group keys when ``records`` is None
    groups: Optional[list[Optional[str]]] = None

    def __len__(self) -> int:
        return int(self.labels.size)

    @property
    def group_keys(self) -> list[Optional[str]]:
        if self.records is not None:
            return [r.group_key for r in self.records]
        return list(_loaded(self.groups, "group keys"))

    @property
    def record_ids(self) -> list[str]:
        if self.records is not None:
            return [r.record_id for r in self.records]
        return list(_loaded(self.ids, "record IDs"))

    def subset(self, indices) -> "Examples":
        indices = [int(i) for i in indices]
        records = None if self.records is None else [self.records[i] for i in indices]
        return Examples(records, self.labels[indices], self.features, self.label,
                        self.label_index, self.sources, 0, self.meta,
                        positions=None if self.positions is None else self.positions[indices], _columns=self._columns,
                        ids=None if self.ids is None else [self.ids[i] for i in indices],
                        groups=None if self.groups is None else [self.groups[i] for i in indices])

    def required_records(self) -> list[Record]:
        """The records; examples loaded without them (``load_examples(records=False)``) raise ValueError."""
        if self.records is None:
            raise ValueError("these examples were loaded without records (load_examples(records=False))")
        return self.records

    def map_records(self, transform: Callable[[Record], Record]) -> "Examples":
        """The same examples with every record replaced by ``transform(record)`` (e.g. re-pruned)."""
        return Examples([transform(r) for r in self.required_records()], self.labels, self.features, self.label,
                        self.label_index, self.sources, self.unknown_labels, self.meta, dict(self.extra))

    def graphs(self, model_kind: str, modality: str = "fused", bridge: bool = True,
               indices: Optional[Iterable[int]] = None):
        """Model inputs of the examples ``indices``: :class:`FileExamples` for the GCN when read from files, else graphs."""
        chosen = range(len(self)) if indices is None else indices
        if model_kind == "gcn" and self.positions is not None:
            from .batch_input import FileExamples, HomogeneousBatches
            rows = np.asarray(list(chosen), np.int64)
            return FileExamples(self.columns(), self.positions[rows],
                                HomogeneousBatches(self.features, self.label_index, modality, bridge),
                                self.labels[rows])
        if self.records is None:
            raise ValueError(f"{model_kind!r} graphs are built per record: load the examples with records=True")
        return [convert(view(self.records[i], modality, bridge), self.features, self.label_index, model_kind)
                for i in chosen]


    def columns(self):
        """Column access to ``sources`` (opened once, shared by every split and variant)."""
        if self._columns is None:
            from neural_format.adapters.batch_columns import CollectionColumns
            self._columns = CollectionColumns(list(self.sources), extras=False)
        return self._columns


_T = TypeVar("_T")


def _loaded(values: Optional[_T], what: str) -> _T:
    """What examples loaded without records carry instead (``load_examples(records=False)`` sets it)."""
    if values is None:
        raise ValueError(f"these examples hold neither records nor {what}")
    return values


def load_examples(sources: Sequence, label: str, *, records: bool = True) -> Examples:
    """Every record of ``sources`` that has a known value for ``label``.

    ``records=False`` reads only each shard's labels column, record IDs and group keys (a few
    bytes per record, no graph data): enough to split and to train and score the GCN from the
    file (:meth:`Examples.graphs`), not for the per-record graphs of other models or re-pruning.
    """
    if not records:
        return _load_labels_only(sources, label)
    from neural_format.collections.collection import open_collection

    kept: list[Record] = []
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
                kept.append(record)
                labels.append(value)
                positions.append(position)
            seen += len(collection)
    if features is None:
        raise ValueError("no collection given")
    return Examples(kept, np.asarray(labels, np.float64), features, label, label_index,
                    [str(s) for s in sources], unknown, meta, positions=np.asarray(positions, np.int64))


def _checked_layout(source, meta, label: str, first):
    """``(features, label index)`` of ``meta``, refused when it differs from the first source's."""
    if label not in meta.label_names:
        raise ValueError(f"{source}: no label {label!r} (labels: {list(meta.label_names)})")
    layout = (NodeFeatures.from_meta(meta), list(meta.label_names).index(label))
    if first is not None and layout != first:
        raise ValueError(f"{source}: feature layout or label position differs from the first collection")
    return layout


def _load_labels_only(sources: Sequence, label: str) -> Examples:
    from neural_format.collections.collection import open_collection

    first = meta = None
    values, ids, groups = [], [], []
    for source in sources:
        with open_collection(source) as collection:
            layout = _checked_layout(source, collection.meta, label, first)
            if first is None:
                first, meta = layout, collection.meta
            for k in range(collection.shard_count):
                reader = collection.shard(k)
                if len(reader):
                    values.append(reader.cols["/records/labels"][()][:, layout[1]].astype(np.float64))
                    ids += reader.record_ids()
                    groups += reader.strings["/records/group_key"].all()
    if first is None:
        raise ValueError("no collection given")
    column = np.concatenate(values) if values else np.zeros(0, np.float64)
    known = np.flatnonzero(~np.isnan(column))
    bad = [i for i in known.tolist() if column[i] not in (0.0, 1.0)]
    if bad:
        raise ValueError(f"record {ids[bad[0]]!r} has non-binary label {column[bad[0]]}")
    return Examples(None, column[known], first[0], label, first[1], [str(s) for s in sources],
                    int(column.size - known.size), meta, positions=known.astype(np.int64),
                    ids=[ids[i] for i in known.tolist()], groups=[groups[i] or None for i in known.tolist()])
