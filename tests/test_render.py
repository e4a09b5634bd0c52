"""Rendering a record: PNG size, the overlay, orientation of MONOCHROME1 sources, and the CLI."""
import numpy as np
import pytest
from PIL import Image

from neural_builders.kg import ENTITY_TYPES, RELATION_TYPES, get_extractor
from neural_builders.phantom import make_case
from neural_builders.render import BRIDGE_COLOUR, MARGIN, HEADER_PX, compute_layout, render_record, render_to_png
from neural_builders.visual_graph import build_visual_graph
from neural_format.fusion import betweenness_bridge
from neural_format.record import Geometry, Record

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
    from neural_format.synthetic import synthetic_meta
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
    from neural_format.synthetic import synthetic_meta, synthetic_records
    meta = synthetic_meta(axes=3, tiles=True)
    record = next(r for r in synthetic_records(6, meta, seed=2, patches=(20, 30)) if r.bridge is not None)
    figure = render_record(record, entity_types=meta.entity_types, relation_types=meta.relation_types,
                           panel_height=200, kg_width=300)
    assert figure.size == compute_layout(record.geometry.image_size[1:], record.report, panel_height=200,
                                         kg_width=300).size
    pixels = np.asarray(figure)
    assert np.all(pixels == BRIDGE_COLOUR, axis=-1)[:, :MARGIN + 200].any()
