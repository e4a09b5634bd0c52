"""``convert_pickle``: a legacy ``torch.save`` file of PyG graphs -> a verified collection file.

One streaming pass reads each graph's tensors from the archive on demand, recovers the
patch/entity split (:mod:`.layout_recovery`), and appends a :class:`~neural_format.format.record.Record`
to a :class:`~neural_format.files.writer.CollectionWriter`. A second streaming pass re-reads every
record from the written file and compares it with the source tensors; only then is the file moved
onto its final name. Neither pass holds more than one writer batch of records.
"""
from __future__ import annotations

import datetime as dt
import os
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence, Union

import numpy as np

from ..errors import IntegrityError, NeuralFormatError, SchemaError
from ..format.hashing import file_sha256
from ..format.metadata import (AdjacencyRule, CollectionMeta, ConversionInfo, FeatureDtype, FusionRule, Provenance, ScoreAggregation,
                               SoftwareRef, SpatialAxes)
from ..internals.progress import Progress
from ..format.record import Record
from ..files.writer import CollectionWriter
from . import fusion_check
from .file_evidence import FileEvidence, label_list, num_nodes_attribute, survey
from .layout_recovery import Split, recover_split
from .restricted_unpickler import LazyTensor
from .source_graphs import ArrayTensor, SourceGraph, SourceGraphs, open_source

PatchNodes = Union[None, int, str, Sequence[Optional[int]], Callable[[int, SourceGraph], Optional[int]]]
FLOAT_SOURCES = ("float16", "float32", "float64", "bfloat16")
# fields the legacy layout does not hold; written as "absent" (see docs/convert.md)
NOT_IN_SOURCE = ("patch_scores (stored as 0)", "patch_positions", "geometry", "tiles", "entity_text",
                 "entity_types (-1)", "entity_assertions (-1)", "relation_types (-1)", "report", "group_key")
KNOWN_ATTRIBUTES = ("x", "edge_index", "y")
# read as evidence (and `label` as entity text), not dropped silently
EVIDENCE_ATTRIBUTES = ("label", "num_nodes")
# graphs converted and written per writer batch (convert_pickle, convert_graphs)
CONVERT_BATCH_RECORDS = 512
MAX_FEATURE_DIM = 1 << 16   # the widest feature a collection declares (metadata); wider x: NF-X003 before any read


def tolerance(source_dtype: str, target_dtype: str) -> tuple[float, float]:
    """(relative, absolute) bound on |stored - source| for a cast by round-to-nearest.

    Exactly 0 when the target holds every source value (float32 -> float32, float16/bfloat16 ->
    float32). Otherwise half a unit in the last place of the target: relative ``eps/2`` for normal
    numbers and half the smallest subnormal as the absolute floor.
    """
    exact = {("float32", "float32"), ("float16", "float32"), ("bfloat16", "float32"), ("float16", "float16")}
    if (source_dtype, target_dtype) in exact:
        return 0.0, 0.0
    info = np.finfo(target_dtype)
    return float(info.eps) / 2, float(info.smallest_subnormal) / 2


@dataclass
class SkippedRecord:
    index: int
    code: str
    reason: str


