"""``convert_pickle``: a legacy ``torch.save`` file of PyG graphs -> a verified collection file.

One streaming pass reads each graph's tensors from the archive on demand, recovers the
patch/entity split (:mod:`.layout_recovery`), and appends a :class:`~neural_format.record.Record`
to a :class:`~neural_format.writer.CollectionWriter`. A second streaming pass re-reads every
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
from ..hashing import file_sha256
from ..metadata import CollectionMeta, ConversionInfo, FusionRule, Provenance, ScoreAggregation, SoftwareRef
from ..progress import Progress
from ..record import Record
from ..writer import CollectionWriter
from .layout_recovery import Split, recover_split
from .source_graphs import SourceGraph, SourceGraphs, open_source

PatchNodes = Union[None, int, str, Sequence[Optional[int]], Callable[[int, SourceGraph], Optional[int]]]
FLOAT_SOURCES = ("float16", "float32", "float64", "bfloat16")
# fields the legacy layout does not hold; written as "absent" (see docs/convert.md)
NOT_IN_SOURCE = ("patch_scores (stored as 0)", "patch_positions", "geometry", "tiles", "entity_text",
                 "entity_types (-1)", "entity_assertions (-1)", "relation_types (-1)", "report", "group_key")
KNOWN_ATTRIBUTES = ("x", "edge_index", "y")


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
    bridges_checked: int = 0          # fused records whose bridge was compared with betweenness
    bridges_off_betweenness: list = field(default_factory=list)  # graph indices where it differs

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
        if self.reversed_bridges:
            lines.append(f"  fusion edges stored entity->patch: {self.reversed_bridges:,} (to_pyg emits patch->entity)")
        if self.bridges_checked:
            off = self.bridges_off_betweenness
            lines.append(f"  fusion edge vs betweenness: {self.bridges_checked - len(off):,} of {self.bridges_checked:,} "
                         "join the highest-betweenness patch and entity"
                         + (f"; not: graphs {', '.join(map(str, off[:10]))}{' ...' if len(off) > 10 else ''}"
                            if off else ""))
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
        value = patch_nodes(graph.index, graph)
        return None if value is None else int(value)
    if len(patch_nodes) != count:
        raise ValueError(f"patch_nodes has {len(patch_nodes)} entries for {count} graphs")
    value = patch_nodes[graph.index]
    return None if value is None else int(value)


def _split_rule_text(patch_nodes: PatchNodes, unfused: Optional[str]) -> str:
    if patch_nodes is None:
        declared = ""
    elif isinstance(patch_nodes, str):
        declared = f"patch count from attribute {patch_nodes!r} where present; "
    elif isinstance(patch_nodes, (int, np.integer)):
        declared = f"patch count declared as {int(patch_nodes)} for every graph; "
    else:
        declared = "patch count declared per graph by the user where given; "
    tail = f"graphs without fusion edge declared {unfused}" if unfused else "graphs without fusion edge refused"
    return (declared + "else reverse-pair rule: the last edge column, the only one without its reverse, "
            "is the fusion edge and the split is where it crosses; " + tail)[:256]


class _Converter:
    """Turns one source graph into a record; holds what is shared across graphs."""

    def __init__(self, graphs: SourceGraphs, *, patch_nodes, unfused, label_names, dtype):
        self.graphs = graphs
        self.patch_nodes = patch_nodes
        self.unfused = unfused
        self.label_names = list(label_names)
        self.dtype = np.dtype(dtype)
        self.width: Optional[int] = None

    def scan_width(self) -> int:
        """Feature width from the pickle's declared shapes (no storage is read)."""
        for i in range(len(self.graphs)):
            shape = self.graphs[i].shape("x")
            if shape is not None and len(shape) == 2:
                self.width = int(shape[1])
                return self.width
        raise SchemaError("NF-X003", "no graph has a 2-D node feature matrix x", location="data.pkl",
                          expected="x of shape (N, D)", found="none")

    def record(self, graph: SourceGraph) -> tuple[Record, Split, str]:
        i = graph.index
        x = graph.attributes.get("x")
        if x is None or not hasattr(x, "shape") or len(x.shape) != 2:
            raise SchemaError("NF-X003", "graph has no (N, D) node feature matrix x", location=f"graph {i}/x",
                              expected="(N, D)", found=None if x is None else getattr(x, "shape", type(x).__name__))
        if x.shape[1] != self.width:
            raise SchemaError("NF-X003", "node feature width differs from the first graph's", location=f"graph {i}/x",
                              expected=self.width, found=x.shape[1])
        if x.source_dtype not in FLOAT_SOURCES:
            raise SchemaError("NF-X003", "node features are not floating point", location=f"graph {i}/x",
                              expected=" or ".join(FLOAT_SOURCES), found=x.source_dtype)
        n = int(x.shape[0])
        if n >= 2 ** 31:
            raise SchemaError("NF-X002", "too many nodes for int32 indices", location=f"graph {i}/x", found=n)
        edge_index = graph.edge_index()
        if edge_index is None:
            edge_index = np.zeros((2, 0), np.int64)
        split = recover_split(edge_index, n, index=i, declared=_declared(self.patch_nodes, graph, len(self.graphs)),
                              unfused=self.unfused)
        features = x.numpy()
        with np.errstate(over="ignore"):  # overflow is reported below as NF-X006
            cast = features.astype(self.dtype)
        overflow = np.isfinite(features) & ~np.isfinite(cast)
        if overflow.any():
            raise SchemaError("NF-X006", f"node features overflow {self.dtype}", location=f"graph {i}/x",
                              expected=f"|x| <= {float(np.finfo(self.dtype).max):g}",
                              found=float(np.abs(features[overflow]).max()))
        labels = self.labels(graph)
        ei = np.asarray(edge_index, np.int64)
        p, k, r = split.patches, split.patch_edges, split.kg_edges
        record = Record(
            record_id=f"graph-{i:06d}",
            patch_features=cast[:p], patch_scores=np.zeros(p, np.float32),
            patch_edges=ei[:, :k].T.astype(np.int32),
            entity_types=np.full(n - p, -1, np.int16), entity_assertions=np.full(n - p, -1, np.int8),
            entity_features=cast[p:],
            relations=(ei[:, k:k + r].T - p).astype(np.int32), relation_types=np.full(r, -1, np.int16),
            bridge=split.bridge, labels=labels)
        return record, split, x.source_dtype

    def labels(self, graph: SourceGraph) -> np.ndarray:
        y = graph.y()
        count = len(self.label_names)
        if y is None:
            return np.full(count, np.nan, np.float32)
        flat = np.asarray(y).reshape(-1)
        if flat.size != count:
            raise SchemaError("NF-X004", "y does not hold one value per label name", location=f"graph {graph.index}/y",
                              expected=f"{count} value(s) for {self.label_names}", found=f"shape {list(np.shape(y))}")
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
                   label_names: Sequence[str] = ("label",), dtype: str = "float32",
                   adjacency: str = "4-neighbour", spatial_axes: int = 2, skip_invalid: bool = False,
                   overwrite: bool = False, compression: Optional[str] = None, verify: bool = True,
                   progress: Optional[bool] = None, batch_records: int = 512,
                   check_bridge: bool = False) -> ConversionReport:
    """Convert a ``torch.save`` file of PyG graphs to a collection file, safely and verifiably.

    ``source`` is a list of ``Data`` saved with ``torch.save`` or an ``InMemoryDataset`` file. It
    is opened with a restricted unpickler that never executes code from the file
    (:mod:`neural_format.convert.restricted_unpickler`). For each graph the split between patch
    rows and entity rows is recovered by the rule in :mod:`neural_format.convert.layout_recovery`:

    * ``patch_nodes``: the patch count where the file cannot tell: one ``int`` for all graphs, a
      sequence (``None`` = infer), the name of a ``Data`` attribute holding it, or a callable
      ``f(index, graph) -> int | None``;
    * ``unfused``: ``"visual"`` or ``"kg"``: what a graph without fusion edge is.

    ``label_names`` name the values of ``y`` (one per name). ``dtype`` is the stored feature
    dtype; ``float16`` is checked against the tolerance of :func:`tolerance`. Invalid graphs raise
    their coded error, or are skipped and reported with ``skip_invalid=True``. After writing,
    every record is re-read and compared with the source (``verify=False`` skips this, not advised);
    the file appears under ``target`` only when that passed. ``check_bridge=True`` (needs networkx)
    also recomputes each fused record's NEURAL bridge, the edge between the highest-betweenness
    patch and entity (:func:`neural_format.fusion.betweenness_bridge`), and reports the graphs whose
    recovered fusion edge is not that pair; it changes nothing in the output. Returns a
    :class:`ConversionReport`.
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
                   dtype: str = "float32", adjacency: str = "4-neighbour", spatial_axes: int = 2,
                   skip_invalid: bool = False, overwrite: bool = False, compression: Optional[str] = None,
                   verify: bool = True, progress: Optional[bool] = None,
                   batch_records: int = 512, check_bridge: bool = False) -> ConversionReport:
    """The conversion pass behind :func:`convert_pickle` and :func:`~neural_format.adapters.pyg.write_pyg`."""
    from .. import __version__, sdk_ref
    started = time.monotonic()
    target = Path(target)
    if dtype not in ("float16", "float32"):
        raise ValueError(f"dtype must be 'float16' or 'float32', not {dtype!r}")
    if target.exists() and not overwrite:
        raise FileExistsError(f"{target} exists; pass overwrite=True to replace it")
    report = ConversionReport(report_source or source_name, str(target), graphs.source_format,
                              graphs=len(graphs), dtype=dtype)
    converter = _Converter(graphs, patch_nodes=patch_nodes, unfused=unfused, label_names=label_names, dtype=dtype)
    width = converter.scan_width() if len(graphs) else 1
    extra = sorted(graphs.attribute_names() - set(KNOWN_ATTRIBUTES) -
                   ({patch_nodes} if isinstance(patch_nodes, str) else set()))
    report.dropped_attributes = extra
    report.unrecoverable = list(NOT_IN_SOURCE) + [f"attribute {a} (dropped)" for a in extra]
    meta = CollectionMeta(
        spatial_axes=spatial_axes, patch_feature_dim=width, patch_feature_dtype=dtype,
        entity_feature_dim=width, entity_feature_dtype=dtype, has_positions=False, has_entity_text=False,
        adjacency=adjacency, label_names=list(label_names),
        provenance=Provenance(
            builder=SoftwareRef(name="neural_format.convert", version=__version__), sdk=sdk_ref(),
            created=dt.datetime.now(dt.timezone.utc), fusion=FusionRule(kind="unknown"),
            # scores must be finite (NF-R013): the legacy layout has none, so they are 0 and say so
            score_aggregation=ScoreAggregation(source="converted"),
            conversion=ConversionInfo(
                source_format=graphs.source_format, source_name=(source_name or "unnamed")[:256],
                source_sha256=source_sha256, split_rule=_split_rule_text(patch_nodes, unfused),
                unrecoverable=[u[:256] for u in report.unrecoverable[:64]])))
    staging = target.with_name(f".{target.name}.{uuid.uuid4().hex[:12]}.converting")
    kept: list[int] = []
    source_dtypes: Counter = Counter()
    try:
        with CollectionWriter(staging, meta, compression=compression, batch_records=batch_records) as writer, \
                Progress(len(graphs), "convert", enabled=progress) as bar:
            for i in range(len(graphs)):
                try:
                    record, split, sdtype = converter.record(graphs[i])
                except NeuralFormatError as exc:
                    if not skip_invalid:
                        raise
                    report.skipped.append(SkippedRecord(i, exc.code, exc.message))
                    bar.update(1)
                    continue
                if check_bridge and record.bridge is not None:
                    report.bridges_checked += 1
                    if not _bridge_is_most_central(record):
                        report.bridges_off_betweenness.append(i)
                writer.append(record)
                kept.append(i)
                source_dtypes[sdtype] += 1
                report.rules[split.rule] += 1
                report.reversed_bridges += int(split.bridge_reversed)
                bar.update(1)
        report.converted = len(kept)
        report.source_dtype = "/".join(sorted(source_dtypes)) or "none"
        report.tolerance = max((tolerance(s, dtype) for s in source_dtypes), default=(0.0, 0.0))
        if verify:
            _verify(staging, graphs, kept, report, progress)
        os.replace(staging, target)
    except BaseException:
        try:
            staging.unlink()
        except FileNotFoundError:
            pass
        raise
    report.seconds = time.monotonic() - started
    return report


def _bridge_is_most_central(record: Record) -> bool:
    """Whether the record's bridge joins the highest-betweenness patch and entity, ties included.

    Ties matter: the reference pipeline's tie-break is not recorded in its pickles, so a bridge at
    any node whose centrality equals the maximum counts as agreeing.
    """
    from ..fusion import centralities, tied_for_most_central
    p, e = record.bridge
    patch = centralities(record.num_patches, np.asarray(record.patch_edges).reshape(-1, 2))
    entity = centralities(record.num_entities, np.asarray(record.relations).reshape(-1, 2))
    return bool(tied_for_most_central(patch)[int(p)] and tied_for_most_central(entity)[int(e)])


def _verify(path: Path, graphs: SourceGraphs, kept: list[int], report: ConversionReport, progress) -> None:
    from ..adapters.blocks import read_block
    from ..reader import CollectionReader
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
            for k in range(stop - start):
                _compare(report, graphs[kept[start + k]], block, k, rel, ab)
            bar.update(stop - start)
    report.verified = True
