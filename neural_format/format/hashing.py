"""Canonical per-record SHA-256 (spec clause NF-I001; the exact definition is spec Appendix B).

The digest is SHA-256 over the prefix ``neural-graph-record-v1 NUL`` and, for each field of
:data:`CANONICAL_FIELDS` in order, ``name NUL dtype NUL shape(int64 LE) data`` where ``data`` is the
C-order little-endian bytes, or ``name NUL "absent" NUL`` when the field is absent. Strings are
UTF-8 (``|u1``); entity text is its UTF-8 bytes followed by the record's M+1 int64 offsets rebased
to 0, as one ``|u1`` array, or ``absent`` for a record whose text is unknown (a record with
``entity_text`` None; in a file, ``/records/entity_text_known`` 0); ``report_source`` is a ``|u1`` array of shape (1,). Every NaN is
hashed as the positive quiet NaN with a zero payload. Because the digest covers dtypes and
shapes, a record hashes alike in memory and after a round trip through the file.
:func:`record_preimage` returns the hashed bytes; ``spec/test-vectors/`` holds worked examples.
"""
from __future__ import annotations

import hashlib
import struct
from itertools import accumulate
from typing import TYPE_CHECKING, Iterator, Optional

import numpy as np

if TYPE_CHECKING:
    from .layout import Column

HASH_PREFIX = b"neural-graph-record-v1\x00"
_DIRECT_BYTES = 4096

CANONICAL_FIELDS = (
    "record_id", "patch_features", "patch_scores", "patch_positions", "patch_edges", "tiles",
    "entity_text", "entity_types", "entity_assertions", "entity_features", "relations",
    "relation_types", "bridge", "labels", "image_size", "patch_size", "grid_shape",
    "pixel_spacing", "report", "report_source", "group_key",
)


_NAME_TAGS = {name: name.encode("ascii") + b"\x00" for name in CANONICAL_FIELDS}
_DTYPE_TAGS: dict[str, bytes] = {}