@dataclass
class ConversionReport:
    """What :func:`convert_pickle` did; ``str(report)`` is the table the CLI prints."""
    source: str
    target: str
    source_format: str
    graphs: int = 0
    converted: int = 0
    skipped: list = field(default_factory=list)
    rules: Counter = field(default_factory=Counter)
    reversed_bridges: int = 0
    unrecoverable: list = field(default_factory=list)
    dropped_attributes: list = field(default_factory=list)
    source_dtype: str = ""
    dtype: str = "float32"
    tolerance: tuple = (0.0, 0.0)
    max_abs_error: float = 0.0
    verified: bool = False
    seconds: float = 0.0
    bridges_checked: int = 0          # fused records whose bridge was compared with the reference rule
    bridges_off_betweenness: list = field(default_factory=list)  # graph indices where it differs
    corroborated: Counter = field(default_factory=Counter)   # evidence that applied and agreed, per graph
    entity_row: str = "not established"                      # where the file-wide entity row came from
    edge_convention: str = ""
    entity_text_records: int = 0     # graphs whose `label` became their entity text
    entity_text_unknown: int = 0     # graphs with entities and no `label`: text marked unknown
    fusion: str = "unknown"
    notes: list = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "source": self.source, "target": self.target, "source_format": self.source_format,
            "graphs": self.graphs, "converted": self.converted,
            "skipped": [vars(s) for s in self.skipped], "rules": dict(self.rules),
            "reversed_bridges": self.reversed_bridges, "unrecoverable": self.unrecoverable,
            "dropped_attributes": self.dropped_attributes, "source_dtype": self.source_dtype,
            "dtype": self.dtype, "tolerance": {"relative": self.tolerance[0], "absolute": self.tolerance[1]},
            "max_abs_error": self.max_abs_error, "verified": self.verified, "seconds": round(self.seconds, 3),
            "bridges_checked": self.bridges_checked, "bridges_off_betweenness": self.bridges_off_betweenness,
            "corroborated": dict(self.corroborated), "entity_row": self.entity_row,
            "edge_convention": self.edge_convention, "entity_text_records": self.entity_text_records,
            "entity_text_unknown": self.entity_text_unknown,
            "fusion": self.fusion, "notes": self.notes,
        }

    def __str__(self) -> str:
        lines = [f"converted {self.source} ({self.source_format}) -> {self.target}",
                 f"  graphs in source      {self.graphs:>10,}",
                 f"  records converted     {self.converted:>10,}",
                 f"  records skipped       {len(self.skipped):>10,}"]
        for s in self.skipped[:20]:
            lines.append(f"    graph {s.index}: [{s.code}] {s.reason}")
        if len(self.skipped) > 20:
            lines.append(f"    ... {len(self.skipped) - 20} more (see --json)")
        lines.append("  split decided by      " + ", ".join(f"{k}: {v:,}" for k, v in sorted(self.rules.items())))
        if self.corroborated:
            lines.append("  evidence that agreed  " + ", ".join(f"{k}: {v:,}" for k, v in sorted(self.corroborated.items())))
        lines.append(f"  entity row            {self.entity_row}")
        if self.edge_convention:
            lines.append(f"  edge pairs            {self.edge_convention}")
        if self.reversed_bridges:
            lines.append(f"  fusion edges stored entity->patch: {self.reversed_bridges:,} (to_pyg emits patch->entity)")
        if self.bridges_checked:
            off = self.bridges_off_betweenness
            lines.append(f"  fusion edge vs betweenness: {self.bridges_checked - len(off):,} of {self.bridges_checked:,} "
                         "join the highest-betweenness patch and entity (first maximum in node order)"
                         + (f"; not: graphs {', '.join(map(str, off[:10]))}{' ...' if len(off) > 10 else ''}"
                            if off else ""))
        lines.append(f"  fusion rule           {self.fusion}")
        if self.entity_text_records:
            lines.append(f"  entity text           from `label` of {self.entity_text_records:,} graph(s)"
                         + (f", unknown for {self.entity_text_unknown:,}" if self.entity_text_unknown else ""))
        for note in self.notes:
            lines.append(f"  note                  {note}")
        rel, ab = self.tolerance
        bound = "exact" if rel == 0 and ab == 0 else f"|stored - source| <= max({rel:g} * |source|, {ab:g})"
        lines.append(f"  features              {self.source_dtype} -> {self.dtype}, {bound}, "
                     f"max abs error {self.max_abs_error:g}")
        lines.append("  not recoverable       " + ", ".join(self.unrecoverable))
        if self.dropped_attributes:
            lines.append("  dropped attributes    " + ", ".join(self.dropped_attributes))
        lines.append(f"  verified              {'yes, every record re-read and compared' if self.verified else 'NO'}")
        lines.append(f"  time                  {self.seconds:.1f} s")
        return "\n".join(lines)


