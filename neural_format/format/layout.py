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

# stored codes of record fields (re-exported by neural_format.format.record)
REPORT_SOURCES = {None: 0, "ground_truth": 1, "generated": 2}
REPORT_SOURCE_NAMES = {code: name for name, code in REPORT_SOURCES.items()}
ASSERTION_CODES = {"present": 0, "absent": 1, "uncertain": 2}
UNKNOWN = -1  # entity type / assertion code when the source did not record it
MAX_RECORD_ID_BYTES = 1024  # a record ID's UTF-8 length (clause NF-R002)
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


class Codec(str, Enum):
    """How a column's stored rows relate to its :class:`~neural_format.format.record.Record` field.

    Read by :mod:`neural_format.format.record_columns` (writer batches, reader record and bulk paths) and
    :mod:`neural_format.format.hashing` (the canonical pre-image); each member names one rule.
    """
    ROWS = "rows"                    # ragged table: the field's array holds the record's rows as stored
    ROW = "row"                      # per-record: the field's array is the record's one row
    GEOMETRY = "geometry"            # per-record int64 row of ``Geometry.<attr>`` (field "geometry.<attr>")
    SPACING = "spacing"              # per-record float64 row of ``Geometry.pixel_spacing``; all-NaN = None
    BRIDGE = "bridge"                # per-record int64 pair; (-1, -1) = no bridge
    REPORT_SOURCE = "report_source"  # per-record uint8 code of :data:`REPORT_SOURCES`
    KNOWN_FLAG = "known_flag"        # per-record uint8: 1 when the field (a string column) is known, 0 = None
    DIGEST = "digest"                # per-record SHA-256 of the record (no field; written after the others)
    ID = "id"                        # string per record: the record ID
    TEXT = "text"                    # string per record; "" is stored for None
    SOURCED_TEXT = "sourced_text"    # string per record, None when the record's report_source is None
    ROW_TEXT = "row_text"            # strings per row of a ragged table (a record's list); [""] * rows for None


STRING_CODECS = (Codec.ID, Codec.TEXT, Codec.SOURCED_TEXT, Codec.ROW_TEXT)
ARRAY_CODECS = (Codec.ROWS, Codec.ROW)  # the field's array is the stored rows (the writer fits it: :class:`Fit`)


class Fit(str, Enum):
    """How the writer fits a Record field's array to its column (NF-W001; ``writer._normalise``).

    Every rule casts to the stored dtype and checks the trailing shape against the metadata; a
    ragged column other than its table's count column must also have the count column's rows.
    """
    EXACT = "exact"  # an array of shape (rows, *trailing) as given; a float array for an integer column is refused
    FLAT = "flat"    # any sequence, first reshaped to (-1, *trailing) (edge lists, code lists), then as EXACT
    CAST = "cast"    # any numbers, cast to the (float) stored dtype and flattened; the whole shape is compared


@dataclass(frozen=True)
class Column:
    """One dataset: ``table/name``, its dtype(s), its trailing shape, and the Record field it stores.

    ``trailing`` and ``when`` take the enum members or their string codes ("D", "has_positions");
    ``dtype_from`` names the metadata field that chooses the stored dtype among ``dtypes`` (None:
    ``dtypes[0]``). ``fit`` says how the writer fits the field's array to the column and
    ``missing`` what NF-W001 expects when the metadata switches the column on and the field is
    None (default: the shape). ``field`` is the :class:`~neural_format.format.record.Record` attribute (dotted for
    an attribute of ``geometry``), ``codec`` how its value is stored (:class:`Codec`), ``hash_as``
    its name in the canonical digest (:data:`neural_format.format.hashing.CANONICAL_FIELDS`, whose order
    is Appendix B's; None: not hashed by itself). A string column has ``dtypes`` ``()`` and is a
    string-array group (``data`` + ``offsets``) rather than one dataset.
    """
    table: str
    name: str
    dtypes: tuple[str, ...]
    trailing: Trailing
    when: Presence = Presence.ALWAYS  # metadata condition under which the column is present
    dtype_from: Optional[str] = None
    field: str = ""  # "" for a column that stores no field (the digest)
    codec: Codec = Codec.ROWS
    hash_as: Optional[str] = None
    fit: Fit = Fit.EXACT  # how the writer fits the field's array (codecs ROWS and ROW)
    missing: Optional[str] = None  # NF-W001's "expected" when an optional column's field is None (None: its shape)

    def __post_init__(self):
        object.__setattr__(self, "trailing", Trailing(self.trailing))
        object.__setattr__(self, "when", Presence(self.when))
        object.__setattr__(self, "codec", Codec(self.codec))
        object.__setattr__(self, "fit", Fit(self.fit))

    @property
    def path(self) -> str:
        return f"{TABLES[self.table][0]}/{self.name}"

    @property
    def is_string(self) -> bool:
        return self.codec in STRING_CODECS