def encode_strings(values: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """UTF-8 bytes of all strings concatenated, with int64 offsets (len + 1)."""
    offsets = np.zeros(len(values) + 1, np.int64)
    text = "".join(values)
    if text.isascii():  # one character per byte: encode once, lengths in characters are lengths in bytes
        blob = text.encode("ascii")
        lengths = [len(v) for v in values]
    elif "\x00" not in text:  # encode once with NUL separators, then find and drop them
        joined = np.frombuffer("\x00".join(values).encode("utf-8"), np.uint8)
        separators = np.flatnonzero(joined == 0)
        keep = np.ones(joined.size, bool)
        keep[separators] = False
        offsets[1:] = np.append(separators, joined.size) - np.arange(len(values))
        return joined[keep], offsets
    else:
        encoded = [v.encode("utf-8") for v in values]
        blob = b"".join(encoded)
        lengths = [len(b) for b in encoded]
    if lengths:
        np.cumsum(lengths, out=offsets[1:])
    return np.frombuffer(blob, np.uint8), offsets


_INT64_PACKERS: dict[int, struct.Struct] = {}
_SMALL_FLOAT_ITEMS = 64  # below this a Python NaN test beats a NumPy reduction's call overhead


def _int64_bytes(shape: tuple[int, ...]) -> bytes:
    """Little-endian int64 bytes of a shape or of string offsets (packers cached per length)."""
    if len(shape) > 8:  # long offset lists: not worth a cached packer each
        return np.asarray(shape, "<i8").tobytes()
    packer = _INT64_PACKERS.get(len(shape))
    if packer is None:
        packer = _INT64_PACKERS[len(shape)] = struct.Struct(f"<{len(shape)}q")
    return packer.pack(*shape)


def _dtype_tag(dtype: np.dtype) -> bytes:
    tag = _DTYPE_TAGS.get(dtype.str)
    if tag is None:
        tag = _DTYPE_TAGS[dtype.str] = dtype.str.encode("ascii") + b"\x00"
    return tag


_NAN_SCAN_ITEMS = 1 << 20  # elements per step of the bitwise NaN scan (bounds its temporary)


def _has_nan(array: np.ndarray) -> bool:
    """Whether a contiguous float array holds a NaN.

    A float is NaN exactly when its bits without the sign exceed those of +inf, so the largest
    such value answers for the whole array: one integer max per step, about 0.5 ns an element
    for float16 where ``isnan(sum)`` costs 3.5 ns.
    """
    if array.size <= _SMALL_FLOAT_ITEMS:
        return any(v != v for v in array.reshape(-1).tolist())
    if array.dtype.itemsize not in (2, 4, 8):
        return bool(np.isnan(array.sum()))
    bits = array.reshape(-1).view(array.dtype.str.replace("f", "u"))
    magnitude = bits.dtype.type(np.iinfo(bits.dtype).max >> 1)
    inf = bits.dtype.type(np.array(np.inf, array.dtype).view(bits.dtype))
    for start in range(0, bits.size, _NAN_SCAN_ITEMS):
        if np.max(bits[start:start + _NAN_SCAN_ITEMS] & magnitude) > inf:
            return True
    return False


def _canonical(array: np.ndarray) -> np.ndarray:
    if not array.flags.c_contiguous:
        array = np.ascontiguousarray(array)
    if array.dtype.byteorder == ">":
        array = array.astype(array.dtype.newbyteorder("<"))
    if array.dtype.kind == "f" and array.size and _has_nan(array):
        array = np.where(np.isnan(array), np.array(np.nan, array.dtype), array)
    return array


def _entity_text_bytes(values) -> bytes:
    """The strings' UTF-8 bytes, then their int64 offsets: :func:`encode_strings` without NumPy."""
    encoded = [v.encode("utf-8") for v in values]
    offsets = list(accumulate((len(b) for b in encoded), initial=0))
    return b"".join(encoded) + _int64_bytes(tuple(offsets))


def _hash_plan() -> tuple[tuple[str, Column], ...]:
    """(canonical name, column) in Appendix B's order: each name's column from the layout table."""
    from .layout import ALL_COLUMNS
    by_name = {c.hash_as: c for c in ALL_COLUMNS if c.hash_as is not None}
    if set(by_name) != set(CANONICAL_FIELDS) or len(by_name) != sum(c.hash_as is not None for c in ALL_COLUMNS):
        raise ImportError(f"layout hash_as names {sorted(by_name)} differ from CANONICAL_FIELDS")  # a broken table
    return tuple((name, by_name[name]) for name in CANONICAL_FIELDS)


def _known_flags() -> dict:
    """field -> path of the column saying, per record, whether that field is known (format 1.1.0)."""
    from .layout import COLUMNS, Codec
    return {c.field: c.path for c in COLUMNS if c.codec is Codec.KNOWN_FLAG}


_PLAN = _hash_plan()
_KNOWN_FLAGS = _known_flags()


def _record_getter(column):
    """A function giving a record's canonical value of ``column``: an array, ``bytes`` (1-D uint8) or None."""
    from .layout import REPORT_SOURCES, Codec
    codec, field = column.codec, column.field
    attribute = field.partition(".")[2]
    if codec in (Codec.ID, Codec.TEXT, Codec.SOURCED_TEXT):
        return lambda r: _utf8(getattr(r, field))
    if codec is Codec.ROW_TEXT:
        return lambda r: None if getattr(r, field) is None else _entity_text_bytes(getattr(r, field))
    if codec in (Codec.ROWS, Codec.ROW):
        return lambda r: getattr(r, field)
    if codec is Codec.GEOMETRY:
        return lambda r: None if r.geometry is None else np.asarray(getattr(r.geometry, attribute), np.int64)
    if codec is Codec.SPACING:
        def spacing(r):
            value = None if r.geometry is None else getattr(r.geometry, attribute)
            return None if value is None else np.asarray(value, np.float64)
        return spacing
    if codec is Codec.BRIDGE:
        return lambda r: _INT64.pack(*getattr(r, field)) if getattr(r, field) is not None else _NO_BRIDGE
    if codec is Codec.REPORT_SOURCE:
        # a damaged file can hold a code outside REPORT_SOURCES (read back as "unknown"): hash it as
        # 255, which no valid record hashes to, so the mismatch is reported instead of a KeyError
        return lambda r: bytes((REPORT_SOURCES.get(getattr(r, field), 255),))
    raise AssertionError(f"no hashing rule for codec {codec!r}")  # pragma: no cover


_GETTERS: tuple = ()


def _fields(record) -> Iterator[tuple[str, object]]:
    """Each canonical field of ``record`` in order: an array, ``bytes`` (1-D uint8 data) or None."""
    global _GETTERS
    if not _GETTERS:
        _GETTERS = tuple((name, _record_getter(column)) for name, column in _PLAN)
    for name, get in _GETTERS:
        yield name, get(record)


def _utf8(value: Optional[str]) -> Optional[bytes]:
    return None if value is None else value.encode("utf-8")


_INT64 = struct.Struct("<2q")
_NO_BRIDGE = _INT64.pack(-1, -1)
_U1_TAG = b"|u1\x00"
# the bridge is hashed as an int64 array of shape (2,)
_BRIDGE_HEAD = b"<i8\x00" + struct.pack("<1q", 2)


def _feed_record(record, update) -> None:
    """Feed the canonical pre-image of ``record`` to ``update`` (spec Appendix B), in order."""
    # SHA-256 is a stream: small pieces are joined and fed once, large arrays are fed as buffers
    # (hashlib releases the GIL on them, so digests of many records run in parallel threads).
    # Byte-valued fields (text, the bridge, the report source) skip NumPy: for a typical record
    # the per-field bookkeeping costs more than hashing the small fields themselves.
    pending = [HASH_PREFIX]
    put = pending.append
    for name, value in _fields(record):
        put(_NAME_TAGS[name])
        if value is None:
            put(b"absent\x00")
        elif type(value) is bytes:
            if name == "bridge":
                put(_BRIDGE_HEAD)
            else:
                put(_U1_TAG)
                put(_int64_bytes((len(value),)))
            put(value)
        else:
            array = _canonical(value if type(value) is np.ndarray else np.asarray(value))
            put(_dtype_tag(array.dtype))
            put(_int64_bytes(array.shape))
            if array.nbytes >= _DIRECT_BYTES:
                update(b"".join(pending))
                pending.clear()
                update(array)
            elif array.size:
                put(array.tobytes())
    update(b"".join(pending))


def record_digest(record) -> bytes:
    """The 32-byte canonical SHA-256 of a :class:`~neural_format.format.record.Record`."""
    digest = hashlib.sha256()
    _feed_record(record, digest.update)
    return digest.digest()


def record_preimage(record) -> bytes:
    """The exact bytes :func:`record_digest` hashes (for test vectors and debugging other implementations)."""
    parts: list[bytes] = []
    _feed_record(record, lambda piece: parts.append(piece.tobytes() if isinstance(piece, np.ndarray) else bytes(piece)))
    return b"".join(parts)


# -- the same digests from columns ---------------------------------------------------------
def _column(array: np.ndarray, nan_free: bool = False) -> np.ndarray:
    """A whole column made canonical at once (contiguous, little-endian, one NaN pattern).

    ``nan_free``: the caller has already checked that the column holds no NaN, so it is not
    scanned again.
    """
    array = np.asarray(array)
    if nan_free and array.flags.c_contiguous and array.dtype.byteorder != ">":
        return array
    return _canonical(array)


def _entity_text_blocks(texts: list[str], entity_offsets: np.ndarray) -> list[bytes]:
    """Per record: :func:`_entity_text_bytes` of its entities' strings, for a whole block at once.

    The block's strings are encoded once; record ``i``'s offsets are the block's string offsets
    over its entities, rebased to 0, so all of them come from one vectorised subtraction.
    """
    encoded, string_offsets = encode_strings(texts)
    data = encoded.tobytes()
    n = entity_offsets.size - 1
    counts = np.diff(entity_offsets) + 1  # M_i + 1 offsets per record
    first = entity_offsets[:-1]
    cuts = np.zeros(n + 1, np.int64)
    np.cumsum(counts, out=cuts[1:])
    # record i's offsets are string_offsets[first_i : first_i + M_i + 1]
    picks = np.repeat(first - cuts[:-1], counts) + np.arange(int(cuts[-1]))
    rebased = (string_offsets[picks] - np.repeat(string_offsets[first], counts)).astype("<i8").tobytes()
    cuts = cuts.tolist()
    starts, ends = string_offsets[first].tolist(), string_offsets[entity_offsets[1:]].tolist()
    return [data[starts[i]:ends[i]] + rebased[8 * cuts[i]:8 * cuts[i + 1]] for i in range(n)]


def _ragged_pieces(name: str, column: np.ndarray, offsets: list[int], nan_free: bool = False) -> list:
    """Per record: the header and bytes of its rows ``offsets[i]:offsets[i+1]`` of ``column``.

    Small pieces are ``bytes``; a record's slice of a wide column (features, tiles) is a
    ``(header, memoryview)`` pair, so that it is hashed in place rather than copied.
    """
    column = _column(column, nan_free)
    trailing = column.shape[1:]
    row_bytes = column.dtype.itemsize * int(np.prod(trailing, dtype=np.int64))
    tag = _NAME_TAGS[name] + _dtype_tag(column.dtype)
    counts = np.diff(np.asarray(offsets, np.int64))
    shapes = np.empty((counts.size, 1 + len(trailing)), "<i8")
    shapes[:, 0] = counts
    shapes[:, 1:] = trailing
    heads = shapes.tobytes()
    step = shapes.shape[1] * 8
    n = counts.size
    if n and row_bytes * int(offsets[-1]) >= _DIRECT_BYTES * n:
        view = column.reshape(-1).view(np.uint8).data  # a memoryview of the bytes, no copy
        return [(tag + heads[i * step:(i + 1) * step], view[offsets[i] * row_bytes:offsets[i + 1] * row_bytes])
                for i in range(n)]
    raw = column.tobytes()
    return [tag + heads[i * step:(i + 1) * step] + raw[offsets[i] * row_bytes:offsets[i + 1] * row_bytes]
            for i in range(n)]


def _row_pieces(name: str, column: np.ndarray, present=None) -> list[bytes]:
    """Per record: one row of a per-record column, hashed as an array of the row's shape."""
    column = _column(column)
    n = column.shape[0]
    tag = _NAME_TAGS[name] + _dtype_tag(column.dtype) + _int64_bytes(column.shape[1:])
    raw = column.tobytes()
    width = len(raw) // n if n else 0
    absent = _NAME_TAGS[name] + b"absent\x00"
    return [tag + raw[i * width:(i + 1) * width] if present is None or present[i] else absent
            for i in range(n)]


def _bytes_pieces(name: str, values: list) -> list[bytes]:
    """Per record: a ``bytes`` value hashed as 1-D uint8, or None for an absent field."""
    tag, absent = _NAME_TAGS[name] + _U1_TAG, _NAME_TAGS[name] + b"absent\x00"
    return [absent if v is None else tag + _int64_bytes((len(v),)) + v for v in values]


def column_digests(c: dict, nan_free: frozenset = frozenset()) -> list[bytes]:
    """The canonical SHA-256 of each record held in columns, as :meth:`CollectionReader.read_columns` returns them.

    Equal to :func:`record_digest` of every record cut out of the columns (a test checks this on
    random collections), but each column is made canonical in one NumPy pass and each record costs
    a few slices instead of per-field type handling. The writer hashes its batches this way and
    the validator hashes what it reads. Paths in ``nan_free`` are columns the caller has already
    found free of NaN (the validator's NF-R013 check), which are then not scanned again.
    """
    from .layout import REPORT_SOURCE_NAMES, REPORT_SOURCES, TABLES, Codec
    ids = c["/records/id"]
    n = len(ids)
    absent = {name: [_NAME_TAGS[name] + b"absent\x00"] * n for name in CANONICAL_FIELDS}
    offsets: dict[str, list] = {}

    def table_offsets(table):
        if table not in offsets:
            offsets[table] = np.asarray(c[f"{TABLES[table][0]}/offsets"]).tolist()
        return offsets[table]

    sources = None
    fields: list[list] = []  # per canonical field, its pieces per record
    sourced: list[tuple[int, str, str]] = []  # (position in fields, name, path) of text counted with its source
    for name, column in _PLAN:
        path, codec = column.path, column.codec
        if path not in c:
            fields.append(absent[name])
            continue
        value = c[path]
        if codec is Codec.ROWS:
            fields.append(_ragged_pieces(name, value, table_offsets(column.table), path in nan_free))
        elif codec is Codec.ROW:
            fields.append(_row_pieces(name, value))
        elif codec is Codec.GEOMETRY:
            fields.append(_row_pieces(name, np.asarray(value, np.int64)))
        elif codec is Codec.SPACING:
            spacing = np.asarray(value)
            fields.append(_row_pieces(name, np.asarray(spacing, np.float64),
                                      present=(~np.isnan(spacing).all(axis=1)).tolist()))
        elif codec is Codec.BRIDGE:
            raw = np.ascontiguousarray(value, "<i8").tobytes()
            fields.append([_NAME_TAGS[name] + _BRIDGE_HEAD + raw[16 * i:16 * (i + 1)] for i in range(n)])
        elif codec is Codec.REPORT_SOURCE:
            sources = [REPORT_SOURCE_NAMES.get(code, "unknown") for code in np.asarray(value).tolist()]
            fields.append(_bytes_pieces(name, [bytes((REPORT_SOURCES.get(s, 255),)) for s in sources]))
        elif codec is Codec.ID:
            fields.append(_bytes_pieces(name, [v.encode("utf-8") for v in value]))
        elif codec is Codec.TEXT:
            fields.append(_bytes_pieces(name, [v.encode("utf-8") if v else None for v in value]))
        elif codec is Codec.SOURCED_TEXT:
            sourced.append((len(fields), name, path))  # needs the report sources, which come later in the order
            fields.append([])
        elif codec is Codec.ROW_TEXT:
            pieces = _bytes_pieces(name, _entity_text_blocks(value, np.asarray(table_offsets(column.table), np.int64)))
            known = c.get(_KNOWN_FLAGS.get(column.field, ""))
            if known is not None:  # a record whose text is unknown (0) hashes the field as absent
                pieces = [piece if flag else absent[name][0] for piece, flag in zip(pieces, np.asarray(known).tolist())]
            fields.append(pieces)
        else:  # pragma: no cover
            raise AssertionError(f"no hashing rule for codec {codec!r}")
    if sources is None:  # the report source comes after the text it decides in Appendix B's order
        source_path = next(column.path for _, column in _PLAN if column.codec is Codec.REPORT_SOURCE)
        sources = [REPORT_SOURCE_NAMES.get(code, "unknown") for code in np.asarray(c[source_path]).tolist()]
    for k, name, path in sourced:  # a column whose text counts only with a report source
        fields[k] = _bytes_pieces(name, [text.encode("utf-8") if source else None
                                         for text, source in zip(c[path], sources)])
    # consecutive small pieces are joined for all records at once (map/zip run at C speed); each
    # wide slice is fed to the hash in place, after the bytes that precede it
    segments: list[tuple[list[bytes], list]] = []
    small: list[list] = [[HASH_PREFIX] * n]
    for pieces in fields:
        if n and type(pieces[0]) is tuple:
            small.append([head for head, _ in pieces])
            segments.append((list(map(b"".join, zip(*small))), [data for _, data in pieces]))
            small = []
        else:
            small.append(pieces)
    tail = list(map(b"".join, zip(*small))) if small else [b""] * n
    digests = []
    for i in range(n):
        digest = hashlib.sha256()
        for joined, wide in segments:
            digest.update(joined[i])
            digest.update(wide[i])
        digest.update(tail[i])
        digests.append(digest.digest())
    return digests


def file_sha256(path) -> str:
    """Hex SHA-256 of a file's bytes: ``hashlib.file_digest`` (Python >= 3.11, which reads into
    a reused buffer, or hashes the descriptor directly where OpenSSL can). ``requires-python`` stays
    ``>=3.10``; on 3.10 the same digest comes from reading 4 MiB blocks."""
    with open(path, "rb") as handle:
        if hasattr(hashlib, "file_digest"):
            return hashlib.file_digest(handle, "sha256").hexdigest()
        digest = hashlib.sha256()
        while block := handle.read(4 << 20):
            digest.update(block)
        return digest.hexdigest()