def _declared(patch_nodes: PatchNodes, graph: SourceGraph, count: int) -> Optional[int]:
    if patch_nodes is None:
        return None
    if isinstance(patch_nodes, (int, np.integer)) and not isinstance(patch_nodes, bool):
        return int(patch_nodes)
    if isinstance(patch_nodes, str):
        value = graph.value(patch_nodes)
        if value is None:
            return None
        if value.size != 1 or value.dtype.kind not in "iu":
            raise SchemaError("NF-X001", f"attribute {patch_nodes!r} is not one integer", location=f"graph {graph.index}/{patch_nodes}",
                              expected="an integer patch count", found=f"{value.dtype}{list(value.shape)}")
        return int(value.reshape(-1)[0])
    if callable(patch_nodes):
        counted = patch_nodes(graph.index, graph)
        return None if counted is None else int(counted)
    if isinstance(patch_nodes, bool):
        raise TypeError("patch_nodes is a count, a sequence of counts, an attribute name or a callable, not a bool")
    if len(patch_nodes) != count:
        raise ValueError(f"patch_nodes has {len(patch_nodes)} entries for {count} graphs")
    listed = patch_nodes[graph.index]
    return None if listed is None else int(listed)


RULE_NAMES = {"fusion-edge": "fusion-edge (reverse-pair)", "edge-direction": "edge-direction",
              "entity-row": "entity-row", "label": "label", "edge-order": "edge-order"}


def _split_rule_text(patch_nodes: PatchNodes, unfused: Optional[str], report: "ConversionReport") -> str:
    """provenance.conversion.split_rule: which evidence decided how many graphs (<= 256 characters)."""
    if patch_nodes is None:
        declared = ""
    elif isinstance(patch_nodes, str):
        declared = f"patch count from attribute {patch_nodes!r} where present; "
    elif isinstance(patch_nodes, (int, np.integer)):
        declared = f"patch count declared as {int(patch_nodes)}; "
    else:
        declared = "patch count declared per graph where given; "
    decided = ", ".join(f"{RULE_NAMES.get(k, k)} {v}" for k, v in sorted(report.rules.items()))
    text = declared + f"decided by: {decided or 'none'}"
    if report.corroborated:
        text += "; agreed: " + ", ".join(f"{RULE_NAMES.get(k, k)} {v}" for k, v in sorted(report.corroborated.items()))
    if report.entity_row != "not established":
        text += "; entity row: " + report.entity_row
    if unfused:
        text += f"; no fusion edge: declared {unfused}"
    return text if len(text) <= 256 else text[:253] + "..."


@dataclass
class _Plan:
    """What the decision pass settled for one graph, before anything is written."""
    index: int
    split: Split
    source_dtype: str
    entity_text: Optional[list] = None   # the `label` strings of a KG-only graph, in order


