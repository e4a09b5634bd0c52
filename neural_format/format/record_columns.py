"""Records <-> columns, driven by the column table (:data:`neural_format.format.layout.COLUMNS`).

Each :class:`~neural_format.format.layout.Column` names the Record field it stores and its
:class:`~neural_format.format.layout.Codec`; this module holds the one rule per codec in each direction:

- :func:`batch_columns`: a batch of records -> the columns the writer appends (and hashes);
- :func:`records_from_columns`: bulk-read columns -> records (the reader's ``read_all`` path);
- :func:`record_fields`: one record's per-column values -> the Record's fields (the reader's record path).

All work is per column and per batch; the only per-record step is the Record constructor, called
through ``map`` with positional arguments. Hashing (:mod:`neural_format.format.hashing`) reads the same
table for its field order and encodings.
"""
from __future__ import annotations

from dataclasses import fields as dataclass_fields
from operator import attrgetter
from typing import Any, Callable, Optional

import numpy as np

from . import layout
from .layout import Codec, Column
from .record import REPORT_SOURCE_NAMES, REPORT_SOURCES, Geometry, Record

RECORD_FIELDS = tuple(f.name for f in dataclass_fields(Record))

# Columns keyed by path: numpy arrays, and lists of str for the string columns. Which of the two a
# path holds is the column table's word (Column.dtypes == () for strings), so the values are Any.
Columns = dict[str, Any]
# One record's fields by name, as the column table decodes them (the arguments of Record).
RecordFields = dict[str, Any]


def offsets_key(table: str) -> str:
    return f"{layout.TABLES[table][0]}/offsets"


def _attribute(column: Column) -> str:
    """The attribute of ``geometry`` a geometry column stores (field ``geometry.<attr>``)."""
    return column.field.partition(".")[2]


# -- records -> columns (writer) -----------------------------------------------------------
def batch_columns(meta, batch: list[Record], gather: Callable[[str, list], np.ndarray]) -> Columns:
    """The batch as columns, keyed like :meth:`CollectionReader.read_columns` (offsets from 0).

    Records are normalised (stored dtypes, shapes checked); ``gather(path, arrays)`` concatenates a
    wide ragged column's per-record arrays (the writer keeps those buffers between batches). Keys come in
    :data:`~neural_format.format.layout.WRITE_ORDER`, the order the writer appends them.
    """
    n = len(batch)
    out: Columns = {}
    counts = {}
    for table in layout.RAGGED_TABLES:
        field = layout.count_column(table).field
        counts[table] = list(map(len, map(attrgetter(field), batch)))
    for column in layout.present_columns(meta) + layout.present_string_column_table(meta):
        codec = column.codec
        if codec is Codec.DIGEST:
            continue
        if codec is Codec.ROWS:
            parts = list(map(attrgetter(column.field), batch))
            # the wide columns (features, tiles: their dtype is the metadata's) reuse the writer's buffers
            out[column.path] = gather(column.path, parts) if column.dtype_from else np.concatenate(parts)
        elif codec is Codec.ROW:
            out[column.path] = np.stack(list(map(attrgetter(column.field), batch))).reshape(n, -1)
        elif codec is Codec.GEOMETRY:
            out[column.path] = np.array(list(map(attrgetter(column.field), batch)), np.int64).reshape(n, meta.spatial_axes)
        elif codec is Codec.SPACING:
            A = meta.spatial_axes
            values = list(map(attrgetter(column.field), batch))
            out[column.path] = np.array([v if v is not None else (np.nan,) * A for v in values],
                                        np.float64).reshape(n, A)
        elif codec is Codec.BRIDGE:
            out[column.path] = np.array([b if b is not None else (-1, -1) for b in map(attrgetter(column.field), batch)],
                                        np.int64).reshape(n, 2)
        elif codec is Codec.REPORT_SOURCE:
            out[column.path] = np.array([REPORT_SOURCES[s] for s in map(attrgetter(column.field), batch)], np.uint8)
        elif codec is Codec.KNOWN_FLAG:
            out[column.path] = np.array([v is not None for v in map(attrgetter(column.field), batch)], np.uint8)
        elif codec is Codec.ID:
            out[column.path] = list(map(attrgetter(column.field), batch))
        elif codec in (Codec.TEXT, Codec.SOURCED_TEXT):
            out[column.path] = [v or "" for v in map(attrgetter(column.field), batch)]
        elif codec is Codec.ROW_TEXT:
            # an unknown record's strings are stored empty (NF-R021)
            values = list(map(attrgetter(column.field), batch))
            out[column.path] = [t for v, rows in zip(values, counts[column.table])
                                for t in (v if v is not None else [""] * rows)]
        else:  # pragma: no cover - a new codec must be given its rule here
            raise AssertionError(f"no writer rule for codec {codec!r}")
    for table in layout.RAGGED_TABLES:
        offsets = np.zeros(n + 1, np.int64)
        np.cumsum(counts[table], out=offsets[1:])
        out[offsets_key(table)] = offsets
    rank = {path: k for k, path in enumerate(layout.WRITE_ORDER)}
    return {path: out[path] for path in sorted(out, key=lambda p: rank.get(p, len(rank)))}


