"""Generate the conformance fixtures of format 1.x (deterministic; run from the repository root).

    .venv/bin/python spec/conformance/generate.py

For every clause ``NF-XNNN`` of :mod:`neural_format.validation.clauses` this writes
``NF-XNNN.valid.h5`` (a small file that satisfies the clause, most often exercising it) and
``NF-XNNN.invalid.h5`` (the same file bent to break it), plus ``expected.json`` mapping each
invalid fixture to the code the validator must report, ``clauses.json`` (severity, scope and the
format version that added each clause, for ``spec/conformance/run``) and ``generated-with.json``
(the h5py and HDF5 releases that wrote the files: another HDF5 release writes other bytes). Manifest clauses (``NF-C*``) get
``NF-CNNN.valid/`` and ``NF-CNNN.invalid/``: collection directories holding ``manifest.json`` and
two shard files. Files are copied into contiguous datasets so the whole corpus stays small.
"""
from __future__ import annotations

import datetime as dt
import json
import shutil
import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Callable

import h5py
import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from neural_format.format.metadata import (CollectionMeta, FusionRule, ModelRef, Provenance, PruningPolicy,  # noqa: E402
                                    ShardInfo, SoftwareRef, TopKPercent)
from neural_format.format.record import Geometry, Record  # noqa: E402
from neural_format.collections.synthetic import grid_edges  # noqa: E402
from neural_format.validation.clauses import CLAUSES  # noqa: E402
from neural_format.files.writer import write_collection  # noqa: E402

CREATED = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
COLLECTION_ID = "0123456789abcdef0123456789abcdef"
# inside the spec's bounds (earliest..v108) and the smallest files: v108 groups store links compactly
FIXTURE_LIBVER = ("v108", "v108")
# the h5py and HDF5 releases that wrote the committed fixtures (see main)
GENERATED_WITH = "generated-with.json"


def library_versions() -> dict[str, str]:
    return {"h5py": h5py.version.version, "hdf5": h5py.version.hdf5_version}


def base_meta(**changes) -> CollectionMeta:
    provenance = Provenance(
        builder=SoftwareRef(name="spec/conformance/generate.py", version="1.0.0"),
        sdk=SoftwareRef(name="neural-format", version="0.1.0"), created=CREATED,
        encoder=ModelRef(model_id="tiny-swin", weights_sha256="ab" * 32),
        pruning=PruningPolicy(rule=TopKPercent(percent=10.0)), fusion=FusionRule())
    fields = dict(spatial_axes=2, patch_feature_dim=4, entity_feature_dim=3, tile_shape=None,
                  entity_types=["finding", "anatomy"], relation_types=["located_at"], label_names=["pneumonia"],
                  provenance=provenance)
    fields.update(changes)
    return CollectionMeta(**fields)


def base_records(meta: CollectionMeta) -> list[Record]:
    """Three records: a full graph, one with no entities (no bridge), one with no patches."""
    rng = np.random.default_rng(7)
    geometry = Geometry.for_image((64, 48), (16, 16), pixel_spacing=(0.2, 0.2))  # grid 4 x 3
    positions = np.array([[0, 0], [0, 1], [1, 1], [3, 2]], np.int32)
    full = Record(
        record_id="study-0", patch_features=rng.standard_normal((4, meta.patch_feature_dim)).astype(np.float32),
        patch_scores=np.array([0.9, 0.5, 0.4, 0.1], np.float32), patch_positions=positions,
        patch_edges=grid_edges(positions), entity_types=np.array([0, 1, -1], np.int16),
        entity_assertions=np.array([0, 2, -1], np.int8), entity_text=["opacité", "right lower lobe", "肺炎"],
        entity_features=rng.standard_normal((3, meta.entity_feature_dim)).astype(np.float32),
        relations=np.array([[0, 1]], np.int32), relation_types=np.array([0], np.int16), bridge=(0, 0),
        labels=np.array([1.0], np.float32), geometry=geometry, report="Right lower lobe opacity.",
        report_source="ground_truth", group_key="p-0")
    no_kg = Record(
        record_id="study-1", patch_features=np.ones((2, meta.patch_feature_dim), np.float32),
        patch_scores=np.array([0.7, 0.3], np.float32), patch_positions=np.array([[2, 0], [2, 1]], np.int32),
        patch_edges=np.array([[0, 1], [1, 0]], np.int32), entity_text=[],
        entity_features=np.zeros((0, meta.entity_feature_dim), np.float32),
        labels=np.array([np.nan], np.float32), geometry=Geometry.for_image((64, 48), (16, 16)),
        report="No acute findings.", report_source="generated")
    no_patches = Record(
        record_id="study-2", patch_features=np.zeros((0, meta.patch_feature_dim), np.float32),
        patch_scores=np.zeros(0, np.float32), patch_positions=np.zeros((0, 2), np.int32),
        entity_types=np.array([0], np.int16), entity_assertions=np.array([1], np.int8), entity_text=["effusion"],
        entity_features=np.zeros((1, meta.entity_feature_dim), np.float32),
        labels=np.array([0.0], np.float32), geometry=Geometry.for_image((64, 48), (16, 16)))
    return [full, no_kg, no_patches]


