"""The build driver: paired images and reports -> one validated collection file.

For each batch of inputs (same working size; see :mod:`neural_builders.vlm.patch_grid`):

1. **prepare**: decode the image (:func:`neural_builders.inputs.load_image`: [0, 1], MONOCHROME1
   inverted), plan its patch grid in native pixels, resize it to the working image;
2. **forward**: Swin -> projection -> T5 teacher-forced on the report (or, with no report text,
   on a report the model generates first: ``report_source = "generated"``), cross-attention
   kept (:func:`neural_builders.scoring.score_batch`): Swin features and one score per real patch;
3. **graph**: :func:`neural_format.graphs.pruning.select` keeps patches by the policy; their grid
   positions and neighbour edges come from :func:`neural_builders.visual_graph.build_visual_graph`;
   optional full-resolution tiles are cut from the native pixels;
4. **KG**: the report's clinical entities and relations (:mod:`neural_builders.kg`, offline
   rule-based by default), optionally embedded with the local MiniLM sentence model; the bridge
   is :func:`neural_format.graphs.fusion.betweenness_bridge`;
5. **write**: :class:`neural_format.files.writer.CollectionWriter` (checks, per-record SHA-256, atomic
   rename), with typed provenance: encoder and decoder with the SHA-256 of their weight files,
   score aggregation, pruning policy, KG extractor, fusion rule and the source bytes.

Every input that cannot be used is skipped with a reason (never silently) and counted in the
:class:`~neural_builders.summary.BuildSummary`.

This module is the pipeline (:func:`build_collection`). The build's other jobs have their own
modules; the names of those below it are importable from here too: the settings and the one
way to open the writer (:mod:`neural_builders.build_config`), the inputs
(:mod:`neural_builders.build_inputs`), label columns of a reports CSV
(:mod:`neural_builders.labels_csv`), the provenance (:mod:`neural_builders.provenance`), the
command-line options and the options -> config -> job path (:mod:`neural_builders.build_options`).
Above it: the command line (:mod:`neural_builders.build_cli`: ``run_from_args``, ``main`` and
``build_job``, which the sharded build shares); the overlapping of stages is :mod:`neural_builders.stages`.

``python -m neural_builders.build`` and ``neural-format build`` run it from the command line; under ``torchrun`` (``WORLD_SIZE`` > 1)
``python -m neural_builders.build`` hands over to :mod:`neural_builders.distributed_build`, which
splits the inputs by rank and writes one shard per rank (``--out`` is then a directory).
"""
from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Optional, Sequence

import numpy as np

from neural_format.format.metadata import CollectionMeta
from neural_format.internals.progress import Progress
from neural_format.graphs.pruning import describe, select
from neural_format.format.record import Geometry, Record, ReportSource

# the build's other jobs live in their own modules; their names stay importable from here
# (aliases, CHANGELOG "Architecture (issue 15)")
from .build_config import BuildConfig, open_writer
from .build_inputs import BuildInput, inputs_from_pairs
from .build_options import BuildJob, add_arguments, config_from_args, job_from_args
from .labels_csv import labels_from_csv
from .provenance import BUILDER_NAME, collection_meta, model_refs
from .summary import BuildSummary
from . import optional_deps

if TYPE_CHECKING:
    from neural_format.files.writer import CollectionWriter

    from .vlm.patch_grid import PatchPlan

__all__ = ["BUILDER_NAME", "BuildConfig", "BuildInput", "BuildJob", "add_arguments", "build_collection",
           "collection_meta", "config_from_args", "inputs_from_pairs", "job_from_args", "labels_from_csv",
           "model_refs", "open_writer"]


# -- the pipeline ----------------------------------------------------------------------------
@dataclass
class _Prepared:
    item: BuildInput
    pixels: np.ndarray
    plan: PatchPlan
    working: np.ndarray
    spacing: Optional[tuple]
    source_bytes: int = 0


@dataclass
class _Loaded:
    """What preparing one input gave: a _Prepared, or the image skip's reason, and the seconds taken."""
    item: BuildInput
    prepared: Optional[_Prepared]
    skip: Optional[tuple[str, str]]   # (reason, code)
    seconds: float


