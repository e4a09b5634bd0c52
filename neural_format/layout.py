"""Where each field lives inside a collection file (spec section 3), and its stored dtype.

This table is the single source of truth for the writer, the reader and the validator.
Ragged tables hold the rows of all records concatenated, and an ``offsets`` dataset of
``N + 1`` int64 values: record ``i`` owns rows ``offsets[i]:offsets[i+1]``.
"""
from __future__ import annotations

from dataclasses import dataclass

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


@dataclass(frozen=True)
class Column:
    """One dataset: ``table/name``, its dtype(s), and its trailing shape as a function of metadata."""
    table: str
    name: str
    dtypes: tuple[str, ...]
    trailing: str  # "", "A" (spatial axes), "2", "32", "D" (patch dim), "De", "L" (labels), "T" (tile)
    when: str = "always"  # metadata condition under which the column is present

    @property
    def path(self) -> str:
        return f"{TABLES[self.table][0]}/{self.name}"


COLUMNS = (
    Column("records", "bridge", ("<i8",), "2"),
    Column("records", "labels", ("<f4",), "L"),
    Column("records", "sha256", ("|u1",), "32"),
    Column("records", "report_source", ("|u1",), ""),
    Column("records", "image_size", ("<i8",), "A", "has_positions"),
    Column("records", "patch_size", ("<i8",), "A", "has_positions"),
    Column("records", "grid_shape", ("<i8",), "A", "has_positions"),
    Column("records", "pixel_spacing", ("<f8",), "A", "has_positions"),
    # format 1.1.0: 1 = the record's entity text is known, 0 = unknown (its strings are empty)
    Column("records", "entity_text_known", ("|u1",), "", "entity_text_partial"),
    Column("patches", "features", ("<f2", "<f4"), "D"),
    Column("patches", "scores", ("<f4",), ""),
    Column("patches", "positions", ("<i4",), "A", "has_positions"),
    Column("patches", "tiles", ("|u1", "<u2", "<f4"), "T", "has_tiles"),
    Column("patch_edges", "index", ("<i4",), "2"),
    Column("entities", "type", ("<i2",), ""),
    Column("entities", "assertion", ("|i1",), ""),
    Column("entities", "features", ("<f2", "<f4"), "De", "has_entity_features"),
    Column("relations", "index", ("<i4",), "2"),
    Column("relations", "type", ("<i2",), ""),
)
# string arrays: path -> (table whose rows they index, condition)
STRING_COLUMNS = {
    "/records/id": ("records", "always"),
    "/records/report": ("records", "always"),
    "/records/group_key": ("records", "always"),
    "/entities/text": ("entities", "has_entity_text"),
}


def column_present(when: str, meta) -> bool:
    if when == "always":
        return True
    if when == "has_positions":
        return meta.has_positions
    if when == "has_tiles":
        return meta.tile_shape is not None
    if when == "has_entity_features":
        return meta.entity_feature_dim > 0
    if when == "has_entity_text":
        return meta.has_entity_text
    if when == "entity_text_partial":
        return meta.has_entity_text and meta.entity_text_partial
    raise KeyError(when)


def trailing_shape(column: Column, meta) -> tuple[int, ...]:
    return {
        "": (),
        "2": (2,),
        "32": (32,),
        "A": (meta.spatial_axes,),
        "D": (meta.patch_feature_dim,),
        "De": (meta.entity_feature_dim,),
        "L": (len(meta.label_names),),
        "T": tuple(meta.tile_shape or ()),
    }[column.trailing]


def stored_dtype(column: Column, meta) -> np.dtype:
    if column.table == "patches" and column.name == "features":
        return np.dtype(meta.patch_feature_dtype)
    if column.table == "entities" and column.name == "features":
        return np.dtype(meta.entity_feature_dtype)
    if column.name == "tiles":
        return np.dtype(meta.tile_dtype)
    return np.dtype(column.dtypes[0])


def present_columns(meta):
    return [c for c in COLUMNS if column_present(c.when, meta)]


def present_string_columns(meta):
    return {p: t for p, (t, when) in STRING_COLUMNS.items() if column_present(when, meta)}