class GraphConverter:
    """Turns one source graph into a record; holds what is shared across graphs."""

    def __init__(self, graphs: SourceGraphs, *, patch_nodes, unfused, label_names, dtype,
                 evidence: Optional[FileEvidence] = None):
        self.graphs = graphs
        self.patch_nodes = patch_nodes
        self.unfused = unfused
        self.label_names = list(label_names)
        self.dtype = np.dtype(dtype)
        self.width: Optional[int] = None
        self.evidence = evidence

    def scan_width(self) -> int:
        """Feature width from the pickle's declared shapes (no storage is read)."""
        for i in range(len(self.graphs)):
            shape = self.graphs[i].shape("x")
            if shape is not None and len(shape) == 2:
                width = int(shape[1])
                if not 1 <= width <= MAX_FEATURE_DIM:
                    raise SchemaError("NF-X003", "node feature width outside what a collection holds",
                                      location=f"graph {i}/x", expected=f"1..{MAX_FEATURE_DIM}", found=width)
                self.width = width
                return self.width
        raise SchemaError("NF-X003", "no graph has a 2-D node feature matrix x", location="data.pkl",
                          expected="x of shape (N, D)", found="none")

    def _features(self, graph: SourceGraph):
        i = graph.index
        x = graph.attributes.get("x")
        if x is None or not isinstance(x, (LazyTensor, ArrayTensor)) or len(x.shape) != 2:
            raise SchemaError("NF-X003", "graph has no (N, D) node feature matrix x", location=f"graph {i}/x",
                              expected="(N, D) tensor",
                              found="none" if x is None else (list(x.shape) if isinstance(x, (LazyTensor, ArrayTensor))
                                                              else type(x).__name__))
        if x.shape[1] != self.width:
            raise SchemaError("NF-X003", "node feature width differs from the first graph's", location=f"graph {i}/x",
                              expected=self.width, found=x.shape[1])
        if x.source_dtype not in FLOAT_SOURCES:
            raise SchemaError("NF-X003", "node features are not floating point", location=f"graph {i}/x",
                              expected=" or ".join(FLOAT_SOURCES), found=x.source_dtype)
        n = int(x.shape[0])
        if n >= 2 ** 31:
            raise SchemaError("NF-X002", "too many nodes for int32 indices", location=f"graph {i}/x", found=n)
        return x, n

    def plan(self, graph: SourceGraph) -> _Plan:
        """Check one graph and decide its split from all the evidence (reads its tensors once)."""
        i = graph.index
        x, n = self._features(graph)
        edge_index = graph.edge_index()
        if edge_index is None:
            edge_index = np.zeros((2, 0), np.int64)
        features = x.numpy()
        evidence = self.evidence
        labels = label_list(graph, n)
        split = recover_split(
            edge_index, n, index=i, declared=_declared(self.patch_nodes, graph, len(self.graphs)),
            unfused=self.unfused, pairs_once=None if evidence is None else evidence.pairs_once,
            entity_rows=None if evidence is None else evidence.entity_rows(features),
            label_count=None if labels is None else len(labels), num_nodes_attr=num_nodes_attribute(graph))
        self._cast(features, i)
        self.labels(graph)
        text = labels if labels is not None and split.patches == 0 and len(labels) == n and n else None
        return _Plan(i, split, x.source_dtype, text)

    def _cast(self, features: np.ndarray, i: int) -> np.ndarray:
        with np.errstate(over="ignore"):  # overflow is reported below as NF-X006
            cast = features.astype(self.dtype)
        overflow = np.isfinite(features) & ~np.isfinite(cast)
        if overflow.any():
            raise SchemaError("NF-X006", f"node features overflow {self.dtype}", location=f"graph {i}/x",
                              expected=f"|x| <= {float(np.finfo(self.dtype).max):g}",
                              found=float(np.abs(features[overflow]).max()))
        return cast

    def build(self, graph: SourceGraph, plan: _Plan, with_text: bool = False) -> Record:
        """The record of a planned graph (its tensors are read again: nothing was kept)."""
        i, split = graph.index, plan.split
        x, n = self._features(graph)
        cast = self._cast(x.numpy(), i)
        edge_index = graph.edge_index()
        ei = np.zeros((2, 0), np.int64) if edge_index is None else np.asarray(edge_index, np.int64)
        p, k, r = split.patches, split.patch_edges, split.kg_edges
        text = None
        if with_text:  # a graph with entities but no `label`: its text is unknown (None), not ""
            text = list(plan.entity_text) if plan.entity_text is not None else (None if n > p else [])
        return Record(
            record_id=f"graph-{i:06d}",
            patch_features=cast[:p], patch_scores=np.zeros(p, np.float32),
            patch_edges=ei[:, :k].T.astype(np.int32), entity_text=text,
            entity_types=np.full(n - p, -1, np.int16), entity_assertions=np.full(n - p, -1, np.int8),
            entity_features=cast[p:],
            relations=(ei[:, k:k + r].T - p).astype(np.int32), relation_types=np.full(r, -1, np.int16),
            bridge=split.bridge, labels=self.labels(graph))

    def record(self, graph: SourceGraph) -> tuple[Record, Split, str]:
        plan = self.plan(graph)
        return self.build(graph, plan), plan.split, plan.source_dtype

    def labels(self, graph: SourceGraph) -> np.ndarray:
        y = graph.y()
        count = len(self.label_names)
        if y is None:
            return np.full(count, np.nan, np.float32)
        flat = np.asarray(y).reshape(-1)
        if flat.size != count:
            raise SchemaError("NF-X004", "y does not hold one value per label name", location=f"graph {graph.index}/y",
                              expected=f"{count} value(s) for {self.label_names}", found=f"shape {list(np.shape(y))}")
        if flat.dtype.kind not in "iubf":
            raise SchemaError("NF-X004", "y is not numeric", location=f"graph {graph.index}/y",
                              expected="a tensor or a number", found=str(flat.dtype))
        if flat.dtype.kind in "iub" and np.any(np.abs(flat.astype(np.int64)) > 2 ** 24):
            raise SchemaError("NF-X004", "integer label too large for float32", location=f"graph {graph.index}/y",
                              expected="|y| <= 2^24", found=int(np.abs(flat.astype(np.int64)).max()))
        return flat.astype(np.float32)