def _copy_contiguous(src: h5py.File, dst: h5py.File) -> None:
    """Copy every object and attribute, storing datasets contiguously (small files, same content)."""
    for key, value in src.attrs.items():
        dst.attrs[key] = value

    def visit(name, obj):
        if isinstance(obj, h5py.Group):
            group = dst.require_group(name)
            for key, value in obj.attrs.items():
                group.attrs[key] = value
        else:
            dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
            dcpl.set_layout(h5py.h5d.COMPACT)  # data inside the object header: the smallest files
            ds = dst.create_dataset(name, data=obj[()], dtype=obj.dtype, dcpl=dcpl)
            for key, value in obj.attrs.items():
                ds.attrs[key] = value
    src.visititems(visit)


def write_fixture(path: Path, meta: CollectionMeta, records: list[Record], *,
                  mutate: Callable[[h5py.File], None] | None = None, libver=FIXTURE_LIBVER) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        staged = write_collection(Path(tmp) / "staged.h5", meta, records, fsync=False)
        if path.exists():
            path.unlink()
        with h5py.File(staged, "r") as src, h5py.File(path, "w", libver=libver, track_order=False) as dst:
            _copy_contiguous(src, dst)
            if mutate is not None:
                mutate(dst)


# -- bending helpers -------------------------------------------------------------------------
def edit_records(edit: Callable[[list[Record]], None]):
    def make(meta):
        records = base_records(meta)
        edit(records)
        return records
    return make


def replace_dataset(path: str, data, **kwargs):
    def mutate(f: h5py.File):
        attrs = dict(f[path].attrs)
        del f[path]
        ds = f.create_dataset(path, data=data, **kwargs)
        for key, value in attrs.items():
            ds.attrs[key] = value
    return mutate


def with_dataset(path: str, func):
    """Replace dataset ``path`` by ``func(its current data)``."""
    def mutate(f: h5py.File):
        replace_dataset(path, func(f[path][()]))(f)
    return mutate


def set_attr(path: str, name: str, value):
    def mutate(f: h5py.File):
        f[path].attrs[name] = value
    return mutate


def _set(records, index, **changes):
    records[index] = replace(records[index], **changes)


def _flip_first(array):
    array = array.copy()
    array.reshape(-1)[0] ^= 0xFF
    return array


def _metadata_blob(meta_dict) -> np.ndarray:
    return np.frombuffer(json.dumps(meta_dict).encode("utf-8"), np.uint8)


def _bad_metadata(f):
    meta = json.loads(bytes(f["/metadata"][()]).decode("utf-8"))
    meta["patch_feature_dim"] = "four"
    replace_dataset("/metadata", _metadata_blob(meta))(f)
    f["/metadata"].attrs["encoding-type"], f["/metadata"].attrs["encoding-version"] = "json", "1.0.0"


def _virtual(f):
    layout_ = h5py.VirtualLayout(shape=(6,), dtype="<f4")
    layout_[:] = h5py.VirtualSource(".", "/patches/scores", shape=(6,))
    dcpl = layout_._get_dcpl(f.filename)
    dcpl.set_obj_track_times(False)  # no timestamps: the fixture is byte-for-byte reproducible
    h5py.h5d.create(f["/patches"].id, b"scores_view", h5py.h5t.py_create(np.dtype("<f4")),
                    h5py.h5s.create_simple((6,)), dcpl=dcpl)


