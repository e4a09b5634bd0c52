"""Write-then-read equality for every field and dtype, over hypothesis-generated collections.

Collections vary the spatial axes (2-D / 3-D), the feature dtype (float16 / float32), tiles on
or off, entity features and text on or off (or, format 1.1.0, unknown for some records); records vary every field, including empty graphs
(no patches, no entities, no bridge) and arbitrary Unicode text. Every generated collection must
also validate without errors: the writer and the validator agree on what a valid file is.
"""
import datetime as dt
import tempfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings, strategies as st
from hypothesis.extra import numpy as hnp

import neural_format as nf
from neural_format.format.hashing import column_digests, record_digest
from neural_format.format.metadata import CollectionMeta, Provenance, SoftwareRef

ENTITY_TYPES = ["finding", "anatomy", "device"]
RELATION_TYPES = ["located_at", "modifies"]
LABELS = ["pneumonia", "effusion"]
TEXT = st.text(max_size=12)  # any Unicode scalar values (hypothesis excludes lone surrogates)


@st.composite
def metas(draw) -> CollectionMeta:
    axes = draw(st.sampled_from([2, 3]))
    dtype = draw(st.sampled_from(["float16", "float32"]))
    tiles = draw(st.booleans())
    has_text = draw(st.booleans())
    return CollectionMeta(
        spatial_axes=axes, patch_feature_dim=draw(st.integers(1, 5)), patch_feature_dtype=dtype,
        entity_feature_dim=draw(st.sampled_from([0, 3])), entity_feature_dtype=draw(st.sampled_from(["float16", "float32"])),
        has_entity_text=has_text, entity_text_partial=has_text and draw(st.booleans()),
        tile_shape=([2, 3] if axes == 2 else [1, 2, 2]) if tiles else None,
        tile_dtype=draw(st.sampled_from(["uint8", "uint16", "float32"])) if tiles else None,
        adjacency="custom", entity_types=ENTITY_TYPES, relation_types=RELATION_TYPES, label_names=LABELS,
        provenance=Provenance(builder=SoftwareRef(name="hypothesis", version="1"), sdk=nf.sdk_ref(),
                              created=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)))


def floats_array(draw, dtype, shape):
    width = 16 if dtype == "float16" else 32
    return draw(hnp.arrays(dtype, shape, elements=st.floats(-1e3, 1e3, width=width)))


@st.composite
def records(draw, meta: CollectionMeta, index: int) -> nf.Record:
    axes = meta.spatial_axes
    image = tuple(draw(st.integers(1, 40)) for _ in range(axes))
    patch = tuple(draw(st.integers(1, 16)) for _ in range(axes))
    spacing = draw(st.none() | st.tuples(*[st.floats(0.01, 5.0)] * axes))
    geometry = nf.Geometry.for_image(image, patch, spacing)
    cells = int(np.prod(geometry.grid_shape))
    flat = draw(st.lists(st.integers(0, cells - 1), unique=True, max_size=min(cells, 6)))
    positions = np.stack(np.unravel_index(np.array(flat, np.int64), geometry.grid_shape), axis=1).astype(np.int32)
    positions = positions.reshape(-1, axes)
    P = positions.shape[0]
    M = draw(st.integers(0, 4))
    E = draw(st.integers(0, 6)) if P else 0
    R = draw(st.integers(0, 4)) if M else 0
    tiles = None
    if meta.tile_shape is not None:
        if meta.tile_dtype == "float32":
            tiles = floats_array(draw, np.float32, (P, *meta.tile_shape))
        else:
            tiles = draw(hnp.arrays(meta.tile_dtype, (P, *meta.tile_shape)))
    report = draw(st.none() | TEXT)
    return nf.Record(
        record_id=f"{index}:{draw(TEXT)}",
        patch_features=floats_array(draw, meta.patch_feature_dtype, (P, meta.patch_feature_dim)),
        patch_scores=floats_array(draw, np.float32, (P,)),
        patch_positions=positions,
        patch_edges=draw(hnp.arrays(np.int32, (E, 2), elements=st.integers(0, max(P - 1, 0)))),
        entity_types=draw(hnp.arrays(np.int16, (M,), elements=st.integers(-1, len(ENTITY_TYPES) - 1))),
        entity_assertions=draw(hnp.arrays(np.int8, (M,), elements=st.sampled_from([-1, 0, 1, 2]))),
        # format 1.1.0: in a partial collection a record's text may be unknown (None)
        entity_text=([draw(TEXT) for _ in range(M)] if meta.has_entity_text
                     and not (meta.entity_text_partial and draw(st.booleans())) else None),
        entity_features=(floats_array(draw, meta.entity_feature_dtype, (M, meta.entity_feature_dim))
                         if meta.entity_feature_dim else None),
        relations=draw(hnp.arrays(np.int32, (R, 2), elements=st.integers(0, max(M - 1, 0)))),
        relation_types=draw(hnp.arrays(np.int16, (R,), elements=st.integers(-1, len(RELATION_TYPES) - 1))),
        bridge=(draw(st.integers(0, P - 1)), draw(st.integers(0, M - 1))) if P and M and draw(st.booleans()) else None,
        labels=draw(hnp.arrays(np.float32, (len(LABELS),), elements=st.sampled_from([0.0, 1.0, np.nan, 0.5]))),
        geometry=geometry, tiles=tiles, report=report,
        report_source=None if report is None else draw(st.sampled_from(["ground_truth", "generated"])),
        group_key=draw(st.none() | st.text(min_size=1, max_size=8)))


