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


REPORT = "Patchy opacity in the right lower lobe. No pleural effusion. Heart size normal."


def build_from_dicom(dicom: Path, out: Path) -> list[Path]:
    """The builders' pipeline on one DICOM (pairing by file stem, tiny random model); every file written."""
    pytest.importorskip("torch")
    import torch
    from neural_builders.build import BuildConfig, build_collection, inputs_from_pairs
    from neural_builders.inputs import load_reports, pair_inputs
    from neural_builders.vlm.model import ReportGenerator, tiny_config
    from neural_builders.vlm.tokenizer import train_report_tokenizer
    from neural_format.format.metadata import PruningPolicy, TopKPercent

    reports = out.parent / "reports.csv"
    reports.write_text(f"id,report,pneumonia\n{dicom.stem},{REPORT},1\n", encoding="utf-8")
    tokenizer = train_report_tokenizer([REPORT])
    torch.manual_seed(0)
    config = tiny_config(len(tokenizer))
    config["swin"].update(embed_dim=8, num_heads=[1, 1, 2, 2], depths=[1, 1, 1, 1])
    ReportGenerator(config).save_pretrained(out.parent / "model", tokenizer=tokenizer)
    model = ReportGenerator.from_pretrained(out.parent / "model")
    pairs, skipped = pair_inputs(dicom.parent, load_reports(reports), load_images=False)
    assert [p.case_id for p in pairs] == [dicom.stem] and not skipped
    path = out / "collection.h5"
    summary = build_collection(inputs_from_pairs(pairs, {dicom.stem: [1.0]}), model,
                               BuildConfig(policy=PruningPolicy(rule=TopKPercent(percent=50)), tiles="uint16",
                                           batch_size=1, progress=False), path)
    assert summary.records_written == 1
    return sorted(p for p in out.rglob("*") if p.is_file())


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
