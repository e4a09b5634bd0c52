"""Lazy reader for collection files.

Opening a file reads the root attributes, the metadata and the ``N + 1`` offsets of each ragged
table (a few small reads); after that ``reader[i]`` costs one slice read per column, with no scan.
:meth:`CollectionReader.read_all` reads every column in one pass and cuts records out of it as
views, for fast full loads.

The structural guards it runs on open and on read are :mod:`neural_format.files.guards` (shared with
the validator); their names stay importable from here.
"""
from __future__ import annotations

import os
from typing import Optional, Union

import h5py
import numpy as np

from ..format import layout
from .elements import reader_for, register_reader
from ..errors import NeuralFormatError, SchemaError
from .guards import (MAX_COMPRESSION_RATIO, STORAGE_SLACK_BYTES, allocation_guard, attr_text,  # noqa: F401
                     dataset_guard, is_filelike, link_guard, load_offsets, open_h5, read_metadata, read_root,
                     storage_guard, storage_layout_problems)  # re-exported: the reader's guards before 0.2
from .record_sequence import RecordSequence
from ..internals.populated import MIN_BYTES, populated_empty
from ..format.record import Record
from ..format.record_columns import Columns, record_fields, records_from_columns
from ..version import FORMAT_NAME, parse_version

MAX_RECORD_BYTES = 1 << 30  # one record larger than this is refused before allocation (NF-H006)


def _decode_at_boundaries(raw: bytes, cuts: np.ndarray):
    """Decode ``raw`` once and map the byte ``cuts`` to character indices, or None.

    Decoding a blob once and slicing the text is several times faster than decoding each string.
    It is only the same thing when the whole blob is valid UTF-8 and every cut falls on a
    character boundary (never on a continuation byte ``10xxxxxx``); otherwise None is returned and
    the caller decodes string by string, which names the bad string.
    """
    if raw.isascii():
        return raw.decode("ascii"), cuts.tolist()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    bytes_ = np.frombuffer(raw, np.uint8)
    starts = (bytes_ & 0xC0) != 0x80  # bytes that begin a character
    inner = cuts[(cuts > 0) & (cuts < len(raw))]
    if not starts[inner].all():
        return None
    chars = np.zeros(len(raw) + 1, np.int64)
    np.cumsum(starts, out=chars[1:])
    return text, chars[cuts].tolist()


def uncached(ds: h5py.Dataset) -> h5py.Dataset:
    """A second handle on ``ds`` with HDF5's chunk cache turned off, for bulk reads.

    Through the default cache (1 MiB per dataset) every chunk of a large slice is first read into
    the cache and then copied out; with the cache off, HDF5 reads whole chunks straight into the
    destination. On a 0.8 GB column this measured 1.39 s with the cache and 0.35 s without
    (docs/benchmarks-format.md). Per-record reads keep the cached handle: they touch a chunk many
    times in a row.
    """
    access = h5py.h5p.create(h5py.h5p.DATASET_ACCESS)
    access.set_chunk_cache(0, 0, 1.0)
    parent, _, name = ds.name.rpartition("/")
    return h5py.Dataset(h5py.h5d.open(ds.file[parent or "/"].id, name.encode("utf-8"), access))