def _decreasing_offsets(offsets):
    offsets = offsets.copy()
    offsets[1], offsets[2] = offsets[2] + 1, offsets[1]
    return offsets


def _bad_utf8(data):
    data = data.copy()
    data[0] = 0xFF
    return data


def with_tiles(shape):
    """The base records with a zero tile of ``shape`` per patch."""
    def make(meta):
        records = base_records(meta)
        for index, record in enumerate(records):
            _set(records, index, tiles=np.zeros((record.num_patches, *shape), np.uint8))
        return records
    return make


def _text_marked_unknown(meta, index):
    """Mark record ``index`` unknown in ``/records/entity_text_known`` and store the digest an
    unknown record has, leaving its entity strings in place (what NF-R021 forbids)."""
    from neural_format.format.hashing import record_digest

    def mutate(f: h5py.File):
        with_dataset("/records/entity_text_known", lambda a: np.where(np.arange(a.size) == index, 0, a)
                     .astype(np.uint8))(f)
        digest = record_digest(replace(base_records(meta)[index], entity_text=None))
        with_dataset("/records/sha256", lambda a: np.concatenate(
            [a[:index], np.frombuffer(digest, np.uint8)[None], a[index + 1:]]))(f)
    return mutate


# clause -> (valid: (meta, records or make, mutate, libver), invalid: same)
def cases() -> dict[str, tuple[dict, dict]]:
    meta = base_meta()
    ok: dict = {}
    c: dict[str, tuple[dict, dict]] = {}
    c["NF-F001"] = (ok, {"raw": b"this is a pickle, not HDF5\n"})
    c["NF-H001"] = (ok, {"libver": ("latest", "latest")})
    c["NF-H002"] = (ok, {"mutate": lambda f: f.create_dataset("/records/notes", data=["a", "b", "c"],
                                                                dtype=h5py.string_dtype())})
    c["NF-H003"] = (ok, {"mutate": lambda f: f.__setitem__("/patches/alias", h5py.SoftLink("/patches/features"))})
    c["NF-H004"] = (ok, {"mutate": _virtual, "libver": ("earliest", "latest")})  # VDS needs v110 objects
    c["NF-H005"] = ({"mutate": with_dataset("/entities/type", lambda a: a)},
                    {"mutate": lambda f: replace_dataset("/entities/type", f["/entities/type"][()],
                                                         chunks=(4,), scaleoffset=0)(f)})
    c["NF-H006"] = (ok, {"mutate": lambda f: f.create_dataset("/records/huge", shape=(1 << 41,), dtype="u1",
                                                                chunks=(1024,))})
    c["NF-V001"] = (ok, {"mutate": set_attr("/", "format_version", "1.0")})
    c["NF-V002"] = (ok, {"mutate": set_attr("/", "format_version", "1.9.0")})
    c["NF-V003"] = (ok, {"mutate": set_attr("/", "format_version", "2.0.0")})
    c["NF-V004"] = (ok, {"mutate": set_attr("/", "format_version", "0.9.0")})
    c["NF-E001"] = (ok, {"mutate": set_attr("/patches", "encoding-type", "table")})
    c["NF-M001"] = (ok, {"mutate": _bad_metadata})
    c["NF-M002"] = ({"meta": base_meta(adjacency="8-neighbour")}, {"meta": base_meta(adjacency="6-neighbour")})
    c["NF-P001"] = (ok, {"meta": base_meta(provenance=meta.provenance.model_copy(update={"encoder": None}))})
    c["NF-S001"] = (ok, {"mutate": lambda f: f.__delitem__("/relations/type")})
    c["NF-S002"] = (ok, {"mutate": with_dataset("/patches/scores", lambda a: a.astype(np.float64))})
    c["NF-S003"] = (ok, {"mutate": with_dataset("/records/bridge", lambda a: np.concatenate([a, a[:, :1]], 1))})
    c["NF-S004"] = (ok, {"mutate": lambda f: f.create_group("/extras")})
    c["NF-O001"] = (ok, {"mutate": with_dataset("/patches/offsets", _decreasing_offsets)})
    c["NF-R001"] = (ok, {"mutate": with_dataset("/records/labels", lambda a: a[:-1])})
    c["NF-R002"] = (ok, {"mutate": with_dataset("/records/id/data", lambda a: np.where(a == ord("1"), ord("0"), a)
                                                 .astype(np.uint8))})
    c["NF-R003"] = (ok, {"records": edit_records(lambda r: _set(r, 1, patch_edges=np.array([[0, 2]], np.int32)))})
    c["NF-R004"] = (ok, {"records": edit_records(lambda r: _set(r, 0, relations=np.array([[0, 3]], np.int32)))})
    c["NF-R005"] = (ok, {"records": edit_records(lambda r: _set(r, 1, bridge=(0, 0)))})
    c["NF-R006"] = (ok, {"records": edit_records(lambda r: _set(r, 0, bridge=None))})
    far = np.array([[0, 0], [0, 1], [1, 1], [4, 2]], np.int32)
    c["NF-R007"] = (ok, {"records": edit_records(lambda r: _set(r, 0, patch_positions=far,
                                                               patch_edges=grid_edges(far)))})
    same = np.array([[0, 0], [0, 1], [1, 1], [1, 1]], np.int32)
    c["NF-R008"] = (ok, {"records": edit_records(lambda r: _set(r, 0, patch_positions=same,
                                                               patch_edges=grid_edges(same[:3])))})
    c["NF-R009"] = (ok, {"records": edit_records(lambda r: _set(r, 0, geometry=Geometry((64, 48), (16, 16), (5, 3))))})
    c["NF-R010"] = (ok, {"records": edit_records(lambda r: _set(r, 0, entity_types=np.array([0, 2, -1], np.int16)))})
    c["NF-R011"] = (ok, {"records": edit_records(lambda r: _set(r, 0, relation_types=np.array([1], np.int16)))})
    c["NF-R012"] = (ok, {"records": edit_records(lambda r: _set(r, 0, entity_assertions=np.array([0, 3, -1], np.int8)))})

    def nan_feature(records):
        features = records[0].patch_features.copy()
        features[1, 2] = np.nan
        _set(records, 0, patch_features=features)
    c["NF-R013"] = (ok, {"records": edit_records(nan_feature)})
    c["NF-R014"] = (ok, {"mutate": with_dataset("/entities/text/data", _bad_utf8)})
    c["NF-R015"] = (ok, {"mutate": with_dataset("/records/report_source", lambda a: np.array([1, 2, 3], np.uint8))})
    c["NF-R016"] = (ok, {"records": edit_records(lambda r: _set(r, 2, labels=np.array([np.inf], np.float32)))})
    c["NF-R017"] = (ok, {"records": edit_records(lambda r: _set(r, 0, patch_edges=np.array([[0, 3]], np.int32)))})
    # format 1.1.0 edge conventions: a patch edge without its reverse; a relation stored twice
    c["NF-R018"] = (ok, {"records": edit_records(lambda r: _set(r, 1, patch_edges=np.array([[0, 1]], np.int32)))})
    c["NF-R019"] = (ok, {"records": edit_records(lambda r: _set(r, 0, relations=np.array([[0, 1], [0, 1]], np.int32),
                                                               relation_types=np.array([0, 0], np.int16)))})
    c["NF-R020"] = ({"meta": base_meta(tile_shape=[16, 16], tile_dtype="uint8"), "records": with_tiles((16, 16))},
                    {"meta": base_meta(tile_shape=[8, 16], tile_dtype="uint8"), "records": with_tiles((8, 16))})
    # format 1.1.0 per-record entity text: study-0's text unknown (valid); study-2 marked unknown
    # while it still stores "effusion" (invalid; its digest is the unknown record's, so only NF-R021 fails)
    partial = base_meta(entity_text_partial=True)
    c["NF-R021"] = ({"meta": partial, "records": edit_records(lambda r: _set(r, 0, entity_text=None))},
                    {"meta": partial, "records": edit_records(lambda r: _set(r, 0, entity_text=None)),
                     "mutate": _text_marked_unknown(partial, 2)})
    c["NF-I001"] = (ok, {"mutate": with_dataset("/records/sha256", _flip_first)})
    return c


