"""Records -> networkx graphs (imports networkx when called).

Nodes are numbered as in :func:`~neural_format.adapters.pyg.record_to_pyg`: patches ``0..P-1``,
entities ``P..P+M-1``. Node attributes: ``modality`` (``"patch"`` / ``"entity"``), ``index``
(row within its modality); patches add ``score`` and ``position`` (tuple, when the collection has
positions); entities add ``text`` (when stored), ``type`` and ``assertion`` codes (-1 = not
recorded) and, given the vocabulary, ``type_name`` and ``assertion_name``. Edge attributes:
``kind`` (``"adjacency"``, ``"relation"``, ``"bridge"``) and, for relations, ``relation_type``
(+ ``relation_name``). Graph attributes: ``record_id``, ``labels`` (by name when given) and ``report``.

The default is an undirected :class:`networkx.Graph`, which merges a stored edge and its reverse;
``directed=True`` keeps directions and ``multigraph=True`` keeps parallel relations.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Optional, Sequence

import numpy as np

from ..format.layout import ASSERTION_CODES
from ..internals import optional_deps

if TYPE_CHECKING:  # the record calls this adapter (Record.to_networkx): a type, not an import
    from ..format.record import Record

_ASSERTION_NAMES = {code: name for name, code in ASSERTION_CODES.items()}


def record_to_networkx(record: Record, *, directed: bool = False, multigraph: bool = False,
                       entity_types: Optional[Sequence[str]] = None,
                       relation_types: Optional[Sequence[str]] = None,
                       label_names: Optional[Sequence[str]] = None):
    """The record as a networkx graph (see the module docstring for the attributes)."""
    nx = optional_deps.load("networkx", needed_by="to_networkx")
    cls = {(False, False): nx.Graph, (True, False): nx.DiGraph,
           (False, True): nx.MultiGraph, (True, True): nx.MultiDiGraph}[(bool(directed), bool(multigraph))]
    labels = np.asarray(record.labels, np.float32).tolist()
    names = list(label_names) if label_names is not None else [str(k) for k in range(len(labels))]
    graph = cls(record_id=record.record_id,
                labels={n: (None if np.isnan(v) else v) for n, v in zip(names, labels)},
                report=record.report)
    p = record.num_patches
    scores = np.asarray(record.patch_scores, np.float32).tolist()
    positions = None if record.patch_positions is None else [tuple(r) for r in np.asarray(record.patch_positions).tolist()]
    for i in range(p):
        attrs = {"modality": "patch", "index": i, "score": scores[i]}
        if positions is not None:
            attrs["position"] = positions[i]
        graph.add_node(i, **attrs)
    types = np.asarray(record.entity_types).tolist()
    assertions = np.asarray(record.entity_assertions).tolist()
    for k in range(record.num_entities):
        attrs = {"modality": "entity", "index": k, "type": types[k], "assertion": assertions[k],
                 "assertion_name": _ASSERTION_NAMES.get(assertions[k])}
        if record.entity_text is not None:
            attrs["text"] = record.entity_text[k]
        if entity_types is not None:
            attrs["type_name"] = entity_types[types[k]] if 0 <= types[k] < len(entity_types) else None
        graph.add_node(p + k, **attrs)
    for a, b in np.asarray(record.patch_edges).reshape(-1, 2).tolist():
        graph.add_edge(a, b, kind="adjacency")
    rel_types = np.asarray(record.relation_types).tolist()
    for (a, b), t in zip(np.asarray(record.relations).reshape(-1, 2).tolist(), rel_types):
        attrs = {"kind": "relation", "relation_type": t}
        if relation_types is not None:
            attrs["relation_name"] = relation_types[t] if 0 <= t < len(relation_types) else None
        graph.add_edge(p + a, p + b, **attrs)
    if record.bridge is not None:
        graph.add_edge(int(record.bridge[0]), p + int(record.bridge[1]), kind="bridge")
    return graph