@st.composite
def collections(draw):
    meta = draw(metas())
    n = draw(st.integers(0, 5))
    return meta, [draw(records(meta, i)) for i in range(n)]


def assert_same(original: nf.Record, stored: nf.Record, meta: CollectionMeta) -> None:
    eq = np.testing.assert_array_equal
    assert stored.record_id == original.record_id
    assert stored.patch_features.dtype == np.dtype(meta.patch_feature_dtype)
    eq(stored.patch_features, original.patch_features)
    assert stored.patch_scores.dtype == np.float32
    eq(stored.patch_scores, original.patch_scores)
    eq(stored.patch_positions, original.patch_positions)
    assert stored.patch_positions.shape[1] == meta.spatial_axes
    eq(stored.patch_edges, original.patch_edges.reshape(-1, 2))
    eq(stored.entity_types, original.entity_types)
    eq(stored.entity_assertions, original.entity_assertions)
    assert stored.entity_text == original.entity_text
    if meta.entity_feature_dim:
        assert stored.entity_features.dtype == np.dtype(meta.entity_feature_dtype)
        eq(stored.entity_features, original.entity_features)
    else:
        assert stored.entity_features is None
    eq(stored.relations, original.relations.reshape(-1, 2))
    eq(stored.relation_types, original.relation_types)
    assert stored.bridge == original.bridge
    eq(stored.labels, original.labels)  # NaN (unknown) compares equal here
    assert stored.geometry == original.geometry
    if meta.tile_shape is None:
        assert stored.tiles is None
    else:
        assert stored.tiles.dtype == np.dtype(meta.tile_dtype)
        eq(stored.tiles, original.tiles)
    assert (stored.report, stored.report_source) == (original.report, original.report_source)
    assert stored.group_key == original.group_key
    assert stored == original  # canonical digests agree too


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(collections())
def test_write_then_read_is_identity(collection):
    meta, originals = collection
    with tempfile.TemporaryDirectory() as tmp:
        path = nf.write_collection(Path(tmp) / "c.h5", meta, originals, fsync=False)
        with nf.open(path) as reader:
            assert len(reader) == len(originals)
            for original, stored in zip(originals, reader.read_all()):
                assert_same(original, stored, meta)
            for i, original in enumerate(originals):
                assert_same(original, reader[i], meta)
            # the writer's batch digests, the column digests of a bulk read and the per-record
            # reference digest are one and the same canonical hash (NF-I001)
            stored = [bytes(h) for h in reader.stored_hashes()]
            assert stored == [record_digest(r) for r in originals]
            assert column_digests(reader.read_columns(0, len(reader))) == stored
        report = nf.validate(path)
        assert report.ok, report.to_text()
        assert report.records == len(originals)


def _meta(axes=2):
    return CollectionMeta(spatial_axes=axes, patch_feature_dim=3, entity_types=ENTITY_TYPES,
                          relation_types=RELATION_TYPES, label_names=LABELS, adjacency="custom",
                          provenance=Provenance(builder=SoftwareRef(name="t", version="1"), sdk=nf.sdk_ref(),
                                                created=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)))


def test_empty_graphs_round_trip(tmp_path):
    meta = _meta()
    geometry = nf.Geometry.for_image((32, 32), (16, 16))
    empty = nf.Record("empty", np.zeros((0, 3), np.float32), np.zeros(0, np.float32),
                      patch_positions=np.zeros((0, 2), np.int32), entity_text=[],
                      labels=np.full(2, np.nan, np.float32), geometry=geometry)
    patches_only = nf.Record("patches-only", np.ones((1, 3), np.float32), np.ones(1, np.float32),
                             patch_positions=np.zeros((1, 2), np.int32), entity_text=[],
                             labels=np.zeros(2, np.float32), geometry=geometry)
    path = nf.write_collection(tmp_path / "c.h5", meta, [empty, patches_only])
    with nf.open(path) as reader:
        stored = reader.read_all()
    for original, back in zip([empty, patches_only], stored):
        assert_same(original, back, meta)
        assert back.bridge is None and back.num_entities == 0
    assert stored[0].num_patches == 0
    assert nf.validate(path).codes <= {"NF-P001"}


def test_unicode_text_and_3d_positions(tmp_path):
    meta = _meta(axes=3)
    geometry = nf.Geometry.for_image((4, 64, 64), (1, 32, 32), (2.5, 0.7, 0.7))
    text = ["épanchement pleural", "肺炎", "Ödem 🫁", ""]
    record = nf.Record("ct-ü-1", np.arange(6, dtype=np.float32).reshape(2, 3), np.array([0.5, 0.25], np.float32),
                       patch_positions=np.array([[3, 1, 1], [0, 0, 1]], np.int32),
                       patch_edges=np.array([[0, 1]], np.int32), entity_types=np.array([0, 1, 2, -1], np.int16),
                       entity_assertions=np.array([0, 1, 2, -1], np.int8), entity_text=text,
                       bridge=(1, 2), labels=np.array([1, np.nan], np.float32), geometry=geometry,
                       report="Lésion — 3 mm", report_source="generated", group_key="grp-ß")
    path = nf.write_collection(tmp_path / "c.h5", meta, [record])
    with nf.open(path) as reader:
        back = reader.get("ct-ü-1")
    assert_same(record, back, meta)
    assert back.entity_text == text and back.patch_positions.tolist() == [[3, 1, 1], [0, 0, 1]]