_I8, _F8, _U1 = ("<i8",), ("<f8",), ("|u1",)
C, P, R, F = Codec, Presence, Trailing, Fit
COLUMNS = (
    Column("records", "bridge", _I8, R.PAIR, field="bridge", codec=C.BRIDGE, hash_as="bridge"),
    Column("records", "labels", ("<f4",), R.LABELS, field="labels", codec=C.ROW, hash_as="labels", fit=F.CAST),
    Column("records", "sha256", _U1, R.DIGEST, codec=C.DIGEST),
    Column("records", "report_source", _U1, R.SCALAR, field="report_source", codec=C.REPORT_SOURCE,
           hash_as="report_source"),
    Column("records", "image_size", _I8, R.SPATIAL_AXES, P.HAS_POSITIONS, field="geometry.image_size",
           codec=C.GEOMETRY, hash_as="image_size"),
    Column("records", "patch_size", _I8, R.SPATIAL_AXES, P.HAS_POSITIONS, field="geometry.patch_size",
           codec=C.GEOMETRY, hash_as="patch_size"),
    Column("records", "grid_shape", _I8, R.SPATIAL_AXES, P.HAS_POSITIONS, field="geometry.grid_shape",
           codec=C.GEOMETRY, hash_as="grid_shape"),
    Column("records", "pixel_spacing", _F8, R.SPATIAL_AXES, P.HAS_POSITIONS, field="geometry.pixel_spacing",
           codec=C.SPACING, hash_as="pixel_spacing"),
    # format 1.1.0: 1 = the record's entity text is known, 0 = unknown (its strings are empty); it
    # is hashed through entity_text (an unknown record hashes entity_text as absent)
    Column("records", "entity_text_known", _U1, R.SCALAR, P.ENTITY_TEXT_PARTIAL, field="entity_text",
           codec=C.KNOWN_FLAG),
    Column("patches", "features", ("<f2", "<f4"), R.PATCH_FEATURES, dtype_from="patch_feature_dtype",
           field="patch_features", hash_as="patch_features"),
    Column("patches", "scores", ("<f4",), R.SCALAR, field="patch_scores", hash_as="patch_scores", fit=F.CAST),
    Column("patches", "positions", ("<i4",), R.SPATIAL_AXES, P.HAS_POSITIONS, field="patch_positions",
           hash_as="patch_positions", missing="positions and geometry (collection has_positions)"),
    Column("patches", "tiles", ("|u1", "<u2", "<f4"), R.TILE, P.HAS_TILES, dtype_from="tile_dtype",
           field="tiles", hash_as="tiles", missing="tiles (collection declares tile_shape)"),
    Column("patch_edges", "index", ("<i4",), R.PAIR, field="patch_edges", hash_as="patch_edges", fit=F.FLAT),
    Column("entities", "type", ("<i2",), R.SCALAR, field="entity_types", hash_as="entity_types", fit=F.FLAT),
    Column("entities", "assertion", ("|i1",), R.SCALAR, field="entity_assertions", hash_as="entity_assertions",
           fit=F.FLAT),
    Column("entities", "features", ("<f2", "<f4"), R.ENTITY_FEATURES, P.HAS_ENTITY_FEATURES,
           dtype_from="entity_feature_dtype", field="entity_features", hash_as="entity_features"),
    Column("relations", "index", ("<i4",), R.PAIR, field="relations", hash_as="relations", fit=F.FLAT),
    Column("relations", "type", ("<i2",), R.SCALAR, field="relation_types", hash_as="relation_types", fit=F.FLAT),
)
# string arrays (groups of UTF-8 ``data`` and int64 ``offsets``), rows of ``table``
STRING_COLUMN_TABLE = (
    Column("records", "id", (), R.SCALAR, field="record_id", codec=C.ID, hash_as="record_id"),
    Column("records", "report", (), R.SCALAR, field="report", codec=C.SOURCED_TEXT, hash_as="report"),
    Column("records", "group_key", (), R.SCALAR, field="group_key", codec=C.TEXT, hash_as="group_key"),
    Column("entities", "text", (), R.SCALAR, P.HAS_ENTITY_TEXT, field="entity_text", codec=C.ROW_TEXT,
           hash_as="entity_text"),
)
del C, P, R, F
# string arrays: path -> (table whose rows they index, condition)
STRING_COLUMNS = {c.path: (c.table, c.when) for c in STRING_COLUMN_TABLE}
ALL_COLUMNS = COLUMNS + STRING_COLUMN_TABLE
TABLE_OF = {c.path: c.table for c in ALL_COLUMNS}  # column path -> the table whose rows it holds

# The order in which a batch's columns are appended to the file. HDF5 allocates chunks as they are
# first written, so this order is part of the bytes of every file (the conformance fixtures are
# compared byte for byte): it is the 1.0.0 writer's and must not change. A column added later needs
# no entry: unlisted columns are appended after the listed ones (in table order), before sha256.
WRITE_ORDER = (
    "/records/id", "/records/report", "/records/group_key", "/records/report_source", "/records/bridge",
    "/records/labels", "/records/image_size", "/records/patch_size", "/records/grid_shape",
    "/records/pixel_spacing", "/patches/positions", "/patches/features", "/patches/scores", "/patches/tiles",
    "/patches/offsets", "/patch_edges/index", "/patch_edges/offsets", "/entities/type", "/entities/assertion",
    "/entities/text", "/records/entity_text_known", "/entities/features", "/entities/offsets",
    "/relations/index", "/relations/type", "/relations/offsets",
)


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


def present_string_column_table(meta):
    return [c for c in STRING_COLUMN_TABLE if column_present(c.when, meta)]


def count_column(table: str) -> Column:
    """The always-present column of a ragged table whose rows a record counts (its offsets follow it)."""
    return next(c for c in COLUMNS if c.table == table and c.when is Presence.ALWAYS and c.codec is Codec.ROWS)


def present_string_columns(meta):
    return {p: t for p, (t, when) in STRING_COLUMNS.items() if column_present(when, meta)}
