"""Write the record-digest test vectors of spec Appendix B (run from the repository root).

    .venv/bin/python spec/test-vectors/generate.py

Each ``record-*.json`` gives one record as a file stores it (``meta``: the metadata fields the
digest depends on; ``stored``: the record's stored values, arrays as dtype, shape and hex bytes),
then the hashed pieces field by field, the whole pre-image in hex and its SHA-256. The pieces
are computed by ``appendix_b.py`` (the appendix followed literally) and the script refuses to
write unless the SDK's own pre-image and digest are the same bytes. The vectors are committed;
``tests/test_spec_hashing_vectors.py`` checks the SDK and ``appendix_b.py`` against them.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))
sys.path.insert(0, str(HERE))

import appendix_b  # noqa: E402

REPORT_SOURCE_NAMES = {0: None, 1: "ground_truth", 2: "generated"}


def arr(values, dtype, shape=None) -> np.ndarray:
    array = np.asarray(values, dtype=dtype)
    return array.reshape(shape) if shape is not None else array


def encode(value):
    if isinstance(value, np.ndarray):
        return {"dtype": value.dtype.str, "shape": list(value.shape), "hex": np.ascontiguousarray(value).tobytes().hex()}
    return value


def decode(value):
    if isinstance(value, dict) and set(value) == {"dtype", "shape", "hex"}:
        return np.frombuffer(bytes.fromhex(value["hex"]), value["dtype"]).reshape(value["shape"]).copy()
    return value


def to_record(meta: dict, stored: dict):
    """The SDK :class:`~neural_format.format.record.Record` a reader returns for these stored values."""
    from neural_format.format.record import Geometry, Record
    s = {k: decode(v) for k, v in stored.items()}
    geometry = None
    if meta["has_positions"]:
        spacing = s["pixel_spacing"]
        geometry = Geometry(tuple(int(v) for v in s["image_size"]), tuple(int(v) for v in s["patch_size"]),
                            tuple(int(v) for v in s["grid_shape"]),
                            None if np.isnan(spacing).all() else tuple(float(v) for v in spacing))
    bridge = tuple(int(v) for v in s["bridge"])
    source = REPORT_SOURCE_NAMES[s["report_source"]]
    return Record(
        record_id=s["record_id"], patch_features=s["patch_features"], patch_scores=s["patch_scores"],
        patch_positions=s["patch_positions"] if meta["has_positions"] else None, patch_edges=s["patch_edges"],
        tiles=s["tiles"] if meta.get("tile_shape") else None,
        entity_text=(list(s["entity_text"]) if meta["has_entity_text"] and s.get("entity_text_known", 1) != 0
                     else None), entity_types=s["entity_types"],
        entity_assertions=s["entity_assertions"],
        entity_features=s["entity_features"] if meta["entity_feature_dim"] > 0 else None,
        relations=s["relations"], relation_types=s["relation_types"],
        bridge=None if bridge == (-1, -1) else bridge, labels=s["labels"], geometry=geometry,
        report=s["report"] if source else None, report_source=source, group_key=s["group_key"] or None)


def vectors() -> list[dict]:
    negative_nan_with_payload = np.array([0xFFC12345], "<u4").view("<f4")[0]
    with_entities = {
        "name": "record-with-entities",
        "description": "2 patches, 2 entities with non-ASCII text and float16 features, one relation, a "
                       "bridge; the second label is a negative NaN with a payload (hashed as 7fc00000); "
                       "pixel spacing unknown (all NaN, so absent); no tiles (absent by metadata).",
        "meta": {"spatial_axes": 2, "patch_feature_dim": 2, "patch_feature_dtype": "float32",
                 "entity_feature_dim": 2, "entity_feature_dtype": "float16", "has_positions": True,
                 "has_entity_text": True, "tile_shape": None, "tile_dtype": None},
        "stored": {
            "record_id": "rec-1",
            "patch_features": arr([[1.0, 2.0], [3.0, 4.0]], "<f4"),
            "patch_scores": arr([0.75, 0.25], "<f4"),
            "patch_positions": arr([[0, 0], [0, 1]], "<i4"),
            "patch_edges": arr([[0, 1], [1, 0]], "<i4"),
            "tiles": None,
            "entity_text": ["é", "lung"],
            "entity_types": arr([0, -1], "<i2"),
            "entity_assertions": arr([0, 2], "|i1"),
            "entity_features": arr([[0.5, -1.0], [2.0, 0.0]], "<f2"),
            "relations": arr([[0, 1]], "<i4", (1, 2)),
            "relation_types": arr([0], "<i2"),
            "bridge": arr([1, 0], "<i8"),
            "labels": np.array([1.0, negative_nan_with_payload], "<f4"),
            "image_size": arr([20, 30], "<i8"), "patch_size": arr([16, 16], "<i8"),
            "grid_shape": arr([2, 2], "<i8"), "pixel_spacing": arr([np.nan, np.nan], "<f8"),
            "report": "Opacity.", "report_source": 1, "group_key": "p1",
        },
    }
    without_entities = {
        "name": "record-without-entities",
        "description": "1 patch, no entities, no relations, no bridge (hashed as -1, -1), no labels "
                       "(shape (0,)), no positions (positions and geometry absent by metadata), entity text "
                       "present with zero strings (only the one rebased offset 0), no report "
                       "(report_source 0, report absent), empty group key (absent).",
        "meta": {"spatial_axes": 2, "patch_feature_dim": 3, "patch_feature_dtype": "float16",
                 "entity_feature_dim": 0, "entity_feature_dtype": "float32", "has_positions": False,
                 "has_entity_text": True, "tile_shape": None, "tile_dtype": None},
        "stored": {
            "record_id": "rec-2",
            "patch_features": arr([[0.5, 1.5, -2.0]], "<f2"),
            "patch_scores": arr([1.0], "<f4"),
            "patch_positions": None,
            "patch_edges": arr([], "<i4", (0, 2)),
            "tiles": None,
            "entity_text": [],
            "entity_types": arr([], "<i2"),
            "entity_assertions": arr([], "|i1"),
            "entity_features": None,
            "relations": arr([], "<i4", (0, 2)),
            "relation_types": arr([], "<i2"),
            "bridge": arr([-1, -1], "<i8"),
            "labels": arr([], "<f4"),
            "image_size": None, "patch_size": None, "grid_shape": None, "pixel_spacing": None,
            "report": "", "report_source": 0, "group_key": "",
        },
    }
    tiles_3d = {
        "name": "record-3d-with-tiles",
        "description": "3 spatial axes, 2 patches with uint16 tiles of tile_shape [1, 2, 2] (no channel "
                       "axis), known pixel spacing (float64), a generated report, entity text absent by "
                       "metadata (has_entity_text false).",
        "meta": {"spatial_axes": 3, "patch_feature_dim": 1, "patch_feature_dtype": "float32",
                 "entity_feature_dim": 0, "entity_feature_dtype": "float32", "has_positions": True,
                 "has_entity_text": False, "tile_shape": [1, 2, 2], "tile_dtype": "uint16",
                 "adjacency": "6-neighbour"},
        "stored": {
            "record_id": "vol-7",
            "patch_features": arr([[0.125], [-0.5]], "<f4"),
            "patch_scores": arr([0.6, 0.4], "<f4"),
            "patch_positions": arr([[0, 0, 0], [1, 0, 0]], "<i4"),
            "patch_edges": arr([[0, 1], [1, 0]], "<i4"),
            "tiles": arr([[[[1, 2], [3, 65535]]], [[[0, 256], [4096, 7]]]], "<u2"),
            "entity_text": None,
            "entity_types": arr([], "<i2"),
            "entity_assertions": arr([], "|i1"),
            "entity_features": None,
            "relations": arr([], "<i4", (0, 2)),
            "relation_types": arr([], "<i2"),
            "bridge": arr([-1, -1], "<i8"),
            "labels": arr([0.0], "<f4"),
            "image_size": arr([2, 3, 4], "<i8"), "patch_size": arr([1, 2, 2], "<i8"),
            "grid_shape": arr([2, 2, 2], "<i8"), "pixel_spacing": arr([2.5, 0.5, 0.5], "<f8"),
            "report": "Small nodule.", "report_source": 2, "group_key": "",
        },
    }
    text_unknown = {
        "name": "record-entity-text-unknown",
        "description": "format 1.1.0 (section 4.5): a record whose entity text is unknown in a collection "
                       "with entity_text_partial: 1 patch, 2 entities whose strings are stored empty with "
                       "entity_text_known 0, so entity_text hashes as absent; one relation, a bridge; no "
                       "positions, no entity features, no report.",
        "meta": {"spatial_axes": 2, "patch_feature_dim": 2, "patch_feature_dtype": "float32",
                 "entity_feature_dim": 0, "entity_feature_dtype": "float32", "has_positions": False,
                 "has_entity_text": True, "entity_text_partial": True, "tile_shape": None, "tile_dtype": None},
        "stored": {
            "record_id": "rec-4",
            "patch_features": arr([[0.25, -0.5]], "<f4"),
            "patch_scores": arr([1.0], "<f4"),
            "patch_positions": None,
            "patch_edges": arr([], "<i4", (0, 2)),
            "tiles": None,
            "entity_text": ["", ""],
            "entity_text_known": 0,
            "entity_types": arr([-1, -1], "<i2"),
            "entity_assertions": arr([-1, -1], "|i1"),
            "entity_features": None,
            "relations": arr([[0, 1]], "<i4", (1, 2)),
            "relation_types": arr([-1], "<i2"),
            "bridge": arr([0, 1], "<i8"),
            "labels": arr([0.0], "<f4"),
            "image_size": None, "patch_size": None, "grid_shape": None, "pixel_spacing": None,
            "report": "", "report_source": 0, "group_key": "",
        },
    }
    out = []
    for vector in (with_entities, without_entities, tiles_3d, text_unknown):
        stored, meta = vector["stored"], vector["meta"]
        pieces = appendix_b.field_pieces(stored, meta)
        preimage = appendix_b.preimage(stored, meta)
        digest = appendix_b.digest(stored, meta)
        from neural_format.format.hashing import record_digest, record_preimage
        record = to_record(meta, {k: encode(v) for k, v in stored.items()})
        if record_preimage(record) != preimage or record_digest(record) != digest:
            raise SystemExit(f"{vector['name']}: the SDK and appendix_b.py disagree; fix one before writing vectors")
        out.append({**vector, "stored": {k: encode(v) for k, v in stored.items()},
                    "pieces": [{"field": "(prefix)", "hex": appendix_b.PREFIX.hex()}]
                    + [{"field": name, "hex": piece.hex()} for name, piece in pieces],
                    "preimage_hex": preimage.hex(), "sha256": digest.hex()})
    return out


def main() -> int:
    for vector in vectors():
        path = HERE / f"{vector['name']}.json"
        path.write_text(json.dumps(vector, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"{path.name}: {len(vector['preimage_hex']) // 2} pre-image bytes, sha256 {vector['sha256']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
