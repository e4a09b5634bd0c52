"""The build's settings (:class:`BuildConfig`) with their defaults, written once.

``neural-format build``, ``python -m neural_builders.build`` and the sharded build
(:mod:`neural_builders.distributed_build`) read their flags' defaults from here
(:mod:`neural_builders.build_options`), and :func:`open_writer` is the one place a build turns the
storage settings into a :class:`~neural_format.files.writer.CollectionWriter`. Imports no torch.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from neural_format.format.metadata import (AdjacencyRule, CollectionMeta, FeatureDtype, PruningPolicy, ScoreAggregation, TieBreak,
                                    TileDtype, TopKPercent)

if TYPE_CHECKING:
    from neural_format.files.writer import CollectionWriter

DEFAULT_TOP_K_PERCENT = 10.0   # the pruning rule when none is named: keep the top 10 % of patches

# ``--pipeline`` on the command line -> BuildConfig.pipelined
PIPELINE_MODES: dict[str, Optional[bool]] = {"auto": None, "on": True, "off": False}


@dataclass
class BuildConfig:
    policy: PruningPolicy = field(default_factory=lambda: PruningPolicy(rule=TopKPercent(percent=DEFAULT_TOP_K_PERCENT)))
    aggregation: ScoreAggregation = field(default_factory=ScoreAggregation)
    adjacency: AdjacencyRule = "4-neighbour"
    batch_size: int = 8
    feature_dtype: FeatureDtype = "float32"
    tiles: Optional[TileDtype] = None         # None, "uint8" or "uint16"
    kg_extractor: str = "rules"
    # the bridge's tie-break (neural_format.graphs.fusion.TIE_BREAKS); "lowest-index" reproduces the reference
    bridge_tie_break: TieBreak = "score-then-relations"
    entity_embeddings: bool = False           # 384-d MiniLM embeddings of entity text
    label_names: tuple[str, ...] = ("pneumonia",)
    # storage: passed to the writer by open_writer (None: the writer's defaults)
    compression: Optional[str] = None         # None, "gzip" or "lzf"
    compression_level: Optional[int] = None   # gzip's 0-9
    chunk_bytes: Optional[int] = None         # target chunk size
    max_report_tokens: int = 128
    # "fused": SDPA decoder, weights of the scored layers only; "eager": the reference (scoring.score_batch)
    attention: str = "fused"
    # overlapping stages (neural_builders.stages); False: the serial reference; None: overlap on
    # a GPU, serial on the CPU (on 2 shared cores overlapped was mostly a little slower: the
    # model's threads already fill the cores; docs/benchmarks-gpu.md)
    pipelined: Optional[bool] = None
    prepare_workers: Optional[int] = None     # decoding/resizing threads; None: min(4, CPUs); 0: inline
    prefetch_batches: int = 2                 # inputs prepared ahead of the model, in batches
    queue_batches: int = 2                    # scored batches waiting for pruning/KG/write
    device: str = "auto"
    overwrite: bool = False
    progress: Optional[bool] = None


def open_writer(config: BuildConfig, out_path, meta: CollectionMeta, *,
                batch_bytes: Optional[int] = None) -> "CollectionWriter":
    """The collection writer for a build with ``config``: every build (single file, each shard of a
    sharded build, 3-D volumes, the empty file of a build with nothing usable) opens it here, so
    the storage settings (``overwrite``, ``compression``, ``compression_level``, ``chunk_bytes``)
    reach every file. ``batch_bytes`` overrides the writer's buffer size (the overlapped build
    flushes more often)."""
    from neural_format.files.writer import CollectionWriter
    buffering: dict[str, Any] = {} if batch_bytes is None else {"batch_bytes": batch_bytes}  # else the writer's default
    return CollectionWriter(Path(out_path), meta, overwrite=config.overwrite, compression=config.compression,
                            compression_level=config.compression_level, chunk_bytes=config.chunk_bytes,
                            **buffering)