def build_case(path: Path, spec: dict) -> None:
    if "raw" in spec:
        path.write_bytes(spec["raw"])
        return
    meta = spec.get("meta") or base_meta()
    records = spec.get("records")
    records = records(meta) if callable(records) else base_records(meta)
    write_fixture(path, meta, records, mutate=spec.get("mutate"), libver=spec.get("libver", FIXTURE_LIBVER))


# -- sharded collections (manifest clauses) ----------------------------------------------------
def build_collection(folder: Path, bend: str | None = None) -> None:
    """A sharded collection of the base records in ``folder``; ``bend`` breaks that one clause."""
    from neural_format.collections.manifest import make_manifest, shard_entry, write_manifest
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    records = base_records(base_meta())
    # one shard keeps the corpus small; the clauses about several shards get two
    parts = [records[:2], records[2:]] if bend in ("NF-C006", "NF-C009") else [records]
    if bend == "NF-C006":
        parts[1] = parts[1] + [replace(records[0])]  # study-0 in both shards
    names = []
    for index, part in enumerate(parts):
        shard = ShardInfo(collection_id=COLLECTION_ID, shard_count=len(parts),
                          shard_index=5 if bend == "NF-C004" else index)
        meta = base_meta(shard=shard)
        if bend == "NF-C009" and index == 1:
            meta = base_meta(shard=shard, patch_feature_dim=5)
            part = base_records(meta)[2:]
        names.append(f"shard-{index:05d}-of-{len(parts):05d}.h5")
        write_fixture(folder / names[-1], meta, part)
    entries = [shard_entry(folder / name, name) for name in names]
    if bend == "NF-C002":
        entries[0] = entries[0].model_copy(update={"path": "../" + names[0]})
        (folder / names[0]).unlink()
    if bend == "NF-C005":
        entries[0] = entries[0].model_copy(update={"last_id": "study-9"})
    if bend == "NF-C008":
        entries[0] = entries[0].model_copy(update={"format_version": "1.0.0"})
    manifest = make_manifest(entries, collection_id=COLLECTION_ID, created=CREATED)
    if bend == "NF-C007":
        manifest = manifest.model_copy(update={"collection_sha256": "a" * 64})
    write_manifest(folder, manifest)
    if bend == "NF-C001":
        (folder / "manifest.json").write_text('{"format": "neural-graph-manifest", "shards": ')
    if bend == "NF-C003":  # tamper with a shard after its file_sha256 was recorded
        with h5py.File(folder / names[0], "r+") as f:
            f["/patches/scores"][0] = 0.25
    if bend == "NF-C010":
        write_fixture(folder / "shard-00009-of-00009.h5", base_meta(), records[:1])


