"""Builder inputs: DICOM/PNG/JPEG loading, report sections, the IU X-ray reader, pairing skips."""
import dataclasses
import importlib.util
import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest

pydicom = pytest.importorskip("pydicom")
from PIL import Image  # noqa: E402

from neural_builders.errors import BuildInputError  # noqa: E402
from neural_builders.inputs import (extract_sections, load_dicom, load_image, load_iu_xray_reports,  # noqa: E402
                                    load_reports_csv, load_reports_dir, pair_inputs, report_from_text)
from neural_builders.inputs.dicom import GEOMETRY_TAGS  # noqa: E402
from neural_format.errors import NeuralFormatError  # noqa: E402

IDENTIFIERS = {"PatientName": "Doe^Jane^Q", "PatientID": "MRN-99812377", "PatientBirthDate": "19530214",
               "InstitutionName": "Saint Nowhere Hospital", "AccessionNumber": "ACC55501923"}


def _rg1_path():
    spec = importlib.util.find_spec("data_store")
    if spec is None:
        pytest.skip("pydicom-data not installed")
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / "RG1_UNCR.dcm"
    if not path.exists():
        pytest.skip("RG1_UNCR.dcm not shipped")
    return path


def write_dicom(path, pixels, *, photometric="MONOCHROME2", bits=12, window=None, spacing=(0.2, 0.3),
                frames=1, with_pixels=True):
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    for key, value in IDENTIFIERS.items():
        setattr(ds, key, value)
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Modality, ds.ViewPosition = "DX", "PA"
    ds.Rows, ds.Columns = pixels.shape[-2:]
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, photometric
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, bits, bits - 1, 0
    ds.PixelSpacing = list(spacing)
    if frames > 1:
        ds.NumberOfFrames = frames
    if window is not None:
        ds.WindowCenter, ds.WindowWidth = window
    if with_pixels:
        ds.PixelData = pixels.astype(np.uint16).tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path


def phantom_raw(shape=(64, 48), bits=12):
    """Raw detector values: a low background with a high-valued square (dense if MONOCHROME2)."""
    raw = np.full(shape, 300, np.uint16)
    raw[20:40, 15:35] = (1 << bits) - 200
    raw += np.arange(shape[1], dtype=np.uint16)[None, :]
    return raw


def all_text(loaded) -> str:
    fields = {f.name: getattr(loaded, f.name) for f in dataclasses.fields(loaded) if f.name != "pixels"}
    return repr(fields) + json.dumps(loaded.geometry_tags)


# -- DICOM ----------------------------------------------------------------------------------
def test_rg1_monochrome1_is_inverted_lungs_dark_mediastinum_bright():
    loaded = load_image(_rg1_path())
    assert loaded.source_kind == "dicom" and loaded.photometric == "MONOCHROME1"
    assert "inverted" in loaded.normalisation
    p = loaded.pixels
    assert p.dtype == np.float32 and 0.0 <= p.min() and p.max() <= 1.0
    H, W = p.shape
    rows = slice(int(0.3 * H), int(0.6 * H))
    centre = p[rows, int(0.47 * W):int(0.53 * W)].mean()
    lungs = np.mean([p[rows, int(0.2 * W):int(0.3 * W)].mean(), p[rows, int(0.7 * W):int(0.8 * W)].mean()])
    assert centre > lungs + 0.15, (centre, lungs)
    assert set(loaded.geometry_tags) <= set(GEOMETRY_TAGS)
    assert loaded.pixel_spacing is None  # the file states PixelSpacing 0\0, which is no spacing


@pytest.mark.parametrize("window", [None, (2000, 4000)])
def test_generated_dicom_monochrome1_vs_2_and_no_identifiers(tmp_path, window):
    raw = phantom_raw()
    m2 = load_dicom(write_dicom(tmp_path / "m2.dcm", raw, window=window))
    m1 = load_dicom(write_dicom(tmp_path / "m1.dcm", raw, photometric="MONOCHROME1", window=window))
    np.testing.assert_allclose(m1.pixels, 1.0 - m2.pixels, atol=1e-6)
    assert m2.pixels[25:35, 20:30].mean() > 0.8 > 0.2 > m1.pixels[25:35, 20:30].mean()
    expected = "dicom-window(center=2000, width=4000, linear)" if window else "percentile(0.5, 99.5)"
    assert m2.normalisation == expected and m1.normalisation == expected + ", inverted (MONOCHROME1)"
    assert m2.pixel_spacing == (0.2, 0.3) and m2.geometry_tags["BitsStored"] == 12
    for loaded in (m1, m2):
        text = all_text(loaded)
        for value in IDENTIFIERS.values():
            assert value not in text and value.split("^")[0] not in text
        assert not any("Patient" in k and k not in ("ImageOrientationPatient", "ImagePositionPatient")
                       for k in loaded.geometry_tags)


