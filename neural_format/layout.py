"""Where each field lives inside a collection file (spec section 3), and its stored dtype.

This table is the single source of truth for the writer, the reader and the validator.
Ragged tables hold the rows of all records concatenated, and an ``offsets`` dataset of
``N + 1`` int64 values: record ``i`` owns rows ``offsets[i]:offsets[i+1]``.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Optional

import numpy as np

ROOT_ENCODING = ("neural-collection", "1.0.0")

# stored codes of record fields (re-exported by neural_format.record)
REPORT_SOURCES = {None: 0, "ground_truth": 1, "generated": 2}
REPORT_SOURCE_NAMES = {code: name for name, code in REPORT_SOURCES.items()}
ASSERTION_CODES = {"present": 0, "absent": 1, "uncertain": 2}
UNKNOWN = -1  # entity type / assertion code when the source did not record it
HDF5_LIBVER = ("earliest", "v108")  # readable by HDF5 1.8 and 1.10 tools (clause NF-H001)
ALLOWED_FILTERS = {"gzip", "lzf", "shuffle", "fletcher32"}  # h5py names of the allowed filters
ALLOWED_FILTER_IDS = {1, 2, 3, 32000}  # deflate, shuffle, fletcher32, lzf
METADATA_PATH = "/metadata"
METADATA_MAX_BYTES = 16 << 20

# table name -> (group path, group encoding-type)
TABLES = {
    "records": ("/records", "record-table"),
    "patches": ("/patches", "ragged-table"),
    "patch_edges": ("/patch_edges", "ragged-table"),
    "entities": ("/entities", "ragged-table"),
    "relations": ("/relations", "ragged-table"),
}
RAGGED_TABLES = ("patches", "patch_edges", "entities", "relations")
TABLE_ENCODING_VERSION = "1.0.0"
STRING_ARRAY = ("string-array", "1.0.0")
METADATA_ENCODING = ("json", "1.0.0")


class Presence(str, Enum):
    """When a column is present, decided by the collection metadata (:data:`PRESENCE_RULES`)."""
    ALWAYS = "always"
    HAS_POSITIONS = "has_positions"
    HAS_TILES = "has_tiles"
    HAS_ENTITY_FEATURES = "has_entity_features"
    HAS_ENTITY_TEXT = "has_entity_text"
    ENTITY_TEXT_PARTIAL = "entity_text_partial"

    def holds(self, meta) -> bool:
        return bool(PRESENCE_RULES[self](meta))


PRESENCE_RULES = {
    Presence.ALWAYS: lambda meta: True,
    Presence.HAS_POSITIONS: lambda meta: meta.has_positions,
    Presence.HAS_TILES: lambda meta: meta.tile_shape is not None,
    Presence.HAS_ENTITY_FEATURES: lambda meta: meta.entity_feature_dim > 0,
    Presence.HAS_ENTITY_TEXT: lambda meta: meta.has_entity_text,
    Presence.ENTITY_TEXT_PARTIAL: lambda meta: meta.has_entity_text and meta.entity_text_partial,
}


class Trailing(str, Enum):
    """A column's trailing shape (after the row axis), decided by the metadata (:data:`TRAILING_SHAPES`)."""
    SCALAR = ""
    PAIR = "2"
    DIGEST = "32"
    SPATIAL_AXES = "A"
    PATCH_FEATURES = "D"
    ENTITY_FEATURES = "De"
    LABELS = "L"
    TILE = "T"

    def shape(self, meta) -> tuple[int, ...]:
        return TRAILING_SHAPES[self](meta)


TRAILING_SHAPES = {
    Trailing.SCALAR: lambda meta: (),
    Trailing.PAIR: lambda meta: (2,),
    Trailing.DIGEST: lambda meta: (32,),
    Trailing.SPATIAL_AXES: lambda meta: (meta.spatial_axes,),
    Trailing.PATCH_FEATURES: lambda meta: (meta.patch_feature_dim,),
    Trailing.ENTITY_FEATURES: lambda meta: (meta.entity_feature_dim,),
    Trailing.LABELS: lambda meta: (len(meta.label_names),),
    Trailing.TILE: lambda meta: tuple(meta.tile_shape or ()),
}