def _compare(report: ConversionReport, graph: SourceGraph, block, k: int, rel: float, ab: float) -> None:
    """Re-read record ``k`` of ``block`` and compare it with the source graph (NF-X005 on mismatch)."""
    where = f"graph {graph.index}"
    pf = block.rows("/patches/features", k)
    ef = block.rows("/entities/features", k)
    source = graph.x()
    if source is None:  # a converted graph has x; checked so the comparison cannot pass vacuously
        raise IntegrityError("NF-X005", "the source graph has no features to compare", location=where)
    stored = np.concatenate([pf, ef]).astype(np.float64)
    if stored.shape != source.shape:
        raise IntegrityError("NF-X005", "re-read features differ in shape", location=where,
                             expected=source.shape, found=stored.shape)
    src = source.astype(np.float64)
    error = np.abs(stored - src)
    both_nan = np.isnan(stored) & np.isnan(src)
    error[both_nan] = 0.0
    if error.size:
        bound = np.maximum(rel * np.abs(src), ab)
        bad = ~(error <= bound) & ~both_nan
        if bad.any():
            raise IntegrityError("NF-X005", "re-read features differ from the source beyond the tolerance",
                                 location=where, expected=f"<= max({rel:g}*|x|, {ab:g})",
                                 found=float(np.nanmax(np.where(bad, error, 0))))
        finite = error[np.isfinite(error)]
        if finite.size:
            report.max_abs_error = max(report.max_abs_error, float(finite.max()))
    p = pf.shape[0]
    pe = block.rows("/patch_edges/index", k).T.astype(np.int64)
    rel_ = block.rows("/relations/index", k).T.astype(np.int64) + p
    bridge = block.rows("/records/bridge", k)
    parts = [pe, rel_]
    ei = graph.edge_index()
    ei = np.zeros((2, 0), np.int64) if ei is None else ei.astype(np.int64)
    if bridge[0] >= 0:
        col = np.array([[bridge[0]], [bridge[1] + p]], np.int64)
        if ei.shape[1] and ei[0, -1] >= p:  # stored entity -> patch in the source
            col = col[::-1]
        parts.append(col)
    rebuilt = np.concatenate(parts, axis=1)
    if not np.array_equal(rebuilt, ei):
        raise IntegrityError("NF-X005", "re-read edges differ from the source edge_index", location=where,
                             expected=f"{ei.shape[1]} columns", found=f"{rebuilt.shape[1]} columns")
    labels = block.rows("/records/labels", k)
    y = graph.y()
    expected = np.full(labels.shape, np.nan, np.float32) if y is None else np.asarray(y).reshape(-1).astype(np.float32)
    if not np.array_equal(labels, expected, equal_nan=True):
        raise IntegrityError("NF-X005", "re-read labels differ from the source y", location=where,
                             expected=expected.tolist(), found=labels.tolist())


