"""Typed collection metadata and provenance (spec section 5, clauses NF-M*).

These pydantic models are the single source of truth: ``spec/schema/collection-metadata.schema.json``
and ``spec/schema/manifest.schema.json`` are generated from them by
``python -m neural_format.format.schema`` and a test fails when the committed copies drift.
"""
from __future__ import annotations

import datetime as _dt
from typing import Annotated, Literal, Union, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_serializer, model_validator

from ..version import SDK_VERSION

Sha256Hex = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$", description="lower-case hex SHA-256")]
ShortText = Annotated[str, Field(min_length=1, max_length=256)]
VocabTerm = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:\-]+$")]
ConfigValue = Union[bool, int, float, str, None]
# the closed vocabularies that more than one module passes around (typed once here, checked by mypy at the callers)
SpatialAxes = Literal[2, 3]
FeatureDtype = Literal["float16", "float32"]
PruningStage = Literal["build", "re-prune", "convert"]
SourceFormat = Literal["pyg-data-list-pickle", "pyg-inmemory-pickle", "pyg-objects"]
AdjacencyRule = Literal["4-neighbour", "8-neighbour", "6-neighbour", "26-neighbour", "custom", "unknown"]
TileDtype = Literal["uint8", "uint16", "float32"]
TieBreak = Literal["lowest-index", "score-then-relations"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SoftwareRef(_Strict):
    """A piece of software by name and version."""
    name: ShortText
    version: ShortText



def sdk_ref() -> SoftwareRef:
    """This SDK as provenance's ``software`` entry (``neural_format.sdk_ref``)."""
    return SoftwareRef(name="neural-format", version=SDK_VERSION)

class ModelRef(_Strict):
    """A neural network used to make the collection."""
    # pydantic 2.5-2.9 reserve the whole "model_" prefix and warn about `model_id` on import (on
    # stderr, before a CLI's one-line error); 2.10+ reserve only their own method names
    model_config = ConfigDict(protected_namespaces=())  # merged with _Strict's forbid + frozen
    model_id: ShortText = Field(description="hub ID, local directory name or config name")
    weights_sha256: Sha256Hex | None = Field(
        default=None, description="SHA-256 over the weight files, sorted by name; null if unknown")
    config: dict[str, ConfigValue] = Field(default_factory=dict)


class ScoreAggregation(_Strict):
    """How cross-attention became one score per patch: S_i = sum_j alpha_ji over report tokens."""
    layers: Literal["last", "all"] | list[Annotated[int, Field(ge=0)]] = "last"
    heads: Literal["mean", "sum", "max"] = "mean"
    layer_reduction: Literal["mean", "sum"] = "mean"
    tokens: Literal["sum", "mean"] = "sum"
    exclude_padding: bool = True
    source: Literal["cross-attention", "converted", "other"] = "cross-attention"


class TopKPercent(_Strict):
    kind: Literal["top_k_percent"] = "top_k_percent"
    percent: Annotated[float, Field(gt=0, le=100)]


class Threshold(_Strict):
    kind: Literal["threshold"] = "threshold"
    tau: float


class Nucleus(_Strict):
    kind: Literal["nucleus"] = "nucleus"
    p: Annotated[float, Field(gt=0, le=1)]


class KeepAll(_Strict):
    kind: Literal["none"] = "none"


class SliceAnchorFilter(_Strict):
    """MedPruner-style slice filtering: a slice is dropped when its similarity to the anchor is >= threshold."""
    similarity: Literal["cosine"] = "cosine"
    threshold: Annotated[float, Field(ge=-1, le=1)]


class PruningPolicy(_Strict):
    rule: Annotated[Union[TopKPercent, Threshold, Nucleus, KeepAll], Field(discriminator="kind")]
    min_nodes: Annotated[int, Field(ge=0)] = 1
    max_nodes: Annotated[int, Field(ge=1)] | None = None
    slice_filter: SliceAnchorFilter | None = None
    applied_to: PruningStage = "build"

    @model_validator(mode="after")
    def _bounds(self):
        if self.max_nodes is not None and self.max_nodes < self.min_nodes:
            raise ValueError("max_nodes must be >= min_nodes")
        return self


class KGExtractorRef(_Strict):
    name: ShortText
    version: ShortText
    config: dict[str, ConfigValue] = Field(default_factory=dict)


class FusionRule(_Strict):
    kind: Literal["betweenness-bridge", "none", "unknown"] = "betweenness-bridge"
    centrality: Literal["betweenness"] = "betweenness"
    # "lowest-index": the reference's first maximum in node order; "score-then-relations": patch
    # ties to the highest attention score, entity ties to present findings with the most
    # relations (neural_format.graphs.fusion)
    tie_break: TieBreak = "lowest-index"


class ConversionInfo(_Strict):
    """Present when the collection was converted from another container."""
    source_format: SourceFormat
    source_name: ShortText
    source_sha256: Sha256Hex | None = None
    split_rule: ShortText = Field(description="how patch rows and entity rows were told apart")
    unrecoverable: list[ShortText] = Field(default_factory=list)


class Provenance(_Strict):
    builder: SoftwareRef
    sdk: SoftwareRef
    created: _dt.datetime
    encoder: ModelRef | None = None
    decoder: ModelRef | None = None
    score_aggregation: ScoreAggregation | None = None
    pruning: PruningPolicy | None = None
    kg_extractor: KGExtractorRef | None = None
    fusion: FusionRule | None = None
    conversion: ConversionInfo | None = None
    source_bytes: Annotated[int, Field(ge=0)] | None = Field(
        default=None, description="total bytes of the source images/files, for reduction figures")
    history: list[ShortText] = Field(default_factory=list, description="later operations, e.g. re-prune")

    @field_validator("created")
    @classmethod
    def _aware(cls, value: _dt.datetime) -> _dt.datetime:
        if value.tzinfo is None:
            raise ValueError("created must carry a time zone")
        return value


class ShardInfo(_Strict):
    collection_id: Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]
    shard_index: Annotated[int, Field(ge=0)]
    shard_count: Annotated[int, Field(ge=1)]


