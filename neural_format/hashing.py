"""Canonical per-record SHA-256 (spec clause NF-I001).

The digest is SHA-256 over, in this order, for each field of :data:`CANONICAL_FIELDS`:
``name NUL dtype NUL shape(int64 LE) data`` where ``data`` is the C-order little-endian bytes, or
``name NUL "absent" NUL`` when the field is absent. Strings are UTF-8; lists of strings are hashed
as their UTF-8 bytes followed by int64 offsets. NaN values are canonicalised so that every NaN
bit pattern hashes alike. Because the digest covers dtypes and shapes, a record hashes alike in
memory and after a round trip through the file.
"""
from __future__ import annotations

import hashlib
import struct
from typing import Iterator, Optional

import numpy as np

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
    encoded = [v.encode("utf-8") for v in values]
    offsets = np.zeros(len(encoded) + 1, np.int64)
    if encoded:
        np.cumsum([len(b) for b in encoded], out=offsets[1:])
    data = np.frombuffer(b"".join(encoded), np.uint8)
    return data, offsets


def _text(value: Optional[str]) -> Optional[np.ndarray]:
    return None if value is None else np.frombuffer(value.encode("utf-8"), np.uint8)


def _canonical(array: np.ndarray) -> np.ndarray:
    if not array.flags.c_contiguous:
        array = np.ascontiguousarray(array)
    if array.dtype.byteorder == ">":
        array = array.astype(array.dtype.newbyteorder("<"))
    # a sum is NaN whenever an element is NaN, and needs no temporary mask
    if array.dtype.kind == "f" and array.size and np.isnan(array.sum()):
        array = np.where(np.isnan(array), np.array(np.nan, array.dtype), array)
    return array


def _fields(record) -> Iterator[tuple[str, Optional[np.ndarray]]]:
    from .record import REPORT_SOURCES
    geometry = record.geometry
    text = None
    if record.entity_text is not None:
        data, offsets = encode_strings(list(record.entity_text))
        text = np.concatenate([data.view(np.uint8), offsets.view(np.uint8)])
    bridge = np.array(record.bridge if record.bridge is not None else (-1, -1), np.int64)
    values = {
        "record_id": _text(record.record_id),
        "patch_features": record.patch_features,
        "patch_scores": record.patch_scores,
        "patch_positions": record.patch_positions,
        "patch_edges": record.patch_edges,
        "tiles": record.tiles,
        "entity_text": text,
        "entity_types": record.entity_types,
        "entity_assertions": record.entity_assertions,
        "entity_features": record.entity_features,
        "relations": record.relations,
        "relation_types": record.relation_types,
        "bridge": bridge,
        "labels": record.labels,
        "image_size": None if geometry is None else np.asarray(geometry.image_size, np.int64),
        "patch_size": None if geometry is None else np.asarray(geometry.patch_size, np.int64),
        "grid_shape": None if geometry is None else np.asarray(geometry.grid_shape, np.int64),
        "pixel_spacing": None if geometry is None or geometry.pixel_spacing is None
        else np.asarray(geometry.pixel_spacing, np.float64),
        "report": _text(record.report),
        # a damaged file can hold a code outside REPORT_SOURCES (read back as "unknown"): hash it as
        # 255, which no valid record hashes to, so the mismatch is reported instead of a KeyError
        "report_source": np.array([REPORT_SOURCES.get(record.report_source, 255)], np.uint8),
        "group_key": _text(record.group_key),
    }
    for name in CANONICAL_FIELDS:
        yield name, values[name]


def record_digest(record) -> bytes:
    """The 32-byte canonical SHA-256 of a :class:`~neural_format.record.Record`."""
    # SHA-256 is a stream: small pieces are joined and fed once, large arrays are fed as buffers
    # (hashlib releases the GIL on them, so digests of many records run in parallel threads)
    digest = hashlib.sha256()
    pending = [HASH_PREFIX]
    for name, value in _fields(record):
        pending.append(_NAME_TAGS[name])
        if value is None:
            pending.append(b"absent\x00")
            continue
        array = _canonical(np.asarray(value))
        tag = _DTYPE_TAGS.get(array.dtype.str)
        if tag is None:
            tag = _DTYPE_TAGS[array.dtype.str] = array.dtype.str.encode("ascii") + b"\x00"
        pending.append(tag)
        pending.append(struct.pack(f"<{array.ndim}q", *array.shape))
        if array.nbytes >= _DIRECT_BYTES:
            digest.update(b"".join(pending))
            pending.clear()
            digest.update(array)
        elif array.size:
            pending.append(array.tobytes())
    digest.update(b"".join(pending))
    return digest.digest()
