"""What a whole legacy pickle says about its graphs' layout, before any graph is decided.

Two facts of the NEURAL reference's stage 2 hold for a whole file, not for one graph:

* **one entity row**: the KG's node features are ``ones((M, 1))`` projected by one
  ``Linear(1, D)`` created once per run, so every entity row of every graph in the file is the
  same D-vector, bit for bit. The row is *established* when the same last row ends two or more
  graphs and at least one graph ends in two or more copies of it (patch features never repeat
  like that), or when the KG-only graphs that keep ``label`` all consist of one repeated row; if
  the two sources name different rows, none is established. Each graph then checks it: the rows
  equal to it must be the graph's last rows (:mod:`.layout_recovery`, ``entity-row``);
* **edge direction**: the reference stores each patch adjacency once (a set of sorted pairs) and
  KG edges in both directions (``from_networkx``). A file in which some graph stores a pair once
  in a column other than its last uses that convention (``edge-direction``); a file where every
  such pair is stored both ways follows PyG's usual convention (``reverse-pair``).

:func:`survey` reads each graph's edge list and node features once (the storages' sizes were
checked against the archive when the pickle was loaded); nothing else is kept.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from ..errors import NeuralFormatError
from .layout_recovery import stores_pairs_once
from .restricted_unpickler import LazyTensor
from .source_graphs import ArrayTensor, SourceGraph, SourceGraphs


@dataclass
class FileEvidence:
    """File-wide evidence: the entity row (with its dtype), the edge convention, label counts."""
    entity_row: Optional[np.ndarray] = None      # 1-D, in the source dtype as read
    entity_row_source: str = "not established"
    pairs_once: bool = False
    graphs_with_label: int = 0
    notes: list = field(default_factory=list)

    def entity_rows(self, features: np.ndarray) -> Optional[np.ndarray]:
        """Per row of ``features``, whether it equals the entity row bit for bit (None: no evidence)."""
        row = self.entity_row
        if row is None or features.ndim != 2 or features.dtype != row.dtype or features.shape[1] != row.shape[0]:
            return None
        if features.shape[0] == 0:
            return np.zeros(0, bool)
        width = features.dtype.itemsize * features.shape[1]
        rows = np.ascontiguousarray(features).view(np.dtype((np.void, width))).reshape(-1)
        return rows == row.view(np.dtype((np.void, width)))[0]


def label_list(graph: SourceGraph, rows: int) -> Optional[list]:
    """The graph's ``label`` attribute when it is a list of strings (the KG's entity text), else None.

    ``rows`` is not used to filter: a list of strings of another length is evidence that disagrees."""
    value = graph.attributes.get("label")
    if type(value) is not list or not all(type(v) is str for v in value):
        return None
    return value


def num_nodes_attribute(graph: SourceGraph) -> Optional[int]:
    value = graph.attributes.get("num_nodes")
    return value if type(value) is int else None


def _last_row(graph: SourceGraph, width: int) -> Optional[tuple[np.ndarray, int]]:
    """(last row of x, how many rows at the end equal it, bit for bit); only for x of the file's width."""
    x = graph.attributes.get("x")
    if not isinstance(x, (LazyTensor, ArrayTensor)):
        return None
    shape = x.shape
    if len(shape) != 2 or shape[0] == 0 or shape[1] != width:
        return None
    features = x.numpy()  # what graph.x() reads
    last = features[-1]
    width = features.dtype.itemsize * features.shape[1]
    rows = np.ascontiguousarray(features).view(np.dtype((np.void, width))).reshape(-1)
    same = rows == rows[-1]
    run = int(np.argmin(same[::-1])) if not same.all() else int(same.size)
    return np.array(last), run


def survey(graphs: SourceGraphs, width: int) -> FileEvidence:
    """Collect the file-wide evidence; graphs that cannot be read are left to the conversion pass.

    ``width``: the file's feature width, checked from the declared shapes before anything is read."""
    evidence = FileEvidence()
    last_rows: Counter = Counter()
    examples: dict = {}
    repeated: set = set()
    label_rows: set = set()
    for i in range(len(graphs)):
        graph = graphs[i]
        try:
            tail = _last_row(graph, width)
            edges = graph.edge_index()
        except (NeuralFormatError, ValueError, MemoryError):
            continue
        x = graph.attributes.get("x")
        rows = int(x.shape[0]) if isinstance(x, (LazyTensor, ArrayTensor)) and len(x.shape) == 2 else 0
        if edges is not None and rows and not evidence.pairs_once:
            evidence.pairs_once = stores_pairs_once(edges, rows)
        if tail is None:
            continue
        last, run = tail
        key = (last.dtype.str, last.tobytes())
        last_rows[key] += 1
        examples.setdefault(key, last)
        if run >= 2:
            repeated.add(key)
        labels = label_list(graph, rows)
        if labels is not None:
            evidence.graphs_with_label += 1
            if run == rows:
                label_rows.add(key)
    ranked = [(key, count) for key, count in last_rows.most_common(2)]
    frequent = None
    if ranked and ranked[0][1] >= 2 and (len(ranked) == 1 or ranked[1][1] < ranked[0][1]) and ranked[0][0] in repeated:
        frequent = ranked[0][0]
    if frequent is not None and label_rows and label_rows != {frequent}:
        evidence.notes.append("no entity row: the most common last row differs from the rows of KG-only graphs "
                              "with `label`")
        return evidence
    if frequent is not None:
        evidence.entity_row = examples[frequent]
        evidence.entity_row_source = (f"the last row of {last_rows[frequent]:,} graphs"
                                      + (" and of every KG-only graph with `label`" if label_rows else ""))
    elif len(label_rows) == 1:
        key = next(iter(label_rows))
        evidence.entity_row = examples[key]
        evidence.entity_row_source = "the rows of the KG-only graphs with `label`"
    elif len(label_rows) > 1:
        evidence.notes.append("no entity row: KG-only graphs with `label` have different rows")
    return evidence
