"""Write the golden files of the CURRENT format version once (run from the repository root).

    .venv/bin/python spec/golden/make_golden.py

Golden files are archives, not fixtures: each released format version gets one directory
``spec/golden/<version>/``, written once by the SDK of that version and committed. They are never
regenerated; every later SDK must read, validate and hash-verify them (``tests/test_spec_golden.py``).
This script therefore refuses to touch a version directory that already exists.

Each directory holds ``collection.h5`` (one collection file exercising every optional column:
positions, tiles, entity text and features, float16 features, labels with NaN, reports of every
source, a record with no entities and one with no patches), ``sharded/`` (a two-shard collection
with ``manifest.json``) and ``expected.json``: what a reader must find, written from the records
given to the writer (not read back), with each record's digest.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from neural_format.collections.collection import shard_meta, write_shard  # noqa: E402
from neural_format.format.hashing import record_digest  # noqa: E402
from neural_format.collections.manifest import make_manifest, shard_entry, write_manifest  # noqa: E402
from neural_format.format.metadata import (CollectionMeta, FusionRule, ModelRef, Provenance, PruningPolicy,  # noqa: E402
                                    SoftwareRef, TopKPercent)
from neural_format.format.record import Geometry, Record  # noqa: E402
from neural_format.collections.synthetic import grid_edges  # noqa: E402
from neural_format.version import FORMAT_VERSION  # noqa: E402
from neural_format.files.writer import write_collection  # noqa: E402

CREATED = dt.datetime(2026, 12, 4, 12, 0, tzinfo=dt.timezone.utc)
COLLECTION_ID = "90a1d0c0ffee4e5b8c1d2e3f40516273"


def golden_meta(**changes) -> CollectionMeta:
    provenance = Provenance(
        builder=SoftwareRef(name="spec/golden/make_golden.py", version=FORMAT_VERSION),
        sdk=SoftwareRef(name="neural-format", version="0.1.0"), created=CREATED,
        encoder=ModelRef(model_id="tiny-swin", weights_sha256="cd" * 32),
        pruning=PruningPolicy(rule=TopKPercent(percent=25.0)), fusion=FusionRule())
    fields = dict(spatial_axes=2, patch_feature_dim=4, patch_feature_dtype="float16", entity_feature_dim=3,
                  tile_shape=[16, 16], tile_dtype="uint8", entity_types=["finding", "anatomy"],
                  relation_types=["located_at", "modifies"], label_names=["pneumonia", "effusion"],
                  provenance=provenance)
    fields.update(changes)
    return CollectionMeta(**fields)


def golden_records(meta: CollectionMeta) -> list[Record]:
    rng = np.random.default_rng(20261204)
    geometry = Geometry.for_image((70, 40), (16, 16), pixel_spacing=(0.25, 0.3))  # grid 5 x 3, padded edges
    tile_shape = tuple(meta.tile_shape) if meta.tile_shape else None

    def tiles(count):
        return None if tile_shape is None else rng.integers(0, 256, (count, *tile_shape)).astype(np.uint8)

    def features(count, width, dtype):
        return rng.standard_normal((count, width)).astype(dtype)

    positions = np.array([[0, 0], [0, 1], [1, 1], [4, 2]], np.int32)
    full = Record(
        record_id="golden-0", patch_features=features(4, 4, meta.patch_feature_dtype),
        patch_scores=np.array([0.875, 0.5, 0.375, 0.125], np.float32), patch_positions=positions,
        patch_edges=grid_edges(positions), tiles=tiles(4),
        entity_types=np.array([0, 1, -1], np.int16), entity_assertions=np.array([0, 2, -1], np.int8),
        entity_text=["opacité", "right lower lobe", "肺炎"], entity_features=features(3, 3, np.float32),
        relations=np.array([[0, 1], [2, 0]], np.int32), relation_types=np.array([0, -1], np.int16),
        bridge=(1, 0), labels=np.array([1.0, np.nan], np.float32), geometry=geometry,
        report="Opacité in the right lower lobe.", report_source="ground_truth", group_key="patient-a")
    no_kg = Record(
        record_id="golden-1", patch_features=features(2, 4, meta.patch_feature_dtype),
        patch_scores=np.array([0.75, 0.25], np.float32), patch_positions=np.array([[2, 0], [2, 1]], np.int32),
        patch_edges=np.array([[0, 1], [1, 0]], np.int32), tiles=tiles(2), entity_text=[],
        entity_features=np.zeros((0, 3), np.float32), labels=np.array([0.0, 0.0], np.float32),
        geometry=Geometry.for_image((70, 40), (16, 16)), report="No acute findings.", report_source="generated",
        group_key="patient-a")
    no_patches = Record(
        record_id="golden-2 ünïcode", patch_features=np.zeros((0, 4), meta.patch_feature_dtype),
        patch_scores=np.zeros(0, np.float32), patch_positions=np.zeros((0, 2), np.int32), tiles=tiles(0),
        entity_types=np.array([1], np.int16), entity_assertions=np.array([1], np.int8), entity_text=["effusion"],
        entity_features=features(1, 3, np.float32), labels=np.array([np.nan, 1.0], np.float32),
        geometry=Geometry.for_image((70, 40), (16, 16)))
    return [full, no_kg, no_patches]


def expectation(meta: CollectionMeta, records: list[Record]) -> dict:
    def floats(array):
        return [None if np.isnan(v) else float(v) for v in np.asarray(array, np.float64).reshape(-1)]
    return {
        "meta": json.loads(meta.model_dump_json(exclude_none=True)),
        "records": [{
            "record_id": r.record_id, "sha256": record_digest(r).hex(),
            "num_patches": r.num_patches, "num_entities": r.num_entities,
            "patch_features": floats(r.patch_features), "patch_scores": floats(r.patch_scores),
            "patch_positions": None if r.patch_positions is None else r.patch_positions.tolist(),
            "patch_edges": r.patch_edges.tolist(),
            "tiles_sha256": None if r.tiles is None else hashlib.sha256(np.ascontiguousarray(r.tiles)).hexdigest(),
            "entity_text": r.entity_text, "entity_types": r.entity_types.tolist(),
            "entity_assertions": r.entity_assertions.tolist(),
            "entity_features": None if r.entity_features is None else floats(r.entity_features),
            "relations": r.relations.tolist(), "relation_types": r.relation_types.tolist(),
            "bridge": None if r.bridge is None else list(r.bridge), "labels": floats(r.labels),
            "image_size": list(r.geometry.image_size), "patch_size": list(r.geometry.patch_size),
            "grid_shape": list(r.geometry.grid_shape),
            "pixel_spacing": None if r.geometry.pixel_spacing is None else list(r.geometry.pixel_spacing),
            "report": r.report, "report_source": r.report_source, "group_key": r.group_key,
        } for r in records],
    }


def main() -> int:
    out = HERE / FORMAT_VERSION
    if out.exists():
        print(f"{out} exists: golden files are written once and never regenerated", file=sys.stderr)
        return 1
    out.mkdir()
    meta = golden_meta()
    records = golden_records(meta)
    write_collection(out / "collection.h5", meta, records, compression="gzip", fsync=False)
    expected = {"format_version": FORMAT_VERSION, "collection.h5": expectation(meta, records)}

    sharded = out / "sharded"
    sharded.mkdir()
    shard_base = golden_meta(tile_shape=None, tile_dtype=None)
    parts = [golden_records(shard_base)[:2], golden_records(shard_base)[2:]]
    names = []
    for index, part in enumerate(parts):
        names.append(f"shard-{index:05d}-of-{len(parts):05d}.h5")
        write_shard(sharded / names[-1], shard_meta(shard_base, COLLECTION_ID, index, len(parts)), part, compression="gzip", fsync=False)
    manifest = make_manifest([shard_entry(sharded / n, n) for n in names], collection_id=COLLECTION_ID,
                             created=CREATED)
    write_manifest(sharded, manifest)
    expected["sharded"] = {
        "collection_sha256": manifest.collection_sha256,
        "shards": {name: expectation(shard_meta(shard_base, COLLECTION_ID, i, len(parts)), part)
                   for i, (name, part) in enumerate(zip(names, parts))},
    }
    (out / "expected.json").write_text(json.dumps(expected, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    total = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"wrote golden files of {FORMAT_VERSION}: {total:,} bytes in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
