"""No patient-identifying DICOM value reaches a built collection.

A DICOM radiograph is written with pydicom carrying a patient name, ID, birth date and other
identifying attributes (institution, physicians, accession number, UIDs, address). It goes
through the builders' pipeline; then every file the build wrote is searched for each value, in
several spellings (as stored, lower/upper case, the name's parts, UTF-16), both in the raw
bytes and in the decoded contents of every dataset and attribute (so a compressed chunk cannot
hide a value).
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest

pydicom = pytest.importorskip("pydicom")

PHI = {
    "PatientName": "Doe^Jane^PHI",
    "PatientID": "PHI-123456",
    "PatientBirthDate": "19700101",
    "OtherPatientIDs": "PHI-OTHER-778899",
    "PatientAddress": "42 Secret Lane PHI-Town",
    "InstitutionName": "St PHI Hospital",
    "ReferringPhysicianName": "House^Gregory^PHI",
    "AccessionNumber": "ACC-PHI-5544",
    "StudyID": "STUDY-PHI-9",
    "StudyInstanceUID": "1.2.826.0.1.3680043.99.424242.1",
    "SeriesInstanceUID": "1.2.826.0.1.3680043.99.424242.2",
    "SOPInstanceUID": "1.2.826.0.1.3680043.99.424242.3",
}


def write_dicom(path: Path) -> None:
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1.1"  # digital X-ray for presentation
    meta.MediaStorageSOPInstanceUID = PHI["SOPInstanceUID"]
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = generate_uid()
    ds = Dataset()
    ds.file_meta = meta
    for key, value in PHI.items():
        setattr(ds, key, value)
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.StudyDate = "20240229"
    ds.Modality = "DX"
    ds.ViewPosition = "PA"
    ds.PatientSex = "F"
    ds.Rows, ds.Columns = 96, 80
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelSpacing = [0.2, 0.2]
    yy, xx = np.mgrid[0:96, 0:80]
    pixels = (2000 + 1500 * np.sin(yy / 9.0) * np.cos(xx / 7.0)).astype(np.uint16)
    ds.PixelData = pixels.tobytes()
    ds.save_as(path, enforce_file_format=True)


def spellings(value: str) -> set[bytes]:
    forms = {value}
    if "^" in value:
        parts = [p for p in value.split("^") if p]
        forms |= {" ".join(parts), " ".join(reversed(parts[:2])), parts[0] + ", " + parts[1]}
        forms |= {p for p in parts if len(p) >= 4}
    if value.isdigit() and len(value) == 8:  # a DA date: also ISO and dotted
        forms |= {f"{value[:4]}-{value[4:6]}-{value[6:]}", f"{value[6:]}.{value[4:6]}.{value[:4]}"}
    out = set()
    for form in forms:
        for cased in (form, form.lower(), form.upper()):
            out |= {cased.encode("utf-8"), cased.encode("utf-16-le")}
    return out


def decoded_contents(path: Path) -> bytes:
    """Every dataset's and attribute's values as bytes (chunks decompressed)."""
    import h5py
    pieces: list[bytes] = []

    def add(value):
        array = np.asarray(value)
        if array.dtype.kind == "O":
            pieces.extend(v if isinstance(v, bytes) else str(v).encode("utf-8") for v in array.ravel())
        else:
            pieces.append(array.tobytes())

    with h5py.File(path, "r") as f:
        def visit(name, obj):
            for key, value in obj.attrs.items():
                pieces.append(key.encode())
                add(value)
            if isinstance(obj, h5py.Dataset):
                add(obj[()])
        for key, value in f.attrs.items():
            add(value)
        f.visititems(visit)
    return b"\x00".join(pieces)


def build_from_dicom(dicom: Path, out: Path) -> list[Path]:
    """Run the builders' pipeline on one DICOM; return every file it wrote."""
    try:
        from neural_builders.build import build_collection  # noqa: F401
    except ImportError:
        build_collection = None
    if build_collection is not None:
        raise NotImplementedError  # replaced below once the builders' entry point exists
    # Until neural_builders.build lands: the builders' DICOM loader feeds the writer directly,
    # carrying everything the loader returns (pixels as tiles, geometry tags, normalisation).
    import neural_format as nf
    from neural_builders.inputs.dicom import load_dicom
    from neural_format.synthetic import synthetic_meta
    image = load_dicom(dicom)
    meta = synthetic_meta(feature_dim=8, tiles=True)
    meta = meta.model_copy(update={"tile_dtype": "float32", "provenance": meta.provenance.model_copy(
        update={"history": [f"{k}={v}" for k, v in image.geometry_tags.items()] + [image.normalisation]})})
    geometry = nf.Geometry.for_image(image.pixels.shape, (8, 8), pixel_spacing=image.pixel_spacing)
    grid = np.stack(np.unravel_index(np.arange(6), geometry.grid_shape), axis=1).astype(np.int32)
    tiles = np.stack([image.pixels[r * 8:(r + 1) * 8, c * 8:(c + 1) * 8] for r, c in grid]).astype(np.float32)
    record = nf.Record(dicom.stem, np.tile(tiles.reshape(6, -1).mean(1, keepdims=True), (1, 8)).astype(np.float32),
                       np.linspace(1, 0, 6).astype(np.float32), patch_positions=grid, geometry=geometry, tiles=tiles,
                       labels=np.array([np.nan], np.float32), entity_text=[], report="No acute findings.",
                       report_source="ground_truth")
    path = out / "collection.h5"
    nf.write_collection(path, meta, [record], compression="gzip")
    return [path]


def test_no_phi_in_output(tmp_path):
    dicom = tmp_path / "input" / "case-0001.dcm"
    dicom.parent.mkdir()
    write_dicom(dicom)
    source = dicom.read_bytes()
    for value in PHI.values():  # the input really carries every value
        assert value.encode() in source
    out = tmp_path / "out"
    out.mkdir()
    written = build_from_dicom(dicom, out)
    assert written and all(p.is_file() for p in written)
    found = []
    for path in written:
        haystacks = {"raw bytes": path.read_bytes()}
        if path.suffix == ".h5":
            haystacks["decoded contents"] = decoded_contents(path)
        for where, hay in haystacks.items():
            for tag, value in PHI.items():
                for needle in spellings(value):
                    if needle in hay:
                        found.append((path.name, where, tag, needle))
    assert not found, f"identifying values in the output: {found}"
    assert dt.date(1970, 1, 1).isoformat().encode() not in b"".join(p.read_bytes() for p in written)
