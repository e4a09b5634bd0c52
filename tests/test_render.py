"""Rendering a record: PNG size, the overlay, orientation of MONOCHROME1 sources, and the CLI."""
import numpy as np
import pytest
pytest.importorskip("PIL")
from PIL import Image  # noqa: E402

from neural_builders.kg import ENTITY_TYPES, RELATION_TYPES, get_extractor  # noqa: E402
from neural_builders.phantom import make_case  # noqa: E402
from neural_builders.render import BRIDGE_COLOUR, MARGIN, HEADER_PX, compute_layout, render_record, render_to_png  # noqa: E402
from neural_builders.visual_graph import build_visual_graph  # noqa: E402
from neural_format.graphs.fusion import betweenness_bridge  # noqa: E402
from neural_format.format.record import Geometry, Record  # noqa: E402

PATCH = 16


def phantom_record(keep=12, size=(128, 112)):
    case = make_case(2, 1, size=size, positive=True)
    geometry = Geometry.for_image(size, (PATCH, PATCH))
    gh, gw = geometry.grid_shape
    padded = np.zeros((gh * PATCH, gw * PATCH), np.float32)
    padded[:size[0], :size[1]] = case.lesion_masks.sum(0)
    score = padded.reshape(gh, PATCH, gw, PATCH).mean(axis=(1, 3)).ravel() + np.linspace(0, 0.01, gh * gw)
    kept = np.argsort(-score, kind="stable")[:keep]
    positions, edges = build_visual_graph(kept, geometry.grid_shape)
    kg = get_extractor("rules").extract(case.report)
    columns = kg.to_arrays(ENTITY_TYPES, RELATION_TYPES)
    image = np.zeros((gh * PATCH, gw * PATCH), np.float32)
    image[:size[0], :size[1]] = case.image
    tiles = np.stack([(image[r * PATCH:(r + 1) * PATCH, c * PATCH:(c + 1) * PATCH] * 255).astype(np.uint8)
                      for r, c in positions])
    record = Record(record_id=case.case_id, patch_features=np.zeros((keep, 4), np.float32),
                    patch_scores=score[kept].astype(np.float32), patch_positions=positions, patch_edges=edges,
                    bridge=betweenness_bridge(keep, edges, len(kg), columns["relations"]), geometry=geometry,
                    tiles=tiles, report=case.report, report_source="ground_truth",
                    labels=np.array([case.label], np.float32), **columns)
    return case, record


VOCAB = dict(entity_types=ENTITY_TYPES, relation_types=RELATION_TYPES, label_names=["pneumonia"])


@pytest.mark.parametrize("with_image", [True, False])
def test_render_png_has_the_planned_size_and_a_bridge(tmp_path, with_image):
    case, record = phantom_record()
    out = tmp_path / "r.png"
    size = render_to_png(record, out, image=case.image if with_image else None, panel_height=256, kg_width=400, **VOCAB)
    expected = compute_layout(case.image.shape, record.report, panel_height=256, kg_width=400)
    with Image.open(out) as png:
        assert png.format == "PNG" and png.size == size == expected.size
        pixels = np.asarray(png.convert("RGB"))
    assert expected.image_width == round(112 * 256 / 128)
    assert record.bridge is not None
    magenta = np.all(pixels == BRIDGE_COLOUR, axis=-1)
    assert magenta[:, :MARGIN + expected.image_width].any() and magenta[:, MARGIN + expected.image_width:].any()
    panel = pixels[HEADER_PX + MARGIN:HEADER_PX + MARGIN + 256, MARGIN:MARGIN + expected.image_width]
    assert panel.std() > 10  # something was drawn


def test_render_reconstructs_from_tiles_on_a_dark_canvas():
    case, record = phantom_record(keep=3)
    figure = render_record(record, panel_height=128, kg_width=300, **VOCAB)
    panel = np.asarray(figure.convert("L"))[HEADER_PX + MARGIN:HEADER_PX + MARGIN + 128, MARGIN:MARGIN + 112]
    assert np.median(panel) < 30  # most of the canvas is not covered by the 3 tiles