def convert_pickle(source, target, *, patch_nodes: PatchNodes = None, unfused: Optional[str] = None,
                   label_names: Sequence[str] = ("label",), dtype: FeatureDtype = "float32",
                   adjacency: AdjacencyRule = "4-neighbour", spatial_axes: SpatialAxes = 2, skip_invalid: bool = False,
                   overwrite: bool = False, compression: Optional[str] = None, verify: bool = True,
                   progress: Optional[bool] = None, batch_records: int = CONVERT_BATCH_RECORDS,
                   check_bridge: Optional[bool] = None) -> ConversionReport:
    """Convert a ``torch.save`` file of PyG graphs to a collection file, safely and verifiably.

    ``source`` is a list of ``Data`` saved with ``torch.save`` or an ``InMemoryDataset`` file. It
    is opened with a restricted unpickler that never executes code from the file
    (:mod:`neural_format.convert.restricted_unpickler`). For each graph the split between patch
    rows and entity rows is decided from all the evidence the file holds (the file-wide entity row,
    edge direction, the last-column fusion edge, ``label``/``num_nodes``: see
    :mod:`neural_format.convert.layout_recovery` and docs/convert.md). Files written by the NEURAL
    reference need no option; for other layouts:

    * ``patch_nodes``: the patch count where the file cannot tell: one ``int`` for all graphs, a
      sequence (``None`` = infer), the name of a ``Data`` attribute holding it, or a callable
      ``f(index, graph) -> int | None``;
    * ``unfused``: ``"visual"`` or ``"kg"``: what a graph without fusion edge is.

    ``label_names`` name the values of ``y`` (one per name). ``dtype`` is the stored feature
    dtype; ``float16`` is checked against the tolerance of :func:`tolerance`. Invalid graphs raise
    their coded error, or are skipped and reported with ``skip_invalid=True``. After writing,
    every record is re-read and compared with the source (``verify=False`` skips this, not advised);
    the file appears under ``target`` only when that passed. ``check_bridge`` (default: when networkx
    is installed; ``True`` requires it) recomputes each fused graph's bridge by the reference rule
    (:mod:`neural_format.convert.fusion_check`); when every one matches, the collection records the
    fusion rule as betweenness, verified, else ``unknown``, and the report lists the graphs that
    differ. Returns a :class:`ConversionReport`.
    """
    source, target = Path(source), Path(target)
    if target.exists() and not overwrite:
        raise FileExistsError(f"{target} exists; pass overwrite=True to replace it")
    graphs = open_source(source)
    try:
        return convert_graphs(
            graphs, target, source_name=source.name, source_sha256=file_sha256(source), report_source=str(source),
            patch_nodes=patch_nodes, unfused=unfused, label_names=label_names, dtype=dtype, adjacency=adjacency,
            spatial_axes=spatial_axes, skip_invalid=skip_invalid, overwrite=overwrite, compression=compression,
            verify=verify, progress=progress, batch_records=batch_records, check_bridge=check_bridge)
    finally:
        graphs.close()


