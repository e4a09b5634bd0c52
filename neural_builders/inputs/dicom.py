"""DICOM (Part 10) radiographs -> :class:`LoadedImage`, copying no patient-identifying attribute.

Order of operations, following DICOM PS3.3 C.11 (the grayscale pipeline):

1. Modality LUT (``RescaleSlope``/``RescaleIntercept`` or a Modality LUT Sequence) turns stored
   values into modality units.
2. VOI: if ``WindowCenter``/``WindowWidth`` are present the first window is applied with the
   ``VOILUTFunction`` (LINEAR, LINEAR_EXACT or SIGMOID), giving [0, 1]. Without a window, data
   with more than 8 stored bits is normalised robustly: values are clipped to the 0.5th..99.5th
   percentiles and scaled to [0, 1]; 8-bit data is scaled by its full range (x / 255).
   ``LoadedImage.normalisation`` records which of these was done. (VOI LUT *sequences* are not
   applied; such files fall back to the percentile rule, which the normalisation string says.)
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
from .image import MAX_PIXELS, LoadedImage, file_size

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
    from pydicom.multival import MultiValue
    from pydicom.valuerep import DSfloat, IS
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
    from pydicom.multival import MultiValue
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


def apply_window(values: np.ndarray, center: float, width: float, function: str = "LINEAR") -> np.ndarray:
    """DICOM PS3.3 C.11.2.1.2 VOI windowing to [0, 1].

    LINEAR: ``y = ((x - (c - 0.5)) / (w - 1) + 0.5)`` clipped to [0, 1] (w >= 1);
    LINEAR_EXACT: ``y = (x - c) / w + 0.5`` clipped; SIGMOID: ``y = 1 / (1 + exp(-4 (x - c) / w))``.
    """
    x = values.astype(np.float64, copy=False)
    function = (function or "LINEAR").upper()
    if function == "SIGMOID":
        y = 1.0 / (1.0 + np.exp(-4.0 * (x - center) / width))
    elif function == "LINEAR_EXACT":
        y = (x - center) / width + 0.5
    else:
        y = (x - (center - 0.5)) / max(width - 1.0, 1e-12) + 0.5
    return np.clip(y, 0.0, 1.0).astype(np.float32)


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
    import pydicom
    from pydicom.errors import InvalidDicomError

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
        from pydicom.pixels import apply_color_lut
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
        from pydicom.pixels import apply_modality_lut
        values = np.asarray(apply_modality_lut(raw, ds), dtype=np.float64)
        bits = int(ds.get("BitsStored", 8) or 8)
        center, width = _first(ds.get("WindowCenter")), _first(ds.get("WindowWidth"))
        function = str(ds.get("VOILUTFunction", "LINEAR") or "LINEAR").upper()
        pixels = None
        if voi not in ("dicom-window", "percentile"):
            raise ValueError(f"voi must be 'dicom-window' or 'percentile', not {voi!r}")
        if voi == "dicom-window" and center is not None and width is not None and float(width) >= 1.0:
            pixels = apply_window(values, float(center), float(width), function)
            normalisation = f"dicom-window(center={float(center):g}, width={float(width):g}, {function.lower()})"
        elif bits > 8:
            pixels = percentile_normalise(values)
            normalisation = f"percentile({PERCENTILES[0]:g}, {PERCENTILES[1]:g})"
        else:
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
