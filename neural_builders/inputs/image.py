"""Content-based dispatch to the image decoders (:mod:`.dicom`, :mod:`.raster`); the decoded
image itself is :class:`~neural_builders.inputs.loaded_image.LoadedImage` (re-exported here)."""
from __future__ import annotations

from pathlib import Path

from ..errors import IMAGE_UNREADABLE, IMAGE_UNSUPPORTED, BuildInputError
from .dicom import load_dicom
from .loaded_image import (DICOM_MAGIC, DICOM_MAGIC_OFFSET, JPEG_SIGNATURE, MAX_PIXELS,  # noqa: F401 (re-exported)
                           PNG_SIGNATURE, LoadedImage, SourceKind, file_size, sniff_kind)
from .raster import load_raster


def load_image(path) -> LoadedImage:
    """Load a DICOM, PNG or JPEG file, chosen by its content (not its file name).

    Raises :class:`~neural_builders.errors.BuildInputError` ``NB-I001`` for a missing, empty or
    undecodable file and ``NB-I002`` for content of another kind.
    """
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            head = handle.read(DICOM_MAGIC_OFFSET + 4)
    except OSError as exc:
        raise BuildInputError(IMAGE_UNREADABLE, f"cannot open image: {exc.strerror or exc}",
                              location=str(path)) from None
    if not head:
        raise BuildInputError(IMAGE_UNREADABLE, "image file is empty", location=str(path),
                              expected="> 0 bytes", found="0 bytes")
    kind = sniff_kind(head)
    if kind == "dicom":
        return load_dicom(path)
    if kind in ("png", "jpeg"):
        return load_raster(path)
    raise BuildInputError(IMAGE_UNSUPPORTED, "not a DICOM (Part 10), PNG or JPEG file", location=str(path),
                          expected="'DICM' at byte 128, PNG or JPEG signature", found=head[:8].hex())