def test_percentile_normalisation_is_robust_to_outliers(tmp_path):
    raw = phantom_raw()
    raw[0, 0] = 4095  # one hot pixel must not squash the contrast of everything else
    raw[0, 1] = 0
    loaded = load_dicom(write_dicom(tmp_path / "o.dcm", raw))
    assert loaded.pixels[25:35, 20:30].mean() > 0.95 and loaded.pixels[50:60, 0:5].mean() < 0.05


def test_dicom_percentile_override(tmp_path):
    path = write_dicom(tmp_path / "w.dcm", phantom_raw(), window=(2048, 4096))
    assert load_dicom(path, voi="percentile").normalisation.startswith("percentile")


@pytest.mark.parametrize("kwargs,code", [({"frames": 2}, "NB-I003"), ({"with_pixels": False}, "NB-I003")])
def test_unusable_dicom(tmp_path, kwargs, code):
    raw = phantom_raw()
    if kwargs.get("frames"):
        raw = np.stack([raw, raw])
    path = write_dicom(tmp_path / "bad.dcm", raw, **kwargs)
    with pytest.raises(BuildInputError) as info:
        load_image(path)
    assert info.value.code == code and str(path) in str(info.value)


def test_oversized_images_are_refused_before_decoding(tmp_path, monkeypatch):
    import neural_builders.inputs.dicom as dicom_module
    import neural_builders.inputs.raster as raster_module
    monkeypatch.setattr(dicom_module, "MAX_PIXELS", 100)
    monkeypatch.setattr(raster_module, "MAX_PIXELS", 100)
    Image.fromarray(np.zeros((20, 20), np.uint8)).save(tmp_path / "big.png")
    for path in (tmp_path / "big.png", write_dicom(tmp_path / "big.dcm", phantom_raw())):
        with pytest.raises(BuildInputError) as info:
            load_image(path)
        assert info.value.code == "NB-I003" and "larger" in info.value.message


def test_unreadable_inputs_raise_coded_errors(tmp_path):
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    text = tmp_path / "notes.png"
    text.write_bytes(b"hello, I am not an image" * 10)
    truncated = tmp_path / "trunc.png"
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((50, 50), np.uint8)).save(buffer, format="PNG")
    truncated.write_bytes(buffer.getvalue()[:40])
    cases = {tmp_path / "missing.dcm": "NB-I001", empty: "NB-I001", text: "NB-I002", truncated: "NB-I001"}
    for path, code in cases.items():
        with pytest.raises(NeuralFormatError) as info:
            load_image(path)
        assert isinstance(info.value, BuildInputError) and info.value.code == code, path


# -- PNG / JPEG -------------------------------------------------------------------------------
def test_png_8_16_bit_rgb_and_jpeg(tmp_path):
    gray = (np.arange(60 * 40).reshape(60, 40) % 256).astype(np.uint8)
    Image.fromarray(gray, "L").save(tmp_path / "g8.png")
    deep = (gray.astype(np.uint16) * 257)
    Image.fromarray(deep).save(tmp_path / "g16.png")
    rgb = np.stack([gray, gray, gray], -1)
    Image.fromarray(rgb, "RGB").save(tmp_path / "rgb.png")
    Image.fromarray(gray, "L").save(tmp_path / "g.jpg", quality=95)
    g8, g16, c, j = (load_image(tmp_path / n) for n in ("g8.png", "g16.png", "rgb.png", "g.jpg"))
    for loaded in (g8, g16, c, j):
        assert loaded.pixels.shape == (60, 40) and loaded.pixels.dtype == np.float32
        assert loaded.pixel_spacing is None
    np.testing.assert_allclose(g8.pixels, gray / 255.0, atol=1e-6)
    np.testing.assert_allclose(g16.pixels, gray / 255.0, atol=1e-6)
    np.testing.assert_allclose(c.pixels, gray / 255.0, atol=1e-3)
    assert np.abs(j.pixels - gray / 255.0).mean() < 0.03
    assert (g8.source_kind, g16.normalisation, c.photometric, j.source_kind) == \
        ("png", "full-range(16-bit)", "RGB", "jpeg")
    assert g8.source_bytes == (tmp_path / "g8.png").stat().st_size