def convert_graphs(graphs: SourceGraphs, target, *, source_name: str, source_sha256: Optional[str] = None,
                   report_source: Optional[str] = None, patch_nodes: PatchNodes = None,
                   unfused: Optional[str] = None, label_names: Sequence[str] = ("label",),
                   dtype: FeatureDtype = "float32", adjacency: AdjacencyRule = "4-neighbour", spatial_axes: SpatialAxes = 2,
                   skip_invalid: bool = False, overwrite: bool = False, compression: Optional[str] = None,
                   verify: bool = True, progress: Optional[bool] = None,
                   batch_records: int = CONVERT_BATCH_RECORDS, check_bridge: Optional[bool] = None) -> ConversionReport:
    """The conversion passes behind :func:`convert_pickle` and :func:`~neural_format.adapters.pyg.write_pyg`.

    1. survey: file-wide evidence (:mod:`.file_evidence`); 2. decide: every graph's split, its
    checks, and the fusion-edge check; 3. write; 4. verify. Metadata is complete before step 3.
    """
    from ..format.metadata import sdk_ref
    from ..version import SDK_VERSION as __version__
    started = time.monotonic()
    target = Path(target)
    if dtype not in ("float16", "float32"):
        raise ValueError(f"dtype must be 'float16' or 'float32', not {dtype!r}")
    if target.exists() and not overwrite:
        raise FileExistsError(f"{target} exists; pass overwrite=True to replace it")
    if check_bridge is None:
        check_bridge = fusion_check.available()
    elif check_bridge and not fusion_check.available():
        raise ImportError("check_bridge=True needs networkx (pip install networkx)")
    report = ConversionReport(report_source or source_name, str(target), graphs.source_format,
                              graphs=len(graphs), dtype=dtype)
    converter = GraphConverter(graphs, patch_nodes=patch_nodes, unfused=unfused, label_names=label_names, dtype=dtype)
    width = converter.scan_width() if len(graphs) else 1   # from declared shapes: nothing read yet
    declared_all = isinstance(patch_nodes, (int, np.integer)) and not isinstance(patch_nodes, bool)
    evidence = survey(graphs, width) if len(graphs) and not declared_all else FileEvidence()
    converter.evidence = evidence
    report.entity_row = evidence.entity_row_source
    report.edge_convention = "pairs stored once (reference)" if evidence.pairs_once else "pairs stored both ways"

    plans: list[_Plan] = []
    source_dtypes: Counter = Counter()
    with Progress(len(graphs), "decide", enabled=progress) as bar:
        for i in range(len(graphs)):
            try:
                plan = converter.plan(graphs[i])
            except NeuralFormatError as exc:
                if not skip_invalid:
                    raise
                report.skipped.append(SkippedRecord(i, exc.code, exc.message))
                bar.update(1)
                continue
            split = plan.split
            if check_bridge and split.fused:
                report.bridges_checked += 1
                if split.bridge_reversed or not _bridge_is_reference(graphs[i], split):
                    report.bridges_off_betweenness.append(i)
            plans.append(plan)
            source_dtypes[plan.source_dtype] += 1
            report.rules[split.rule] += 1
            for name in split.corroborated:
                report.corroborated[name] += 1
            report.reversed_bridges += int(split.bridge_reversed)
            bar.update(1)

    with_entities = [p for p in plans if p.split.patches < _rows(graphs[p.index])]
    texts = sum(p.entity_text is not None for p in plans)
    has_text = bool(texts)
    # graphs with entities and no `label` (fused graphs: the reference's fuse_graphs drops it) are
    # marked unknown, per record (format 1.1.0 entity_text_partial), while the others keep theirs
    unknown_text = sum(p.entity_text is None for p in with_entities) if has_text else 0
    report.entity_text_records = texts
    report.entity_text_unknown = unknown_text
    if unknown_text:
        report.notes.append(f"entity text unknown for {unknown_text} graph(s) with entities and no `label`: "
                            "marked unknown per record (/records/entity_text_known 0), never stored as empty strings")
    fusion_verified = bool(report.bridges_checked) and not report.bridges_off_betweenness
    report.fusion = ("betweenness-bridge, verified on every fused graph" if fusion_verified else
                     "unknown" + (f" ({len(report.bridges_off_betweenness)} of {report.bridges_checked} fused graphs "
                                  "are not bridged by the reference rule)" if report.bridges_off_betweenness else
                                  "" if report.bridges_checked else " (not checked)"))
    extra = sorted(graphs.attribute_names() - set(KNOWN_ATTRIBUTES) - set(EVIDENCE_ATTRIBUTES) -
                   ({patch_nodes} if isinstance(patch_nodes, str) else set()))
    report.dropped_attributes = extra
    report.unrecoverable = ([u for u in NOT_IN_SOURCE if not (has_text and u == "entity_text")]
                            + [f"attribute {a} (dropped)" for a in extra])
    if unknown_text:
        report.unrecoverable.append(f"entity_text of {unknown_text} graph(s) with entities and no `label` "
                                    "(marked unknown per record)")
    meta = CollectionMeta(
        spatial_axes=spatial_axes, patch_feature_dim=width, patch_feature_dtype=dtype,
        entity_feature_dim=width, entity_feature_dtype=dtype, has_positions=False, has_entity_text=has_text,
        entity_text_partial=bool(unknown_text),
        adjacency=adjacency, label_names=list(label_names),
        provenance=Provenance(
            builder=SoftwareRef(name="neural_format.convert", version=__version__), sdk=sdk_ref(),
            created=dt.datetime.now(dt.timezone.utc),
            # the reference rule (first maximum in node order) is lowest-index among exact ties
            fusion=FusionRule(kind="betweenness-bridge", tie_break="lowest-index") if fusion_verified
            else FusionRule(kind="unknown"),
            # scores must be finite (NF-R013): the legacy layout has none, so they are 0 and say so
            score_aggregation=ScoreAggregation(source="converted"),
            conversion=ConversionInfo(
                source_format=graphs.source_format, source_name=(source_name or "unnamed")[:256],
                source_sha256=source_sha256, split_rule=_split_rule_text(patch_nodes, unfused, report),
                unrecoverable=[u[:256] for u in report.unrecoverable[:64]])))
    staging = target.with_name(f".{target.name}.{uuid.uuid4().hex[:12]}.converting")
    kept = [p.index for p in plans]
    try:
        with CollectionWriter(staging, meta, compression=compression, batch_records=batch_records) as writer, \
                Progress(len(plans), "convert", enabled=progress) as bar:
            for plan in plans:
                writer.append(converter.build(graphs[plan.index], plan, with_text=has_text))
                bar.update(1)
        report.converted = len(kept)
        report.source_dtype = "/".join(sorted(source_dtypes)) or "none"
        report.tolerance = max((tolerance(s, dtype) for s in source_dtypes), default=(0.0, 0.0))
        if verify:
            _verify(staging, graphs, plans if has_text else None, kept, report, progress)
        os.replace(staging, target)
    except BaseException:
        try:
            staging.unlink()
        except FileNotFoundError:
            pass
        raise
    report.seconds = time.monotonic() - started
    return report