@dataclass
class _Scored:
    """One batch after the forward pass, on its way to the per-record stages."""
    batch: list
    features: np.ndarray
    scores: np.ndarray
    reports: list[str]
    sources: list[ReportSource]
    skip_mark: int     # how many skips the serial build would have recorded before this batch's


class _Pipeline:
    def __init__(self, model, config: BuildConfig, out_path: Path, source_bytes: int, skipped: list):
        torch = optional_deps.load("torch", needed_by="building a collection")

        from .kg import extractor_ref, get_extractor
        from .devices import resolve_device
        self.torch = torch
        self.model, self.config, self.out_path = model, config, out_path
        self.device = resolve_device(config.device)
        self.model.to(self.device).eval()
        if model.tokenizer is None:
            raise ValueError("the model has no tokenizer: load it with ReportGenerator.from_pretrained(dir)")
        self.extractor = get_extractor(config.kg_extractor)
        self.extractor_ref = extractor_ref(self.extractor)
        self.embedder = None
        if config.entity_embeddings:
            from .text_embedding import SentenceEmbedder
            self.embedder = SentenceEmbedder(device="cpu")
        self.writer: Optional[CollectionWriter] = None
        self.tile_shape: Optional[tuple[int, ...]] = None
        self.offered_bytes = source_bytes   # provenance: every input image offered to the build
        self.summary = BuildSummary(out_path=out_path, skipped=skipped, source_bytes=0,
                                    device=str(self.device), policy=describe(config.policy))
        self.times = self.summary.times
        self._late_skips: list[tuple[int, object]] = []   # (mark, Skipped) from the record stages
        self._staged: list[tuple] = []       # records held until the writer can be opened
        self._staged_bytes = 0
        self._digests = None
        self.pipelined = config.pipelined if config.pipelined is not None else self.device.type == "cuda"
        if self.pipelined:
            # the weight files' SHA-256 for the provenance: serialising and hashing every weight
            # (~1 GB for Swin-B + T5-base) costs seconds, which the serial build pays inside its
            # first write; here it runs beside decoding and the forward pass
            from concurrent.futures import ThreadPoolExecutor
            self._digest_pool = ThreadPoolExecutor(1, thread_name_prefix="build-digest")
            self._digests = self._digest_pool.submit(self._weight_digests)

    def _weight_digests(self) -> dict:
        t0 = time.perf_counter()
        try:
            return self.model.weights_sha256()
        finally:
            self.times.provenance += time.perf_counter() - t0

    def _meta(self, tile_shape) -> CollectionMeta:
        digests = None
        if self._digests is not None:
            t0 = time.perf_counter()
            digests = self._digests.result()
            self.times.write += time.perf_counter() - t0   # only what the writer still waited for
        return collection_meta(self.model, self.config, self.extractor_ref,
                               entity_dim=self.embedder.dim if self.embedder else 0, tile_shape=tile_shape,
                               source_bytes=self.offered_bytes,
                               embedder_ref=self.embedder.model_ref() if self.embedder else None, digests=digests)

    def _open_writer(self, tile_shape) -> CollectionWriter:
        # pipelined: flush every ~8 MiB, so HDF5 appends and hashing happen beside the forward
        # pass instead of all in close() after it (the writer's default buffers 64 MiB)
        self.writer = writer = open_writer(self.config, self.out_path, self._meta(tile_shape),
                                           batch_bytes=(8 << 20) if self.pipelined else None)
        return writer

    # -- stage 1: prepare (any thread) -------------------------------------------------------
    def load(self, item: BuildInput) -> _Loaded:
        """Decode, plan and resize one input; thread-safe (touches no shared state)."""
        from .errors import BuildInputError
        from .inputs import load_image
        from .vlm.patch_grid import to_working
        t0 = time.perf_counter()
        image = item.image
        if image is None:
            try:
                image = load_image(item.image_path)
            except BuildInputError as exc:
                return _Loaded(item, None, (exc.message, exc.code), time.perf_counter() - t0)
        pixels = np.asarray(image.pixels, np.float32)
        plan = self.model.plan(pixels.shape)
        prepared = _Prepared(item, pixels, plan, to_working(pixels, plan), image.pixel_spacing,
                             int(getattr(image, "source_bytes", 0) or _source_size(item)))
        return _Loaded(item, prepared, None, time.perf_counter() - t0)

    def admit(self, loaded: _Loaded) -> Optional[_Prepared]:
        """In input order (the driving thread): record an image skip, or check the tile shape."""
        from .inputs import record_skip
        self.times.prepare += loaded.seconds
        if loaded.skip is not None:
            record_skip(self.summary.skipped, loaded.item.case_id, "image", *loaded.skip)
            return None
        prepared = loaded.prepared
        if prepared is None:  # a load gives a preparation or a skip
            raise ValueError(f"{loaded.item.case_id}: neither prepared nor skipped")
        plan = prepared.plan
        if self.config.tiles and self.tile_shape is not None and tuple(plan.native_patch) != self.tile_shape:
            record_skip(self.summary.skipped, loaded.item.case_id, "image",
                        f"native patch {plan.native_patch} differs from the collection's tile shape {self.tile_shape}")
            return None
        return prepared

    def prepare(self, item: BuildInput) -> Optional[_Prepared]:
        return self.admit(self.load(item))

    # -- stage 2: forward (the driving thread) -------------------------------------------------
    def forward(self, batch: list[_Prepared]) -> _Scored:
        from .scoring import score_batch
        from .vlm.train import encode_labels
        torch = self.torch
        if self.config.tiles and self.tile_shape is None:
            # the collection's tile shape is that of the first record written: this batch's first
            self.tile_shape = tuple(batch[0].plan.native_patch)
        t0 = time.perf_counter()
        pixels = torch.from_numpy(np.stack([p.working for p in batch]))[:, None]
        if self.device.type == "cuda":
            pixels = pixels.pin_memory().to(self.device, non_blocking=True)
        else:
            pixels = pixels.to(self.device)
        plans = [p.plan for p in batch]
        given = [p.item.report for p in batch]
        sources: list[ReportSource] = ["ground_truth" if r else "generated" for r in given]
        generated: list[str] = [""] * len(given)  # only for the inputs without a report
        if not all(given):
            with torch.no_grad():
                generated = self.model.generate_reports(self.model.encode(pixels, plans), self.model.tokenizer,
                                                        max_new_tokens=self.config.max_report_tokens)
        reports = [r or g for r, g in zip(given, generated)]
        labels = encode_labels(self.model.tokenizer, reports, self.config.max_report_tokens, self.device)
        use_amp = self.device.type == "cuda"
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=use_amp):
            features, scores, _ = score_batch(self.model, pixels, plans, labels, self.config.aggregation,
                                              attention=self.config.attention, loss=False)
        self.times.forward += time.perf_counter() - t0
        return _Scored(batch, features, scores, reports, sources, len(self.summary.skipped))

    def run_batch(self, batch: list[_Prepared]) -> None:
        """Forward one batch and emit its records, serially."""
        self.emit(self.forward(batch))

    # -- stages 3-5: graph, KG, write (one thread, batches in order) ---------------------------
    def emit(self, scored: _Scored) -> None:
        for b, prep in enumerate(scored.batch):
            self._emit(prep, scored.features[b], scored.scores[b], scored.reports[b], scored.sources[b],
                       scored.skip_mark)

    def _emit(self, prep: _Prepared, features, scores, report: str, source: ReportSource, skip_mark: int) -> None:
        from neural_format.graphs.fusion import record_bridge

        from .kg import ENTITY_TYPES, RELATION_TYPES
        from .visual_graph import build_visual_graph
        from .vlm.patch_grid import native_tiles
        t0 = time.perf_counter()
        plan, config = prep.plan, self.config
        real = plan.real_token_indices()
        real_scores = scores[real]
        kept_tokens = real[select(real_scores, config.policy)]
        positions, edges = build_visual_graph(kept_tokens, plan.working_grid, config.adjacency)
        tiles = native_tiles(prep.pixels, plan, positions, np.dtype(config.tiles)) if config.tiles else None
        t1 = time.perf_counter()
        kg = self.extractor.extract(report).to_arrays(ENTITY_TYPES, RELATION_TYPES)
        entity_features = self.embedder.encode(kg["entity_text"]) if self.embedder else None
        bridge = record_bridge(len(kept_tokens), edges, scores[kept_tokens], kg["relations"], kg["entity_types"],
                               kg["entity_assertions"], ENTITY_TYPES, config.bridge_tie_break)
        t2 = time.perf_counter()
        labels = prep.item.labels if prep.item.labels is not None else [float("nan")] * len(config.label_names)
        record = Record(
            record_id=prep.item.case_id, patch_features=features[kept_tokens],
            patch_scores=scores[kept_tokens].astype(np.float32), patch_positions=positions, patch_edges=edges,
            entity_types=kg["entity_types"], entity_assertions=kg["entity_assertions"],
            entity_text=kg["entity_text"], entity_features=entity_features, relations=kg["relations"],
            relation_types=kg["relation_types"], bridge=bridge, labels=np.asarray(labels, np.float32),
            geometry=Geometry(plan.image_size, plan.native_patch, plan.grid_shape,
                              None if prep.spacing is None else tuple(float(v) for v in prep.spacing)),
            tiles=tiles, report=report, report_source=source, group_key=prep.item.group_key)
        self._write((record, prep, int(real.size), int(kept_tokens.size), skip_mark))
        t3 = time.perf_counter()
        self.times.graph += t1 - t0
        self.times.kg += t2 - t1
        self.times.write += t3 - t2

    def _write(self, entry: tuple) -> None:
        """Append one record; while the background weight digests (needed by the file's metadata)
        are not ready, hold records in memory instead (up to ``_STAGE_BYTES``), so the stages
        before keep running."""
        if self.writer is None:
            record = entry[0]
            if (self._digests is not None and not self._digests.done()
                    and self._staged_bytes < _STAGE_BYTES):
                self._staged.append(entry)
                self._staged_bytes += sum(a.nbytes for a in (record.patch_features, record.tiles) if a is not None)
                return
            self._open_and_drain()
        self._append(*entry)

    def _open_and_drain(self) -> None:
        self._open_writer(self.tile_shape)
        staged, self._staged, self._staged_bytes = self._staged, [], 0
        for held in staged:
            self._append(*held)

    def _append(self, record: Record, prep: _Prepared, seen: int, kept: int, skip_mark: int) -> None:
        from neural_format.errors import NeuralFormatError

        from .inputs import record_skip
        assert self.writer is not None  # _write and _open_and_drain open it first
        try:
            self.writer.append(record)
        except NeuralFormatError as exc:
            skip = record_skip(None, prep.item.case_id, "write", exc.message, exc.code)
            self._late_skips.append((skip_mark, skip))
        else:
            self.summary.records_written += 1
            self.summary.source_bytes += prep.source_bytes
            self.summary.patches_seen += seen
            self.summary.patches_kept += kept

    def merge_skips(self) -> None:
        """Put the record stages' skips where the serial build records them (after the image
        skips of the inputs prepared before their batch ran), whichever thread found them."""
        if not self._late_skips:
            return
        merged, early = [], self.summary.skipped
        late = iter(self._late_skips)
        pending = next(late, None)
        for position in range(len(early) + 1):
            while pending is not None and pending[0] == position:
                merged.append(pending[1])
                pending = next(late, None)
            if position < len(early):
                merged.append(early[position])
        early[:] = merged
        self._late_skips = []

    def close(self) -> None:
        t0 = time.perf_counter()
        if self.writer is None and self._staged:
            self._open_and_drain()
        self.merge_skips()
        writer = self.writer
        if writer is None:  # nothing usable: still write a valid, empty collection
            writer = self._open_writer(None)
        writer.close()
        self.times.write += time.perf_counter() - t0
        self.summary.bytes_written = os.path.getsize(self.out_path)
        self._stop_digests()

    def abort(self) -> None:
        self._stop_digests()
        if self.writer is not None:
            self.writer.abort()

    def _stop_digests(self) -> None:
        if self._digests is not None:
            self._digests.cancel()
            self._digest_pool.shutdown(wait=True)