def test_dispatch_is_by_content_not_name(tmp_path):
    Image.fromarray(np.full((8, 8), 128, np.uint8), "L").save(tmp_path / "x.png")
    disguised = tmp_path / "really_png.dcm"
    disguised.write_bytes((tmp_path / "x.png").read_bytes())
    assert load_image(disguised).source_kind == "png"


# -- reports -----------------------------------------------------------------------------------
def test_extract_sections():
    s = extract_sections("INDICATION: cough.\nFINDINGS: Lungs are clear. No effusion\nIMPRESSION: Normal chest.")
    assert (s.findings, s.impression) == ("Lungs are clear. No effusion", "Normal chest.")
    assert s.text_for_model == "Lungs are clear. No effusion. Normal chest."
    inline = extract_sections("findings: small left effusion. impression: effusion. recommendation: follow up")
    assert (inline.findings, inline.impression) == ("small left effusion.", "effusion.")
    assert extract_sections("No acute disease.").text_for_model == "No acute disease."
    assert extract_sections("Conclusion: pneumonia").impression == "pneumonia"
    assert extract_sections("INDICATION: fever. COMPARISON: none.").is_empty


def test_reports_csv_and_dir(tmp_path):
    csv_path = tmp_path / "r.csv"
    csv_path.write_text("ID,Findings,Impression\na,Lungs clear,Normal\nb,,\n", encoding="utf-8")
    reports = load_reports_csv(csv_path)
    assert [r.report_id for r in reports] == ["a", "b"]
    assert reports[0].text_for_model == "Lungs clear. Normal" and reports[1].sections.is_empty
    bad = tmp_path / "bad.csv"
    bad.write_text("name,words\nx,y\n")
    with pytest.raises(BuildInputError) as info:
        load_reports_csv(bad)
    assert info.value.code == "NB-R003"
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "c1.txt").write_text("FINDINGS: No pneumothorax.")
    assert load_reports_dir(tmp_path / "d")[0].sections.findings == "No pneumothorax."


def _iu_xml(uid, findings, impression, images=("IMG-1",), doctype=""):
    parts = "".join(f'<parentImage id="{uid}_{i}"/>' for i in images)
    return (f'<?xml version="1.0" encoding="utf-8"?>{doctype}<eCitation><uId id="{uid}"/><MedlineCitation><Article>'
            f'<Abstract><AbstractText Label="FINDINGS">{findings}</AbstractText>'
            f'<AbstractText Label="IMPRESSION">{impression}</AbstractText></Abstract></Article></MedlineCitation>'
            f'<MeSH><major>normal</major></MeSH>{parts}</eCitation>').encode()