def test_monochrome1_renders_the_right_way_round(tmp_path):
    pytest.importorskip("pydicom")
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid
    raw = np.full((64, 48), 300, np.uint16)
    raw[20:40, 15:35] = 3900  # high raw values: dark in MONOCHROME1
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = SecondaryCaptureImageStorage, generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset("m1.dcm", {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Rows, ds.Columns, ds.SamplesPerPixel, ds.PhotometricInterpretation = 64, 48, 1, "MONOCHROME1"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelData = raw.tobytes()
    path = tmp_path / "m1.dcm"
    ds.save_as(path, enforce_file_format=True)
    geometry = Geometry.for_image((64, 48), (16, 16))
    record = Record(record_id="m1", patch_features=np.zeros((1, 4), np.float32), patch_scores=np.ones(1, np.float32),
                    patch_positions=np.array([[3, 0]], np.int32), geometry=geometry)
    figure = render_record(record, image=path, panel_height=128, kg_width=200, **VOCAB)
    gray = np.asarray(figure.convert("L")).astype(float)
    top, left, scale = HEADER_PX + MARGIN, MARGIN, 2
    square = gray[top + 25 * scale:top + 35 * scale, left + 20 * scale:left + 30 * scale].mean()
    background = gray[top + 2 * scale:top + 12 * scale, left + 20 * scale:left + 30 * scale].mean()
    assert square < background - 100  # MONOCHROME1 high values are shown dark


def test_render_cli(tmp_path):
    import neural_format as nf
    from neural_format.cli import main
    from neural_format.collections.synthetic import synthetic_meta
    case, record = phantom_record()
    meta = synthetic_meta(feature_dim=4, tiles=True).model_copy(update={
        "tile_shape": [PATCH, PATCH], "entity_types": list(ENTITY_TYPES), "relation_types": list(RELATION_TYPES)})
    path = nf.write_collection(tmp_path / "c.h5", meta, [record])
    out = tmp_path / "cli.png"
    assert main(["render", str(path), "--record", record.record_id, "--out", str(out), "--height", "200"]) == 0
    with Image.open(out) as png:
        assert png.size == compute_layout((128, 112), record.report, panel_height=200).size
    assert main(["render", str(path), "--record", "no-such-id", "--out", str(tmp_path / "x.png")]) != 0


def test_render_volume_draws_the_bridged_slice():
    from neural_format.collections.synthetic import synthetic_meta, synthetic_records
    meta = synthetic_meta(axes=3, tiles=True)
    record = next(r for r in synthetic_records(6, meta, seed=2, patches=(20, 30)) if r.bridge is not None)
    figure = render_record(record, entity_types=meta.entity_types, relation_types=meta.relation_types,
                           panel_height=200, kg_width=300)
    assert figure.size == compute_layout(record.geometry.image_size[1:], record.report, panel_height=200,
                                         kg_width=300).size
    pixels = np.asarray(figure)
    assert np.all(pixels == BRIDGE_COLOUR, axis=-1)[:, :MARGIN + 200].any()


# -- layout: unrelated entities, nodes on edges, caption and colour bar ------------------------
def _kg_record(ents, rels, bridge=None):
    entity_code = {n: i for i, n in enumerate(ENTITY_TYPES)}
    relation_code = {n: i for i, n in enumerate(RELATION_TYPES)}
    return Record(record_id="kg", patch_features=np.zeros((2, 4), np.float32),
                  patch_scores=np.array([0.2, 0.9], np.float32),
                  patch_positions=np.array([[0, 0], [3, 4]], np.int32), patch_edges=np.zeros((0, 2), np.int32),
                  geometry=Geometry.for_image((128, 128), (16, 16)),
                  entity_types=np.array([entity_code[t] for _, t in ents], np.int32),
                  entity_assertions=np.zeros(len(ents), np.int8), entity_text=[n for n, _ in ents],
                  relations=np.array([(a, b) for a, b, _ in rels], np.int32).reshape(-1, 2),
                  relation_types=np.array([relation_code[r] for _, _, r in rels], np.int32), bridge=bridge)


def _placed(record, panel=(600, 48, 560, 512)):
    from PIL import ImageDraw

    from neural_builders.render import _font, place_entities
    draw = ImageDraw.Draw(Image.new("RGB", (1200, 700)))
    names = record.entity_names(list(ENTITY_TYPES))
    return place_entities(draw, record, names, record.entity_text, panel, _font(13))


def test_unrelated_entities_sit_in_a_foot_row_off_every_edge():
    from neural_builders.render import crossings, isolated_entities
    ents = [("left", "modifier"), ("lung", "anatomy"), ("opacity", "finding"), ("effusion", "finding"),
            ("nodule", "finding"), ("pneumothorax", "finding"), ("base", "anatomy")]
    rels = [(0, 1, "modifies"), (2, 6, "located_at"), (4, 1, "located_at")]
    record = _kg_record(ents, rels, bridge=(1, 2))
    assert isolated_entities(len(ents), record.relations, 2) == [3, 5]
    boxes, foot_top = _placed(record)
    assert foot_top is not None
    assert all(boxes[k][1] > foot_top for k in (3, 5))  # below the line, where no edge runs
    assert all(boxes[k][3] < foot_top for k in (0, 1, 2, 4, 6))
    assert crossings(boxes, record.relations) == []


def test_a_column_node_an_edge_runs_through_is_moved():
    from neural_builders.render import crossings
    # a straight modifier -> anatomy edge across the middle column, whose three findings are all related
    ents = [("left", "modifier"), ("lung", "anatomy"), ("a", "finding"), ("b", "finding"), ("c", "finding"),
            ("apex", "anatomy"), ("base", "anatomy")]
    rels = [(0, 1, "modifies"), (2, 5, "located_at"), (3, 1, "located_at"), (4, 6, "located_at")]
    record = _kg_record(ents, rels)
    boxes, _ = _placed(record)
    assert crossings(boxes, record.relations) == []
    middle = sorted((boxes[k][1], boxes[k][3]) for k in (2, 3, 4))
    assert all(b[0] > a[1] for a, b in zip(middle, middle[1:]))  # still apart in their column


def test_caption_and_colour_bar_are_below_the_image_not_on_it():
    from neural_builders.render import LEGEND_PX, score_colour
    record = _kg_record([("opacity", "finding")], [])
    record = Record(**{**record.__dict__, "patch_positions": np.array([[0, 0], [7, 7]], np.int32)})
    flat = np.full((128, 128), 0.5, np.float32)
    figure = render_record(record, image=flat, panel_height=256, kg_width=300, **VOCAB)
    pixels = np.asarray(figure.convert("RGB")).astype(int)
    top, left = HEADER_PX + MARGIN, MARGIN
    # the image's top-left band (where the caption used to be) holds only the image and the patch box
    band = pixels[top + 40:top + 60, left + 40:left + 200]
    assert np.ptp(band) == 0
    strip = pixels[top + 256:top + 256 + LEGEND_PX, left:left + 256]
    for value in (0.0, 1.0):  # the colour bar's ends are in the strip
        assert np.all(strip == score_colour(value), axis=-1).any()
