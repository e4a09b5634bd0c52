"""Spec Appendix B (the record digest) followed literally, with h5py, numpy and hashlib only.

This is the clean-room check of the appendix: it imports nothing from ``neural_format`` and was
written from the spec text alone. The SDK's tests run it over the test vectors, the conformance
corpus, the golden files and SDK-written files, and require its digests to equal the SDK's and
the stored ones byte for byte. An implementer in another language can port it line by line.

Two entry points:

* :func:`preimage` turns one record's *stored values* (what a file holds for the record, see
  :func:`stored_values`) and the collection metadata into the exact bytes that are hashed;
* :func:`file_digests` reads a collection file and returns every record's digest.
"""
from __future__ import annotations

import hashlib
import json

import h5py
import numpy as np

PREFIX = b"neural-graph-record-v1\x00"
FIELDS = ("record_id", "patch_features", "patch_scores", "patch_positions", "patch_edges", "tiles",
          "entity_text", "entity_types", "entity_assertions", "entity_features", "relations",
          "relation_types", "bridge", "labels", "image_size", "patch_size", "grid_shape",
          "pixel_spacing", "report", "report_source", "group_key")
# B.3: every NaN is hashed as the positive quiet NaN with a zero payload
CANONICAL_NAN = {2: 0x7E00, 4: 0x7FC00000, 8: 0x7FF8000000000000}


def present_piece(name: str, array: np.ndarray) -> bytes:
    """B.1: ``name NUL dtype NUL shape data`` for a present field."""
    array = np.ascontiguousarray(array)
    array = array.astype(array.dtype.newbyteorder("<"))  # B.2: little-endian; '|' for one-byte types
    if array.dtype.kind == "f":
        bits = array.view(f"<u{array.dtype.itemsize}").copy()
        bits[np.isnan(array)] = CANONICAL_NAN[array.dtype.itemsize]
        array = bits.view(array.dtype)
    shape = np.asarray(array.shape, "<i8").tobytes()
    return name.encode("ascii") + b"\x00" + array.dtype.str.encode("ascii") + b"\x00" + shape + array.tobytes()


def absent_piece(name: str) -> bytes:
    return name.encode("ascii") + b"\x00absent\x00"