_STAGE_BYTES = 256 << 20   # feature/tile bytes held while the weight digests are computed


def _source_size(item: BuildInput) -> int:
    if item.image is not None and getattr(item.image, "source_bytes", None):
        return int(item.image.source_bytes)
    try:
        return os.path.getsize(item.image_path) if item.image_path else 0
    except OSError:
        return 0


def _batches(admitted, batch_size: int):
    """Batches of one working size, in the order the serial build has always run them: a batch
    as soon as its size has ``batch_size`` inputs, the rest at the end in first-seen order."""
    pending: dict = {}
    for prep in admitted:
        if prep is None:
            continue
        key = prep.working.shape
        pending.setdefault(key, []).append(prep)
        if len(pending[key]) >= batch_size:
            yield pending.pop(key)
    yield from pending.values()


def _prepare_workers(config: BuildConfig) -> int:
    if config.prepare_workers is not None:
        return max(0, int(config.prepare_workers))
    return min(4, os.cpu_count() or 1)


def build_collection(inputs: Sequence, model, config: Optional[BuildConfig] = None, out_path="collection.h5", *,
                     skipped: Optional[list] = None) -> BuildSummary:
    """Build one collection file from ``inputs`` (BuildInputs, or pairs from ``pair_inputs``).

    ``model`` is a :class:`~neural_builders.vlm.model.ReportGenerator` with its tokenizer.
    ``skipped`` (e.g. from pairing) is carried into the summary. ``source_bytes`` in the
    provenance is the total size of the input image files.

    With ``config.pipelined`` (default None: on a CUDA device) the stages overlap
    (:mod:`neural_builders.stages`):
    ``prepare_workers`` threads decode and resize up to ``prefetch_batches`` batches ahead of the
    model; the forward pass runs in the calling thread; pruning, KG, bridge and writing run in one
    background thread, at most ``queue_batches`` scored batches behind. Records, skips and the
    file are the same as the serial build's (``pipelined=False``), in the same order.
    """
    config = config or BuildConfig()
    items = [x if isinstance(x, BuildInput) else inputs_from_pairs([x])[0] for x in inputs]
    out_path = Path(out_path)
    began = time.perf_counter()
    pipeline = _Pipeline(model, config, out_path, sum(_source_size(i) for i in items), list(skipped or []))
    consumer = loads = None
    try:
        with Progress(len(items), "building", enabled=config.progress) as bar:
            def counted(loaded_items):
                for loaded in loaded_items:
                    bar.update(1)
                    yield pipeline.admit(loaded)

            if not pipeline.pipelined:
                for batch in _batches(counted(map(pipeline.load, items)), config.batch_size):
                    pipeline.run_batch(batch)
            else:
                from .stages import OrderedConsumer, OrderedPrefetch
                workers = _prepare_workers(config)
                loads = OrderedPrefetch(pipeline.load, items, workers=workers,
                                        lookahead=max(1, config.prefetch_batches) * config.batch_size + workers)
                consumer = OrderedConsumer(pipeline.emit, depth=config.queue_batches, name="build-records")
                for batch in _batches(counted(loads), config.batch_size):
                    consumer.submit(pipeline.forward(batch))
                consumer.finish()
                consumer = None
        pipeline.close()
    except BaseException:
        if loads is not None:
            loads.close()       # no decoding goes on behind the error
        if consumer is not None:
            consumer.cancel()   # the writer is free again before it is aborted
        pipeline.abort()
        raise
    summary = pipeline.summary
    summary.seconds = time.perf_counter() - began
    return summary


if __name__ == "__main__":
    # the command line is neural_builders.build_cli, which sits above this module; only the
    # script entry point reaches up to it
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        # launched by torchrun: one shard per rank, --out names the collection directory
        from neural_builders.distributed_build import main as distributed_main
        sys.exit(distributed_main())
    from neural_builders.build_cli import main as single_main
    sys.exit(single_main())