class _StringArray:
    """A string-array element: UTF-8 ``data`` bytes cut by int64 ``offsets``."""

    def __init__(self, f: h5py.File, path: str, count: Optional[int]):
        self.path = path
        self.data = dataset_guard(f, f"{path}/data", ("|u1",), ())
        self.offsets = load_offsets(f, f"{path}/offsets", count, self.data.shape[0])
        widest = int(np.diff(self.offsets).max(initial=0))
        if widest > MAX_RECORD_BYTES:
            raise SchemaError("NF-H006", "a string would exceed the allocation limit", location=f"{path}/offsets",
                              expected=f"<= {MAX_RECORD_BYTES} bytes", found=widest)

    def __len__(self) -> int:
        return self.offsets.shape[0] - 1

    def over(self, data) -> "_StringArray":
        """The same strings read from ``data`` (e.g. a memory-mapped copy of ``data``'s bytes)."""
        other = object.__new__(type(self))
        other.__dict__.update(self.__dict__, data=data)
        return other

    def at(self, positions) -> list[str]:
        """Strings at ``positions``, in that order; one pass of slices when the bytes are in memory."""
        if not isinstance(self.data, bytes):
            return [self.get(i) for i in positions]
        where = np.asarray(positions, np.int64)
        raw = self.data
        try:
            return [raw[a:b].decode("utf-8")
                    for a, b in zip(self.offsets[where].tolist(), self.offsets[where + 1].tolist())]
        except UnicodeDecodeError:
            return [self.get(i) for i in positions]  # raises the coded error naming the string

    def get(self, i: int) -> str:
        a, b = int(self.offsets[i]), int(self.offsets[i + 1])
        return self._decode(self.data[a:b] if b > a else b"", i)

    def range(self, start: int, stop: int, errors: str = "strict") -> list[str]:
        """Strings ``start:stop``; ``errors="surrogateescape"`` keeps undecodable bytes (for the validator)."""
        a, b = int(self.offsets[start]), int(self.offsets[stop])
        raw = bytes(self.data[a:b]) if b > a else b""
        rebased = self.offsets[start:stop + 1] - a
        text = _decode_at_boundaries(raw, rebased)
        if text is not None:
            text, at = text
            return [text[at[k]:at[k + 1]] for k in range(stop - start)]
        cuts = rebased.tolist()
        if errors != "strict":
            return [raw[cuts[k]:cuts[k + 1]].decode("utf-8", errors) for k in range(stop - start)]
        return [self._decode(raw[cuts[k]:cuts[k + 1]], start + k) for k in range(stop - start)]

    def all(self) -> list[str]:
        return self.range(0, len(self))

    def _decode(self, raw, i: int) -> str:
        try:
            return bytes(raw).decode("utf-8")
        except UnicodeDecodeError:
            raise SchemaError("NF-R014", f"string {i} is not valid UTF-8", location=self.path) from None