@dataclass(frozen=True)
class Column:
    """One dataset: ``table/name``, its dtype(s), and its trailing shape as a function of metadata.

    ``trailing`` and ``when`` take the enum members or their string codes ("D", "has_positions");
    ``dtype_from`` names the metadata field that chooses the stored dtype among ``dtypes`` (None:
    ``dtypes[0]``).
    """
    table: str
    name: str
    dtypes: tuple[str, ...]
    trailing: Trailing
    when: Presence = Presence.ALWAYS  # metadata condition under which the column is present
    dtype_from: Optional[str] = None

    def __post_init__(self):
        object.__setattr__(self, "trailing", Trailing(self.trailing))
        object.__setattr__(self, "when", Presence(self.when))

    @property
    def path(self) -> str:
        return f"{TABLES[self.table][0]}/{self.name}"


COLUMNS = (
    Column("records", "bridge", ("<i8",), Trailing.PAIR),
    Column("records", "labels", ("<f4",), Trailing.LABELS),
    Column("records", "sha256", ("|u1",), Trailing.DIGEST),
    Column("records", "report_source", ("|u1",), Trailing.SCALAR),
    Column("records", "image_size", ("<i8",), Trailing.SPATIAL_AXES, Presence.HAS_POSITIONS),
    Column("records", "patch_size", ("<i8",), Trailing.SPATIAL_AXES, Presence.HAS_POSITIONS),
    Column("records", "grid_shape", ("<i8",), Trailing.SPATIAL_AXES, Presence.HAS_POSITIONS),
    Column("records", "pixel_spacing", ("<f8",), Trailing.SPATIAL_AXES, Presence.HAS_POSITIONS),
    # format 1.1.0: 1 = the record's entity text is known, 0 = unknown (its strings are empty)
    Column("records", "entity_text_known", ("|u1",), Trailing.SCALAR, Presence.ENTITY_TEXT_PARTIAL),
    Column("patches", "features", ("<f2", "<f4"), Trailing.PATCH_FEATURES, dtype_from="patch_feature_dtype"),
    Column("patches", "scores", ("<f4",), Trailing.SCALAR),
    Column("patches", "positions", ("<i4",), Trailing.SPATIAL_AXES, Presence.HAS_POSITIONS),
    Column("patches", "tiles", ("|u1", "<u2", "<f4"), Trailing.TILE, Presence.HAS_TILES, dtype_from="tile_dtype"),
    Column("patch_edges", "index", ("<i4",), Trailing.PAIR),
    Column("entities", "type", ("<i2",), Trailing.SCALAR),
    Column("entities", "assertion", ("|i1",), Trailing.SCALAR),
    Column("entities", "features", ("<f2", "<f4"), Trailing.ENTITY_FEATURES, Presence.HAS_ENTITY_FEATURES,
           dtype_from="entity_feature_dtype"),
    Column("relations", "index", ("<i4",), Trailing.PAIR),
    Column("relations", "type", ("<i2",), Trailing.SCALAR),
)
# string arrays: path -> (table whose rows they index, condition)
STRING_COLUMNS = {
    "/records/id": ("records", Presence.ALWAYS),
    "/records/report": ("records", Presence.ALWAYS),
    "/records/group_key": ("records", Presence.ALWAYS),
    "/entities/text": ("entities", Presence.HAS_ENTITY_TEXT),
}


def column_present(when, meta) -> bool:
    """Whether a column with presence rule ``when`` (a :class:`Presence` or its code) is in a file with ``meta``."""
    try:
        presence = Presence(when)
    except ValueError:
        raise KeyError(when) from None
    return presence.holds(meta)


def trailing_shape(column: Column, meta) -> tuple[int, ...]:
    return column.trailing.shape(meta)


def stored_dtype(column: Column, meta) -> np.dtype:
    return np.dtype(getattr(meta, column.dtype_from) if column.dtype_from else column.dtypes[0])


def present_columns(meta):
    return [c for c in COLUMNS if column_present(c.when, meta)]


def present_string_columns(meta):
    return {p: t for p, (t, when) in STRING_COLUMNS.items() if column_present(when, meta)}
