"""The provenance a build writes into ``/metadata``: which encoder and decoder (with the SHA-256
of their weight files), how scores were aggregated, the pruning policy, the KG extractor, the
fusion rule and the source bytes (:func:`collection_meta`)."""
from __future__ import annotations

import datetime as dt
from typing import Optional, Sequence

from neural_format.format.metadata import (CollectionMeta, FusionRule, KGExtractorRef, ModelRef, Provenance,
                                    SoftwareRef, SpatialAxes)

from .build_config import BuildConfig

BUILDER_NAME = "neural_builders"


def _scalar_config(config: dict, keys: Sequence[str]) -> dict:
    out = {}
    for key in keys:
        value = config.get(key)
        if isinstance(value, (list, tuple)):
            value = ",".join(str(v) for v in value)
        if isinstance(value, (bool, int, float, str)) or value is None:
            out[key] = value
    return out


def model_refs(model, attention: str = "eager", digests: Optional[dict] = None) -> tuple[ModelRef, ModelRef]:
    """Encoder (Swin + projection) and decoder (T5) provenance with their weight files' SHA-256.

    ``attention`` is the scoring path (:data:`neural_builders.scoring.ATTENTION_PATHS`): the
    decoder's ``attn_implementation`` is "sdpa" for the fused path, whose scored layers' weights
    are recomputed eagerly from their queries and keys (``cross_attention_weights``).
    ``digests`` are :meth:`ReportGenerator.weights_sha256` when already computed."""
    from .vlm.model import DECODER_FILE, ENCODER_FILE
    digests = digests if digests is not None else model.weights_sha256()
    name = model.source_dir.name if model.source_dir is not None else "in-memory"
    if name in ("model", "checkpoint") and model.source_dir is not None:
        name = f"{model.source_dir.parent.name}/{name}"
    resolution = model.config["resolution"]
    encoder = ModelRef(model_id=f"{name}:swin+projection", weights_sha256=digests[ENCODER_FILE], config={
        "architecture": "SwinModel", "file": ENCODER_FILE, "token_stride": model.stride,
        **_scalar_config(model.config["swin"], ("embed_dim", "depths", "num_heads", "window_size", "patch_size",
                                                "num_channels")),
        "resolution_mode": resolution["mode"], "max_side": resolution.get("max_side"),
        "fixed_size": ",".join(str(v) for v in resolution.get("fixed_size", ())),
        "position_frequencies": model.config["projection"]["position_frequencies"]})
    decoder = ModelRef(model_id=f"{name}:t5", weights_sha256=digests[DECODER_FILE], config={
        "architecture": "T5ForConditionalGeneration", "file": DECODER_FILE,
        "attn_implementation": "sdpa" if attention == "fused" else "eager",
        "cross_attention_weights": "recomputed from q,k of the scored layers" if attention == "fused"
        else "eager output_attentions",
        **_scalar_config(model.config["t5"], ("d_model", "num_decoder_layers", "num_heads", "vocab_size"))})
    return encoder, decoder


def collection_meta(model, config: BuildConfig, extractor_ref: KGExtractorRef, *, entity_dim: int,
                    tile_shape: Optional[tuple[int, int]], source_bytes: int, embedder_ref=None,
                    spatial_axes: SpatialAxes = 2, slice_filter=None, digests: Optional[dict] = None) -> CollectionMeta:
    from neural_format import __version__ as sdk_version

    from .kg import ENTITY_TYPES, RELATION_TYPES
    encoder, decoder = model_refs(model, config.attention, digests)
    if embedder_ref is not None:
        extra = {"entity_embedder": embedder_ref.model_id, "entity_embedder_sha256": embedder_ref.weights_sha256}
        extractor_ref = extractor_ref.model_copy(update={"config": {**extractor_ref.config, **extra}})
    return CollectionMeta(
        spatial_axes=spatial_axes, patch_feature_dim=model.swin_dim, patch_feature_dtype=config.feature_dtype,
        entity_feature_dim=entity_dim, has_positions=True, has_entity_text=True,
        tile_shape=list(tile_shape) if tile_shape else None, tile_dtype=config.tiles if tile_shape else None,
        adjacency=config.adjacency, entity_types=list(ENTITY_TYPES), relation_types=list(RELATION_TYPES),
        label_names=list(config.label_names),
        provenance=Provenance(
            builder=SoftwareRef(name=BUILDER_NAME, version=sdk_version),
            sdk=SoftwareRef(name="neural-format", version=sdk_version),
            created=dt.datetime.now(dt.timezone.utc), encoder=encoder, decoder=decoder,
            score_aggregation=config.aggregation,
            pruning=config.policy.model_copy(update={"applied_to": "build", "slice_filter": slice_filter}),
            kg_extractor=extractor_ref, fusion=FusionRule(tie_break=config.bridge_tie_break), source_bytes=int(source_bytes)))