# -- columns -> records (reader) -------------------------------------------------------------
def shared_geometries(c: Columns) -> list[Geometry]:
    """Each record's :class:`Geometry` from bulk-read columns: one frozen object per distinct geometry
    row, shared by the records that have it (a collection usually holds a handful; building 10,000
    equal ones was a sizeable part of a full read). The columns are the table's ``GEOMETRY`` ones
    (ints) and its ``SPACING`` one (all-NaN = None)."""
    ints = [column for column in layout.COLUMNS if column.codec is Codec.GEOMETRY]
    [spacing_column] = [column for column in layout.COLUMNS if column.codec is Codec.SPACING]
    spacing = np.ascontiguousarray(c[spacing_column.path], np.float64)
    rows = np.concatenate([c[column.path] for column in ints] + [spacing.view(np.int64)], axis=1)
    distinct, inverse = np.unique(rows, axis=0, return_inverse=True)
    A = spacing.shape[1]
    shared = []
    for row in distinct:
        values = row[:len(ints) * A].tolist()
        space = row[len(ints) * A:].view(np.float64)
        fields: dict[str, Any] = {_attribute(column): tuple(values[k * A:(k + 1) * A])
                                for k, column in enumerate(ints)}
        fields[_attribute(spacing_column)] = None if np.isnan(space).all() else tuple(space.tolist())
        shared.append(Geometry(**fields))
    return [shared[k] for k in inverse.reshape(-1).tolist()]