def main() -> int:
    out = HERE
    for old in list(out.glob("NF-*")):  # fixtures only: run, generate.py and the JSON files stay
        shutil.rmtree(old) if old.is_dir() else old.unlink()
    expected = {}
    file_cases = cases()
    for code, clause in CLAUSES.items():
        if clause.scope == "manifest":
            build_collection(out / f"{code}.valid")
            build_collection(out / f"{code}.invalid", code)
            expected[f"{code}.invalid"] = code
            continue
        valid, invalid = file_cases[code]
        build_case(out / f"{code}.valid.h5", valid)
        build_case(out / f"{code}.invalid.h5", invalid)
        expected[f"{code}.invalid.h5"] = code
    (out / "expected.json").write_text(json.dumps(expected, indent=2, sort_keys=True) + "\n")
    # what the stand-alone runner (spec/conformance/run) needs to know about each clause
    clauses = {code: {"severity": c.severity, "scope": c.scope, "since": c.since, "summary": c.summary}
               for code, c in CLAUSES.items()}
    (out / "clauses.json").write_text(json.dumps(clauses, indent=2, sort_keys=True, ensure_ascii=False) + "\n",
                                      encoding="utf-8")
    # The bytes of an HDF5 file depend on the HDF5 library release that wrote it (object header
    # and heap layout), not only on what is written: the fixtures are byte-reproducible under this
    # release alone, and tests/test_spec_conformance.py compares their contents under any other.
    (out / GENERATED_WITH).write_text(json.dumps(library_versions(), indent=2, sort_keys=True) + "\n")
    total = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"wrote {2 * len(CLAUSES)} fixtures, {total:,} bytes in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