def test_iu_reader_skips_empty_and_refuses_dtds(tmp_path):
    bomb = '<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]>'
    members = {"ecgen-radiology/1.xml": _iu_xml("CXR1", "No pneumothorax.", "Normal."),
               "ecgen-radiology/2.xml": _iu_xml("CXR2", "", ""),
               "ecgen-radiology/3.xml": _iu_xml("CXR3", "&lol2;", "x", doctype=bomb),
               "ecgen-radiology/4.xml": b"<eCitation><unclosed>"}
    archive = tmp_path / "r.tgz"
    with tarfile.open(archive, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    skipped = []
    reports = load_iu_xray_reports(archive, skipped=skipped)
    assert [r.report_id for r in reports] == ["CXR1"]
    assert reports[0].image_ids == ("CXR1_IMG-1",) and reports[0].mesh == ("normal",)
    codes = {s.id: s.code for s in skipped}
    assert codes == {"CXR2": "", "ecgen-radiology/3.xml": "NB-R002", "ecgen-radiology/4.xml": "NB-R001"}


def test_real_iu_reports_read():
    try:
        reports = load_iu_xray_reports(limit=25)
    except BuildInputError:
        pytest.skip("torchxrayvision not installed")
    assert len(reports) == 25 and all(r.report_id.startswith("CXR") and r.text_for_model for r in reports)
    assert any(r.sections.findings and r.sections.impression for r in reports)


# -- pairing -----------------------------------------------------------------------------------
def test_pairing_skips_with_reasons(tmp_path):
    images = tmp_path / "img"
    images.mkdir()
    Image.fromarray(np.full((16, 16), 90, np.uint8), "L").save(images / "good.png")
    Image.fromarray(np.full((16, 16), 90, np.uint8), "L").save(images / "CXR7_IM-1.png")
    Image.fromarray(np.full((16, 16), 90, np.uint8), "L").save(images / "lonely.png")
    Image.fromarray(np.full((16, 16), 90, np.uint8), "L").save(images / "blank.png")
    (images / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 30)
    from neural_builders.inputs.reports import Report, Sections
    reports = [report_from_text("good", "FINDINGS: No effusion."), report_from_text("broken", "No pneumothorax."),
               report_from_text("blank", "INDICATION: cough."), report_from_text("orphan", "Lungs clear."),
               Report("CXR7", "x", Sections("Lungs clear.", "", "Lungs clear."), "iu-xray", ("CXR7_IM-1",))]
    pairs, skipped = pair_inputs(images, reports)
    assert sorted(p.case_id for p in pairs) == ["CXR7_IM-1", "good"]
    assert all(p.image is not None and p.image.pixels.shape == (16, 16) for p in pairs)
    reasons = {(s.id, s.stage) for s in skipped}
    assert reasons == {("broken", "image"), ("blank", "report"), ("lonely", "pairing"), ("orphan", "pairing")}
    assert next(s for s in skipped if s.id == "broken").code == "NB-I001"
    lazy, _ = pair_inputs(images, reports, load_images=False)
    assert all(p.image is None for p in lazy) and len(lazy) == 3  # the broken image is not opened


# -- VOI through pydicom, cross-checked against the former hand-written window ------------------
def _hand_window(x, center, width, function="LINEAR"):
    """PS3.3 C.11.2.1.2 to [0, 1], as the loader computed it before adopting pydicom's apply_voi_lut."""
    x = x.astype(np.float64)
    if function == "SIGMOID":
        y = 1.0 / (1.0 + np.exp(-4.0 * (x - center) / width))
    elif function == "LINEAR_EXACT":
        y = (x - center) / width + 0.5
    else:
        y = (x - (center - 0.5)) / (width - 1.0) + 0.5
    return np.clip(y, 0.0, 1.0)


@pytest.mark.parametrize("function", ["LINEAR", "LINEAR_EXACT", "SIGMOID"])
@pytest.mark.parametrize("photometric", ["MONOCHROME2", "MONOCHROME1"])
def test_pydicom_voi_matches_the_standard_window(tmp_path, function, photometric):
    import pydicom
    raw = phantom_raw()
    path = write_dicom(tmp_path / "w.dcm", raw, window=(1500, 2500), photometric=photometric)
    ds = pydicom.dcmread(path)
    ds.VOILUTFunction = function
    ds.save_as(path)
    loaded = load_dicom(path)
    expected = _hand_window(raw, 1500, 2500, function)
    if photometric == "MONOCHROME1":
        expected = 1.0 - expected  # still inverted after pydicom's VOI
        assert loaded.normalisation.endswith("inverted (MONOCHROME1)")
    # pydicom works on the 12-bit output scale and the hand formula on [0, 1]: equal to float32
    np.testing.assert_allclose(loaded.pixels, expected, atol=2e-6)
    assert loaded.normalisation.startswith(f"dicom-window(center=1500, width=2500, {function.lower()})")


def test_voi_lut_sequence_is_applied(tmp_path):
    """A VOI LUT Sequence (formerly ignored) now maps through pydicom's apply_voi_lut."""
    import pydicom
    from pydicom.dataset import Dataset
    raw = phantom_raw(bits=12)
    path = write_dicom(tmp_path / "lut.dcm", raw)
    ds = pydicom.dcmread(path)
    item = Dataset()
    entries = 4096
    lut = (np.sqrt(np.arange(entries) / (entries - 1)) * 65535).astype(np.uint16)  # a gamma-like display LUT
    item.LUTDescriptor = [entries, 0, 16]
    item.add_new(0x00283006, "US", lut.tolist())  # LUT Data
    ds.VOILUTSequence = [item]
    ds.save_as(path)
    loaded = load_dicom(path)
    assert loaded.normalisation == "dicom-voi-lut(sequence 1)"
    np.testing.assert_allclose(loaded.pixels, lut[raw] / 65535.0, atol=1e-6)


def test_window_pydicom_refuses_falls_back_to_percentile(tmp_path):
    path = write_dicom(tmp_path / "n.dcm", phantom_raw(), window=(2000, 0.5))  # LINEAR needs width >= 1
    assert load_dicom(path).normalisation.startswith("percentile")