def _rows(graph: SourceGraph) -> int:
    x = graph.attributes.get("x")
    return int(x.shape[0]) if isinstance(x, (LazyTensor, ArrayTensor)) and len(x.shape) == 2 else 0


def _bridge_is_reference(graph: SourceGraph, split: Split) -> bool:
    """Whether the graph's fusion edge is where the reference rule puts it (:mod:`.fusion_check`)."""
    ei = np.asarray(graph.edge_index(), np.int64)
    p, k, r = split.patches, split.patch_edges, split.kg_edges
    if split.bridge is None:  # a fused split names its bridge; without one there is nothing to match
        return False
    expected = fusion_check.reference_bridge(p, ei[:, :k].T, _rows(graph) - p, ei[:, k:k + r].T - p)
    return tuple(expected) == tuple(split.bridge)


def _verify(path: Path, graphs: SourceGraphs, plans: Optional[list], kept: list[int], report: ConversionReport,
            progress) -> None:
    from ..files.blocks import read_block
    from ..files.reader import CollectionReader
    rel, ab = report.tolerance
    paths = ("/patches/features", "/entities/features", "/patch_edges/index", "/relations/index",
             "/records/bridge", "/records/labels")
    with CollectionReader(path) as reader, Progress(len(kept), "verify", enabled=progress) as bar:
        if len(reader) != len(kept):
            raise IntegrityError("NF-X005", "record count differs after writing", location=str(path),
                                 expected=len(kept), found=len(reader))
        step = 512
        for start in range(0, len(kept), step):
            stop = min(start + step, len(kept))
            block = read_block(reader, start, stop, paths)
            known = (reader.cols["/records/entity_text_known"][start:stop]
                     if "/records/entity_text_known" in reader.cols else None)
            for k in range(stop - start):
                _compare(report, graphs[kept[start + k]], block, k, rel, ab)
                if plans is not None:  # entity text: the `label` where a graph has one, unknown or [] elsewhere
                    entities = reader.offsets["entities"]
                    a, b = int(entities[start + k]), int(entities[start + k + 1])
                    stored = None if known is not None and not known[k] else reader.strings["/entities/text"].range(a, b)
                    expected = plans[start + k].entity_text
                    if expected is None:
                        expected = None if known is not None and b > a else []
                    if (None if stored is None else list(stored)) != (None if expected is None else list(expected)):
                        raise IntegrityError("NF-X005", "re-read entity text differs from the source `label`",
                                             location=f"graph {kept[start + k]}",
                                             expected="unknown" if expected is None else len(expected),
                                             found="unknown" if stored is None else len(stored))
            bar.update(stop - start)
    report.verified = True