def utf8(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-8"), "|u1")


def field_pieces(values: dict, meta: dict) -> list[tuple[str, bytes]]:
    """B.4, the per-field table: ``(field, piece)`` in hashing order for one record."""
    A = meta["spatial_axes"]
    has_positions = meta.get("has_positions", True)
    has_tiles = meta.get("tile_shape") is not None
    has_entity_text = meta.get("has_entity_text", True)
    has_entity_features = meta.get("entity_feature_dim", 0) > 0
    source = int(values["report_source"])

    def entity_text():
        encoded = [t.encode("utf-8") for t in values["entity_text"]]
        offsets = np.zeros(len(encoded) + 1, "<i8")  # rebased: the record's first string starts at 0
        offsets[1:] = np.cumsum([len(b) for b in encoded]) if encoded else []
        return np.frombuffer(b"".join(encoded) + offsets.tobytes(), "|u1")

    spacing = values.get("pixel_spacing")
    rows = {
        "record_id": utf8(values["record_id"]),
        "patch_features": values["patch_features"],
        "patch_scores": values["patch_scores"],
        "patch_positions": values["patch_positions"] if has_positions else None,
        "patch_edges": values["patch_edges"],
        "tiles": values["tiles"] if has_tiles else None,
        # B.4 field 7: absent by metadata, or for a record whose text is unknown (entity_text_known 0)
        "entity_text": entity_text() if has_entity_text and values.get("entity_text_known", 1) != 0 else None,
        "entity_types": values["entity_types"],
        "entity_assertions": values["entity_assertions"],
        "entity_features": values["entity_features"] if has_entity_features else None,
        "relations": values["relations"],
        "relation_types": values["relation_types"],
        "bridge": np.asarray(values["bridge"], "<i8").reshape(2),
        "labels": values["labels"],
        "image_size": values["image_size"] if has_positions else None,
        "patch_size": values["patch_size"] if has_positions else None,
        "grid_shape": values["grid_shape"] if has_positions else None,
        "pixel_spacing": spacing if has_positions and not np.isnan(spacing).all() else None,
        "report": utf8(values["report"]) if source != 0 else None,
        "report_source": np.array([source if source in (0, 1, 2) else 255], "|u1"),
        "group_key": utf8(values["group_key"]) if values["group_key"] != "" else None,
    }
    assert A in (2, 3) and tuple(rows) == FIELDS
    return [(name, absent_piece(name) if rows[name] is None else present_piece(name, np.asarray(rows[name])))
            for name in FIELDS]


def preimage(values: dict, meta: dict) -> bytes:
    return PREFIX + b"".join(piece for _, piece in field_pieces(values, meta))


def digest(values: dict, meta: dict) -> bytes:
    return hashlib.sha256(preimage(values, meta)).digest()


# -- reading a file (spec sections 4 and 5 only) ------------------------------------------------
def _strings(f: h5py.File, path: str) -> list[str]:
    data, offsets = f[path + "/data"][()].tobytes(), f[path + "/offsets"][()]
    return [data[offsets[j]:offsets[j + 1]].decode("utf-8") for j in range(len(offsets) - 1)]


def stored_values(path) -> tuple[dict, list[dict]]:
    """The collection metadata and, per record, the values the file stores for it."""
    with h5py.File(path, "r") as f:
        meta = json.loads(f["/metadata"][()].tobytes().decode("utf-8"))
        ids = _strings(f, "/records/id")
        reports, keys = _strings(f, "/records/report"), _strings(f, "/records/group_key")
        texts = _strings(f, "/entities/text") if meta.get("has_entity_text", True) else None
        # section 4.5 (format 1.1.0): per-record known (1) / unknown (0) entity text
        known = (f["/records/entity_text_known"][()] if meta.get("has_entity_text", True)
                 and meta.get("entity_text_partial", False) else None)
        off = {t: f[f"/{t}/offsets"][()] for t in ("patches", "patch_edges", "entities", "relations")}

        def ragged(table, column, i):
            return f[f"/{table}/{column}"][off[table][i]:off[table][i + 1]]

        def optional(path_, i, ragged_table=None):
            if path_ not in f:
                return None
            if ragged_table is None:
                return f[path_][i]
            return f[path_][off[ragged_table][i]:off[ragged_table][i + 1]]

        records = []
        for i, rid in enumerate(ids):
            e0, e1 = off["entities"][i], off["entities"][i + 1]
            records.append({
                "record_id": rid,
                "patch_features": ragged("patches", "features", i),
                "patch_scores": ragged("patches", "scores", i),
                "patch_positions": optional("/patches/positions", i, "patches"),
                "patch_edges": ragged("patch_edges", "index", i),
                "tiles": optional("/patches/tiles", i, "patches"),
                "entity_text": None if texts is None else texts[e0:e1],
                **({} if known is None else {"entity_text_known": int(known[i])}),
                "entity_types": ragged("entities", "type", i),
                "entity_assertions": ragged("entities", "assertion", i),
                "entity_features": optional("/entities/features", i, "entities"),
                "relations": ragged("relations", "index", i),
                "relation_types": ragged("relations", "type", i),
                "bridge": f["/records/bridge"][i],
                "labels": f["/records/labels"][i],
                "image_size": optional("/records/image_size", i),
                "patch_size": optional("/records/patch_size", i),
                "grid_shape": optional("/records/grid_shape", i),
                "pixel_spacing": optional("/records/pixel_spacing", i),
                "report": reports[i], "report_source": int(f["/records/report_source"][i]), "group_key": keys[i],
            })
        return meta, records


def file_digests(path) -> tuple[list[bytes], list[bytes]]:
    """``(recomputed, stored)`` record digests of a collection file."""
    meta, records = stored_values(path)
    with h5py.File(path, "r") as f:
        stored = [bytes(row) for row in f["/records/sha256"][()]]
    return [digest(values, meta) for values in records], stored