ADJACENCY_RULES: tuple[str, ...] = get_args(AdjacencyRule)
ASSERTIONS = ("present", "absent", "uncertain")


def _cross_field_rules(schema: dict) -> None:
    """The cross-field rules of the validator below, as JSON Schema, so the committed schema states them."""
    def tiles(count):
        return {"anyOf": [{"type": "null"}, {"type": "array", "minItems": count, "maxItems": count}]}
    set_ = {"required": ["tile_shape"], "properties": {"tile_shape": {"type": "array"}}}
    schema["allOf"] = [
        {"if": {"properties": {"spatial_axes": {"const": 2}}}, "then": {"properties": {"tile_shape": tiles(2)}}},
        {"if": {"properties": {"spatial_axes": {"const": 3}}}, "then": {"properties": {"tile_shape": tiles(3)}}},
        {"if": set_, "then": {"required": ["tile_dtype"],
                              "properties": {"tile_dtype": {"type": "string"}, "has_positions": {"const": True}}},
         "else": {"properties": {"tile_dtype": {"type": "null"}}}},
        {"if": {"required": ["entity_text_partial"], "properties": {"entity_text_partial": {"const": True}}},
         "then": {"properties": {"has_entity_text": {"const": True}}}},
    ]


class CollectionMeta(_Strict):
    """Collection-wide declarations stored as JSON in ``/metadata`` (clause NF-M001)."""
    model_config = ConfigDict(json_schema_extra=_cross_field_rules)
    spatial_axes: SpatialAxes = Field(description="2 = (row, col); 3 = (slice, row, col)")
    patch_feature_dim: Annotated[int, Field(ge=1, le=1 << 16)]
    patch_feature_dtype: FeatureDtype = "float32"
    entity_feature_dim: Annotated[int, Field(ge=0, le=1 << 16)] = 0
    entity_feature_dtype: FeatureDtype = "float32"
    has_positions: bool = True
    has_entity_text: bool = True
    entity_text_partial: bool = Field(
        default=False,
        description="format 1.1.0: some records' entity text may be unknown; /records/entity_text_known "
                    "says, per record, 1 (known) or 0 (unknown, its strings empty); needs has_entity_text (spec section 4.5)")
    tile_shape: list[Annotated[int, Field(ge=1, le=4096)]] | None = Field(
        default=None, min_length=2, max_length=3,
        description="pixels per spatial axis of each stored tile: one extent per axis (as many as spatial_axes), "
                    "no channel axis; tiles are full-resolution, so each record's patch_size equals it (NF-R020)")
    tile_dtype: TileDtype | None = Field(
        default=None, description="dtype of the stored tiles; set exactly when tile_shape is set")
    adjacency: AdjacencyRule = "4-neighbour"
    entity_types: list[VocabTerm] = Field(default_factory=list, max_length=4096)
    relation_types: list[VocabTerm] = Field(default_factory=list, max_length=4096)
    label_names: list[VocabTerm] = Field(default_factory=list, max_length=4096)
    provenance: Provenance
    shard: ShardInfo | None = None

    @model_validator(mode="after")
    def _consistent(self):
        for name in ("entity_types", "relation_types", "label_names"):
            values = getattr(self, name)
            if len(set(values)) != len(values):
                raise ValueError(f"{name} has duplicate terms")
        if (self.tile_shape is None) != (self.tile_dtype is None):
            raise ValueError("tile_shape and tile_dtype go together")
        if self.tile_shape is not None and len(self.tile_shape) != self.spatial_axes:
            raise ValueError("tile_shape needs one extent per spatial axis")
        if self.tile_shape is not None and not self.has_positions:
            raise ValueError("tiles need positions")
        if self.entity_text_partial and not self.has_entity_text:
            raise ValueError("entity_text_partial needs has_entity_text")
        return self

    @model_serializer(mode="wrap")
    def _without_unused_1_1_fields(self, handler):
        """Leave ``entity_text_partial`` out while it is false: a collection that does not use the
        format 1.1.0 addition writes the same metadata as before, which 1.0 readers that refuse
        unknown fields (the reference 1.0.0 SDK) still read."""
        data = handler(self)
        if isinstance(data, dict) and not data.get("entity_text_partial", True):
            del data["entity_text_partial"]
        return data


class ShardEntry(_Strict):
    path: Annotated[str, Field(min_length=1, max_length=1024, pattern=r"^[^/\\][^\\]*$")]
    records: Annotated[int, Field(ge=0)]
    first_id: str | None = None
    last_id: str | None = None
    ids_sha256: Sha256Hex = Field(description="SHA-256 over the shard's record IDs and record hashes")
    file_sha256: Sha256Hex | None = None
    format_version: ShortText


class Manifest(_Strict):
    """The manifest of a collection that spans several files (clause NF-C001)."""
    format: Literal["neural-graph-manifest"] = "neural-graph-manifest"
    format_version: ShortText
    collection_id: Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]
    shards: list[ShardEntry]
    collection_sha256: Sha256Hex = Field(
        description="SHA-256 over the canonical JSON of the whole manifest except this field")
    created: _dt.datetime
