"""Metadata checks (spec section 5), from :func:`neural_format.files.guards.read_metadata`."""
from __future__ import annotations

from .findings import finding, from_error
from .registry import check

AXES_OF_RULE = {"4-neighbour": 2, "8-neighbour": 2, "6-neighbour": 3, "26-neighbour": 3}


@check("NF-M001", "error", stage="metadata")
def metadata_matches_schema(ctx):
    _, error = ctx.metadata()
    # the guard also reports a missing, linked or mistyped /metadata under its own code
    return from_error(error) if error is not None else None


@check("NF-M002", "error", stage="metadata")
def adjacency_fits_axes(ctx):
    meta = ctx.meta
    if meta is None:
        return None  # NF-M001 reports why
    axes = AXES_OF_RULE.get(meta.adjacency)
    if axes is not None and axes != meta.spatial_axes:
        return finding("NF-M002", "/metadata#adjacency", "adjacency rule does not fit the spatial axes",
                       f"a rule for {meta.spatial_axes} axes", f"{meta.adjacency} ({axes} axes)")
    return None


@check("NF-P001", "best-practice", stage="metadata")
def provenance_names_models(ctx):
    if ctx.meta is None:
        return None
    provenance = ctx.meta.provenance
    if provenance.conversion is not None:
        return None  # converted collections cannot know what the source did not record
    missing = []
    if provenance.encoder is None or provenance.encoder.weights_sha256 is None:
        missing.append("encoder with weights_sha256")
    if provenance.pruning is None:
        missing.append("pruning policy")
    if missing:
        return finding("NF-P001", "/metadata#provenance", "provenance is incomplete",
                       "encoder (with weights_sha256) and pruning policy", "missing " + ", ".join(missing))
    return None
