"""DICOM (Part 10) radiographs -> :class:`LoadedImage`, copying no patient-identifying attribute.

Order of operations, following DICOM PS3.3 C.11 (the grayscale pipeline):

1. Modality LUT: pydicom's ``apply_modality_lut`` (``RescaleSlope``/``RescaleIntercept`` or a
   Modality LUT Sequence) turns stored values into modality units.
2. VOI: pydicom's ``apply_voi_lut`` (``prefer_lut=True``): a VOI LUT Sequence when the file has
   one, else the first ``WindowCenter``/``WindowWidth`` with the ``VOILUTFunction`` (LINEAR,
   LINEAR_EXACT or SIGMOID). pydicom returns values in the output range the standard defines
   (``[0, 2^BitsStored - 1]`` after any rescale, or the LUT's ``[0, 2^bits - 1]``); that range is
   scaled to [0, 1] (:func:`voi_to_unit`). Without a VOI (or with one pydicom refuses, e.g. a
   LINEAR width < 1), data with more than 8 stored bits is normalised robustly: values are
   clipped to the 0.5th..99.5th percentiles and scaled to [0, 1]; 8-bit data is scaled by its full
   range (x / 255). ``LoadedImage.normalisation`` records which of these was done.
3. Presentation: MONOCHROME1 (minimum value = white) is inverted (``1 - x``) so that every
   returned image has white = dense. RGB / YBR data is reduced to luminance
   (0.299 R + 0.587 G + 0.114 B).

Pixel spacing is ``PixelSpacing`` when it is present and positive, else ``ImagerPixelSpacing``
(both in mm as (row, col)); zero or malformed spacings give None.

Only the attributes in :data:`GEOMETRY_TAGS` are copied into ``geometry_tags``; patient,
study, institution and device identifiers are never read into the result.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import IMAGE_UNREADABLE, IMAGE_UNUSABLE, BuildInputError
from .loaded_image import MAX_PIXELS, LoadedImage, file_size
from .. import optional_deps

PERCENTILES = (0.5, 99.5)

# Geometry and display attributes only. Names containing "Patient" here describe orientation
# in the patient coordinate system, not the patient.
GEOMETRY_TAGS = (
    "Rows", "Columns", "PixelSpacing", "ImagerPixelSpacing", "PhotometricInterpretation",
    "BitsStored", "BitsAllocated", "HighBit", "PixelRepresentation", "SamplesPerPixel",
    "NumberOfFrames", "Modality", "ViewPosition", "BodyPartExamined", "ImageLaterality",
    "WindowCenter", "WindowWidth", "VOILUTFunction", "RescaleSlope", "RescaleIntercept",
    "RescaleType", "SliceThickness", "SpacingBetweenSlices", "ImageOrientationPatient",
    "ImagePositionPatient",
)


def _plain(value):
    """A DICOM element value as JSON-friendly Python (float/int/str or lists of them)."""
    MultiValue = optional_deps.load("pydicom.multival", needed_by="load_dicom").MultiValue
    valuerep = optional_deps.load("pydicom.valuerep", needed_by="load_dicom")
    DSfloat, IS = valuerep.DSfloat, valuerep.IS
    if isinstance(value, (MultiValue, list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, DSfloat):
        return float(value)
    if isinstance(value, IS):
        return int(value)
    if isinstance(value, (int, float)):
        return value
    return str(value)


def geometry_tags(ds) -> dict:
    tags = {}
    for name in GEOMETRY_TAGS:
        value = ds.get(name)
        if value is None or value == "":
            continue
        try:
            tags[name] = _plain(value)
        except (TypeError, ValueError):
            continue  # a malformed value is not worth failing the image for
    return tags


def _first(value):
    MultiValue = optional_deps.load("pydicom.multival", needed_by="load_dicom").MultiValue
    if isinstance(value, (MultiValue, list, tuple)):
        return value[0] if len(value) else None
    return value


def _spacing(ds):
    for name in ("PixelSpacing", "ImagerPixelSpacing"):
        value = ds.get(name)
        try:
            row, col = (float(v) for v in value)
        except (TypeError, ValueError):
            continue
        if np.isfinite(row) and np.isfinite(col) and row > 0 and col > 0:
            return (row, col)
    return None


def voi_output_range(ds) -> tuple[float, float]:
    """The output range of ``pydicom.pixels.apply_voi_lut`` for this dataset (PS3.3 C.11.2):
    a VOI LUT Sequence maps to ``[0, 2^bits - 1]`` (bits from its LUT Descriptor); a window maps to
    what pydicom's windowing yields for inputs far below and above the window, i.e. the range it
    derives from ``BitsStored``, ``PixelRepresentation`` and any rescale."""
    apply_voi_lut = optional_deps.load("pydicom.pixels", needed_by="load_dicom").apply_voi_lut
    sequence = ds.get("VOILUTSequence")
    if sequence:
        bits = int(sequence[0].LUTDescriptor[2])
        return 0.0, float((1 << bits) - 1)
    with np.errstate(over="ignore"):  # SIGMOID of an extreme input saturates through exp overflow
        low, high = apply_voi_lut(np.array([-1e30, 1e30]), ds, index=0, prefer_lut=True)
    return float(low), float(high)


def voi_to_unit(values: np.ndarray, ds) -> np.ndarray:
    """``apply_voi_lut`` of modality values, scaled from its output range to [0, 1] (float32)."""
    apply_voi_lut = optional_deps.load("pydicom.pixels", needed_by="load_dicom").apply_voi_lut
    if ds.get("VOILUTSequence") and values.dtype.kind == "f":
        if not np.array_equal(values, np.round(values)):
            raise ValueError("a VOI LUT indexes integer values; the modality output is fractional")
        values = values.astype(np.int64)  # a LUT is a table lookup: integral rescale output is exact
    with np.errstate(over="ignore"):
        out = np.asarray(apply_voi_lut(values, ds, index=0, prefer_lut=True), dtype=np.float64)
    low, high = voi_output_range(ds)
    if high == low:
        raise ValueError("the VOI output range is empty")
    return np.clip((out - low) / (high - low), 0.0, 1.0).astype(np.float32)


def _voi_name(ds) -> str:
    if ds.get("VOILUTSequence"):
        return "dicom-voi-lut(sequence 1)"
    center, width = _first(ds.get("WindowCenter")), _first(ds.get("WindowWidth"))
    function = str(ds.get("VOILUTFunction", "LINEAR") or "LINEAR").upper()
    return f"dicom-window(center={float(center):g}, width={float(width):g}, {function.lower()})"


def percentile_normalise(values: np.ndarray, low: float = PERCENTILES[0], high: float = PERCENTILES[1]):
    """Clip to the ``low``..``high`` percentiles and scale to [0, 1]; None for a flat image."""
    lo, hi = np.percentile(values, [low, high])
    if not hi > lo:
        return None
    return np.clip((values.astype(np.float64) - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)


def load_dicom(path, *, voi: str = "dicom-window") -> LoadedImage:
    """Read one single-frame DICOM radiograph; see the module docstring for the pipeline.

    ``voi="dicom-window"`` (default) uses the file's window when it has one; ``voi="percentile"``
    always uses the 0.5..99.5 percentile rule (for files whose stored window spans the whole
    range and leaves a washed-out image).

    Raises ``NB-I001`` when the file cannot be parsed or its pixel data cannot be decoded
    (e.g. a compressed transfer syntax with no installed decoder) and ``NB-I003`` when it has no
    pixel data, several frames, an unsupported photometric interpretation or a flat image.
    """
    pydicom = optional_deps.load("pydicom", needed_by="load_dicom")
    InvalidDicomError = optional_deps.load("pydicom.errors", needed_by="load_dicom").InvalidDicomError

    path = Path(path)
    where = str(path)
    try:
        ds = pydicom.dcmread(path)
    except (InvalidDicomError, OSError, EOFError, ValueError, KeyError, TypeError) as exc:
        raise BuildInputError(IMAGE_UNREADABLE, f"not a readable DICOM file: {exc}", location=where) from None
    if "PixelData" not in ds:
        raise BuildInputError(IMAGE_UNUSABLE, "DICOM file has no pixel data", location=where,
                              expected="(7FE0,0010) PixelData", found="absent")
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    if frames != 1:
        raise BuildInputError(IMAGE_UNUSABLE, "multi-frame DICOM is not a 2-D radiograph", location=where,
                              expected="1 frame", found=f"{frames} frames")
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).upper()
    if photometric not in ("MONOCHROME1", "MONOCHROME2", "RGB", "YBR_FULL", "YBR_FULL_422",
                           "YBR_ICT", "YBR_RCT", "PALETTE COLOR"):
        raise BuildInputError(IMAGE_UNUSABLE, "unsupported photometric interpretation", location=where,
                              expected="MONOCHROME1/2 or RGB/YBR", found=photometric)
    try:
        declared = int(ds.get("Rows", 0) or 0) * int(ds.get("Columns", 0) or 0)
    except (TypeError, ValueError):
        declared = 0
    if declared > MAX_PIXELS:
        raise BuildInputError(IMAGE_UNUSABLE, "image is larger than the loader accepts", location=where,
                              expected=f"<= {MAX_PIXELS} pixels", found=f"{ds.Rows}x{ds.Columns}")
    try:
        raw = ds.pixel_array
    except Exception as exc:  # pydicom raises many types for absent/failed decoders
        syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", "unknown")
        raise BuildInputError(IMAGE_UNREADABLE, f"pixel data cannot be decoded: {exc}", location=where,
                              expected="a decodable transfer syntax", found=str(syntax)) from None

    if photometric == "PALETTE COLOR":
        apply_color_lut = optional_deps.load("pydicom.pixels", needed_by="load_dicom").apply_color_lut
        raw = apply_color_lut(raw, ds)
    if raw.ndim == 3:  # colour: pydicom already converted YBR to RGB
        if raw.shape[-1] != 3:
            raise BuildInputError(IMAGE_UNUSABLE, "unexpected colour layout", location=where,
                                  expected="(rows, cols, 3)", found=str(raw.shape))
        values = raw.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
        bits = int(ds.get("BitsStored", 8) or 8)
        scale = float((1 << bits) - 1)
        pixels = np.clip(values / scale, 0.0, 1.0).astype(np.float32)
        normalisation = f"full-range({bits}-bit), luminance of RGB"
    elif raw.ndim == 2:
        apply_modality_lut = optional_deps.load("pydicom.pixels", needed_by="load_dicom").apply_modality_lut
        modality = np.asarray(apply_modality_lut(raw, ds))
        values = modality.astype(np.float64)
        bits = int(ds.get("BitsStored", 8) or 8)
        has_voi = bool(ds.get("VOILUTSequence")) or ("WindowCenter" in ds and "WindowWidth" in ds)
        pixels = None
        if voi not in ("dicom-window", "percentile"):
            raise ValueError(f"voi must be 'dicom-window' or 'percentile', not {voi!r}")
        if voi == "dicom-window" and has_voi:
            try:
                pixels = voi_to_unit(modality, ds)
                normalisation = _voi_name(ds)
            except (ValueError, TypeError, IndexError, KeyError, AttributeError):
                pixels = None  # a window pydicom refuses (e.g. LINEAR width < 1): the rules below
        if pixels is None and bits > 8:
            pixels = percentile_normalise(values)
            normalisation = f"percentile({PERCENTILES[0]:g}, {PERCENTILES[1]:g})"
        elif pixels is None:
            pixels = np.clip(values / float((1 << bits) - 1), 0.0, 1.0).astype(np.float32)
            normalisation = f"full-range({bits}-bit)"
        if pixels is None or float(pixels.max()) == float(pixels.min()):
            raise BuildInputError(IMAGE_UNUSABLE, "image is flat after normalisation", location=where,
                                  expected="varying pixel values", found="a constant image")
        if photometric == "MONOCHROME1":
            pixels = 1.0 - pixels
            normalisation += ", inverted (MONOCHROME1)"
    else:
        raise BuildInputError(IMAGE_UNUSABLE, "pixel array is not 2-D", location=where,
                              expected="(rows, cols)", found=str(raw.shape))

    return LoadedImage(pixels=np.ascontiguousarray(pixels, dtype=np.float32), pixel_spacing=_spacing(ds),
                       source_bytes=file_size(path), source_kind="dicom", photometric=photometric,
                       normalisation=normalisation, geometry_tags=geometry_tags(ds))