class CollectionReader(RecordSequence):
    """Read-only, lazy view of one collection file.

    ``len(reader)``, ``reader[i]``, ``reader[a:b]``, ``reader.get(record_id)`` and iteration
    return :class:`~neural_format.format.record.Record` objects. Use as a context manager, or call
    :meth:`close`. Each process must open its own reader (h5py handles are not fork-safe).
    """

    def __init__(self, source: Union[str, os.PathLike, object], *, verify: bool = False,
                 warn_newer_minor: bool = True):
        self.source = source
        self._closed = False
        self._file = open_h5(source)
        try:
            self.version = read_root(self._file, warn=warn_newer_minor)
            self.meta = read_metadata(self._file)
            self._open_columns()
        except NeuralFormatError:
            self._file.close()
            raise
        except Exception as exc:  # damaged internals surface as OSError/KeyError/... from h5py
            self._file.close()
            raise SchemaError("NF-F001", f"file structure unreadable: {type(exc).__name__}: {exc}",
                              location="/") from None
        self._verify = verify
        self._bulk: dict[str, h5py.Dataset] = {}
        self._id_index: Optional[dict[str, int]] = None

    @property
    def storage(self):
        """This file's compression, gzip level and chunk size (:mod:`neural_format.files.storage`):
        what ``reprune`` and ``merge`` keep for their outputs."""
        from .storage import read_storage
        return read_storage(self._file)

    def _open_columns(self) -> None:
        f, meta = self._file, self.meta
        for table, (group_path, encoding) in layout.TABLES.items():
            link_guard(f, group_path)
        self.ids = _StringArray(f, "/records/id", None)
        n = len(self.ids)
        self._n = n
        self.cols: dict[str, h5py.Dataset] = {}
        for column in layout.present_columns(meta):
            ds = dataset_guard(f, column.path, (layout.stored_dtype(column, meta).str,),
                               layout.trailing_shape(column, meta))
            if column.table == "records" and ds.shape[0] != n:
                raise SchemaError("NF-R001", "per-record column length differs from the record count",
                                  location=column.path, expected=n, found=ds.shape[0])
            self.cols[column.path] = ds
        self.offsets: dict[str, np.ndarray] = {}
        for table in layout.RAGGED_TABLES:
            group_path = layout.TABLES[table][0]
            rows = {self.cols[c.path].shape[0] for c in layout.present_columns(meta) if c.table == table}
            if table == "entities" and meta.has_entity_text:
                pass  # entity text rows are checked through its own offsets below
            if len(rows) > 1:
                raise SchemaError("NF-S003", "columns of one table disagree on their row count",
                                  location=group_path, expected="equal lengths", found=sorted(rows))
            self.offsets[table] = load_offsets(f, f"{group_path}/offsets", n, rows.pop() if rows else 0)
        self.strings = {p: _StringArray(f, p, n if t == "records" else int(self.offsets[t][-1]))
                        for p, t in layout.present_string_columns(meta).items() if p != "/records/id"}
        for path, ds in self.cols.items():
            row_bytes = ds.dtype.itemsize * int(np.prod(ds.shape[1:], dtype=np.int64))
            table = layout.TABLE_OF[path]
            if table != "records":
                widest = int(np.diff(self.offsets[table]).max(initial=0))
                if widest * row_bytes > MAX_RECORD_BYTES:
                    raise SchemaError("NF-H006", "a record's slice would exceed the allocation limit",
                                      location=path, expected=f"<= {MAX_RECORD_BYTES} bytes",
                                      found=widest * row_bytes)

    # -- sequence API (len, [i], [a:b] and iteration come from RecordSequence) ------------

    def get(self, record_id: str) -> Record:
        """The record with this ID."""
        self._require_open()
        if self._id_index is None:
            self._id_index = {rid: i for i, rid in enumerate(self.ids.all())}
        try:
            return self._record(self._id_index[record_id])
        except KeyError:
            raise KeyError(f"no record with ID {record_id!r}") from None

    def record_ids(self) -> list[str]:
        self._require_open()
        return self.ids.all()

    def _require_open(self) -> None:
        if getattr(self, "_closed", False):
            from ..errors import ClosedError
            raise ClosedError("NF-E-CLOSED", "the reader is closed", location=str(self.source)[:200],
                              expected="an open reader", found="closed")

    @property
    def label_names(self) -> list[str]:
        return list(self.meta.label_names)

    def stored_hashes(self) -> np.ndarray:
        self._require_open()
        return self.cols["/records/sha256"][()]

    # -- one record -----------------------------------------------------------------------
    def _slice(self, path: str, table: str, i: int) -> np.ndarray:
        off = self.offsets[table]
        a, b = int(off[i]), int(off[i + 1])
        ds = self.cols[path]
        try:
            return ds[a:b]
        except Exception as exc:
            raise SchemaError("NF-F001", f"data unreadable: {type(exc).__name__}: {exc}", location=path) from None

    def _row(self, path: str, i: int) -> np.ndarray:
        try:
            return self.cols[path][i]
        except Exception as exc:
            raise SchemaError("NF-F001", f"data unreadable: {type(exc).__name__}: {exc}", location=path) from None

    def _record(self, i: int) -> Record:
        self._require_open()

        def string(column):
            if column.path == "/records/id":
                return self.ids.get(i)
            strings = self.strings[column.path]
            if column.table == "records":
                return strings.get(i)
            off = self.offsets[column.table]
            return strings.range(int(off[i]), int(off[i + 1]))

        record = Record(**record_fields(self.meta, lambda path: self._row(path, i),
                                        lambda path, table: self._slice(path, table, i), string))
        if self._verify:
            from .integrity import check_record_hash
            check_record_hash(record, self._row("/records/sha256", i).tobytes(), i)
        return record

    # -- bulk -------------------------------------------------------------------------------
    def columns(self) -> Columns:
        """Every column read whole, keyed by its path in the file, plus offsets and strings."""
        return self.read_columns(0, self._n)

    def read_columns(self, start: int, stop: int, *, string_errors: str = "strict",
                     buffers: Optional[dict] = None) -> Columns:
        """Bulk-read the columns of records ``start:stop``: one slice read per dataset.

        Keys are dataset paths; ragged tables get their offsets rebased to 0 under
        ``<table>/offsets``; string arrays are decoded to lists of ``str``. With ``buffers`` (a
        dict the caller keeps between calls), large columns are read into arrays kept there and
        reused by the next call: the returned views are then valid only until that call (for
        passes over a file block by block, such as validation).
        """
        self._require_open()
        start, stop, _ = slice(start, stop).indices(self._n)
        stop = max(start, stop)
        out: Columns = {}
        for table, off in self.offsets.items():
            out[f"{layout.TABLES[table][0]}/offsets"] = off[start:stop + 1] - off[start]
        for path in self.cols:
            out[path] = self.read_rows(path, start, stop, buffers)
        out["/records/id"] = self.ids.range(start, stop, string_errors)
        for path, strings in self.strings.items():
            table = layout.STRING_COLUMNS[path][0]
            if table == "records":
                out[path] = strings.range(start, stop, string_errors)
            else:
                off = self.offsets[table]
                out[path] = strings.range(int(off[start]), int(off[stop]), string_errors)
        return out

    def read_rows(self, path: str, start: int, stop: int, buffers: Optional[dict] = None) -> np.ndarray:
        """The rows of column ``path`` that records ``start:stop`` own, in one read.

        A read of at least :data:`~neural_format.internals.populated.MIN_BYTES` goes through the uncached
        handle into populated memory; with ``buffers`` (a dict the caller keeps between calls) that
        memory is kept there and reused by the next call, so the returned view is valid only until
        then.
        """
        ds, table = self.cols[path], layout.TABLE_OF[path]
        a, b = (start, stop) if table == "records" else (int(self.offsets[table][start]),
                                                          int(self.offsets[table][stop]))
        try:
            if b <= a:
                return np.zeros((0, *ds.shape[1:]), ds.dtype)
            row_bytes = ds.dtype.itemsize * int(np.prod(ds.shape[1:], dtype=np.int64))
            if (b - a) * row_bytes < MIN_BYTES:
                return ds[a:b]
            if buffers is None:
                rows = populated_empty((b - a, *ds.shape[1:]), ds.dtype)
            else:
                kept = buffers.get(path)
                if kept is None or kept.shape[0] < b - a:
                    kept = buffers[path] = populated_empty((b - a, *ds.shape[1:]), ds.dtype)
                rows = kept[:b - a]
            self._uncached(path).read_direct(rows, np.s_[a:b])
            return rows
        except Exception as exc:
            raise SchemaError("NF-F001", f"data unreadable: {type(exc).__name__}: {exc}", location=path) from None

    def _uncached(self, path: str) -> h5py.Dataset:
        handle = self._bulk.get(path)
        if handle is None:
            handle = self._bulk[path] = uncached(self.cols[path])
        return handle

    def records_from_columns(self, c: Columns) -> list[Record]:
        """Cut records out of :meth:`read_columns` output; arrays are views into the columns."""
        return records_from_columns(self.meta, c)

    def read_range(self, start: int, stop: int) -> list[Record]:
        """Records ``start:stop`` read in bulk (one slice read per column)."""
        return self.records_from_columns(self.read_columns(start, stop))

    def read_all(self) -> list[Record]:
        """All records, read column by column in one pass; arrays are views into the columns."""
        return self.read_range(0, self._n)

    # -- lifecycle ------------------------------------------------------------------------
    def close(self) -> None:
        self._closed = True
        self._file.close()

    def __enter__(self) -> "CollectionReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<CollectionReader {self.source!s} records={self._n} format={self.version}>"


def peek_version(source):
    """The file's format version, read from the root attributes only (NF-V001)."""
    with open_h5(source) as f:
        fmt = attr_text(f, "format")
        if fmt != FORMAT_NAME:
            raise SchemaError("NF-V001", "root attribute 'format' is missing or wrong", location="/@format",
                              expected=FORMAT_NAME, found=fmt)
        return parse_version(attr_text(f, "format_version"))


def open_collection_file(source, **kwargs):
    """Open a collection file; a file of another major is handed to its registered legacy reader.

    Files of the current major are read by :class:`CollectionReader`. For an older major, the
    read-only reader registered with :func:`neural_format.files.elements.register_reader` for
    ``("neural-collection", major)`` is used (clause NF-V004); without one, the version rule fails.
    """
    from ..version import CURRENT
    if isinstance(source, (str, os.PathLike)):
        version = peek_version(source)
        if version.major < CURRENT.major:
            legacy = reader_for(layout.ROOT_ENCODING[0], version.major)
            if legacy is not None:
                return legacy(source, **kwargs)
    return CollectionReader(source, **kwargs)


# the current reader handles every 1.x file; a retired major's reader registers itself likewise
register_reader(layout.ROOT_ENCODING[0], 1)(CollectionReader)