def records_from_columns(meta, c: dict) -> list[Record]:
    """Cut records out of bulk-read columns; arrays are views into the columns."""
    n = len(c["/records/id"])
    values: dict[str, list] = {}
    known: dict[str, list] = {}
    absent = [None] * n
    for column in layout.COLUMNS + layout.STRING_COLUMN_TABLE:
        codec, field = column.codec, column.field
        if codec is Codec.DIGEST:
            continue
        if column.path not in c:
            values.setdefault(field.partition(".")[0], absent)
            continue
        data = c[column.path]
        if codec is Codec.ROWS:
            o = c[offsets_key(column.table)].tolist()
            values[field] = [data[o[i]:o[i + 1]] for i in range(n)]
        elif codec is Codec.ROW:
            values[field] = list(data)
        elif codec is Codec.GEOMETRY or codec is Codec.SPACING:
            if "geometry" not in values or values["geometry"] is absent:
                values["geometry"] = shared_geometries(c) if n else []
        elif codec is Codec.BRIDGE:
            values[field] = [None if b[0] < 0 and b[1] < 0 else (b[0], b[1]) for b in data.tolist()]
        elif codec is Codec.REPORT_SOURCE:
            values[field] = [REPORT_SOURCE_NAMES.get(code, "unknown") for code in data.tolist()]
        elif codec is Codec.KNOWN_FLAG:
            known[field] = data.tolist()
        elif codec is Codec.ID:
            values[field] = data
        elif codec is Codec.TEXT:
            values[field] = [v or None for v in data]
        elif codec is Codec.SOURCED_TEXT:
            values[field] = data  # None where the record has no report_source: below
        elif codec is Codec.ROW_TEXT:
            o = c[offsets_key(column.table)].tolist()
            values[field] = [data[o[i]:o[i + 1]] for i in range(n)]
        else:  # pragma: no cover
            raise AssertionError(f"no reader rule for codec {codec!r}")
    # format 1.1.0: a record whose entity text is unknown reads None, not its (empty) strings
    for field, flags in known.items():
        values[field] = [v if flag else None for v, flag in zip(values[field], flags)]
    for column in layout.STRING_COLUMN_TABLE:
        if column.codec is Codec.SOURCED_TEXT and values[column.field] is not absent:
            values[column.field] = [v if s else None for v, s in zip(values[column.field], values["report_source"])]
    return list(map(Record, *(values.get(name, absent) for name in RECORD_FIELDS)))


def record_fields(meta, row: Callable[[str], np.ndarray], rows: Callable[[str, str], np.ndarray],
                  string: Callable[[Column], object]) -> RecordFields:
    """One record's fields from the reader's accessors: ``row(path)`` (a per-record column's row),
    ``rows(path, table)`` (a ragged column's slice) and ``string(column)`` (a string column's
    value for the record: a str, or the list of a ragged table's strings)."""
    out: RecordFields = {}
    known: dict[str, bool] = {}
    geometry: dict[str, Any] = {}
    for column in layout.present_columns(meta) + layout.present_string_column_table(meta):
        codec, field = column.codec, column.field
        if codec is Codec.DIGEST:
            continue
        if codec is Codec.ROWS:
            out[field] = rows(column.path, column.table)
        elif codec is Codec.ROW:
            out[field] = row(column.path)
        elif codec is Codec.GEOMETRY:
            geometry[_attribute(column)] = tuple(int(v) for v in row(column.path))
        elif codec is Codec.SPACING:
            spacing = row(column.path)
            geometry[_attribute(column)] = None if np.isnan(spacing).all() else tuple(float(v) for v in spacing)
        elif codec is Codec.BRIDGE:
            b = row(column.path)
            out[field] = None if b[0] < 0 and b[1] < 0 else (int(b[0]), int(b[1]))
        elif codec is Codec.REPORT_SOURCE:
            out[field] = REPORT_SOURCE_NAMES.get(int(row(column.path)), "unknown")
        elif codec is Codec.KNOWN_FLAG:
            known[field] = bool(row(column.path))
        elif codec is Codec.ID:
            out[field] = string(column)
        elif codec is Codec.TEXT:
            out[field] = string(column) or None
        elif codec is Codec.SOURCED_TEXT:
            out[field] = column  # decided below, once report_source is known
        elif codec is Codec.ROW_TEXT:
            out[field] = column
        else:  # pragma: no cover
            raise AssertionError(f"no reader rule for codec {codec!r}")
    for field, value in list(out.items()):
        if isinstance(value, Column):  # strings read only when the record has them
            wanted = out.get("report_source") if value.codec is Codec.SOURCED_TEXT else known.get(field, True)
            out[field] = string(value) if wanted else None
    if geometry:
        out["geometry"] = Geometry(**geometry)
    return out


def stored_value(column: Column, record: Record) -> Optional[object]:
    """The Record's value of a table column, for hashing one record (None: absent)."""
    if column.codec in (Codec.GEOMETRY, Codec.SPACING):
        return None if record.geometry is None else getattr(record.geometry, _attribute(column))
    return getattr(record, column.field)
