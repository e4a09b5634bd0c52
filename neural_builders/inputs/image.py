"""The decoded image every builder stage works on, and content-based dispatch to the decoders."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Optional

import numpy as np

from ..errors import IMAGE_UNREADABLE, IMAGE_UNSUPPORTED, BuildInputError

SourceKind = Literal["dicom", "png", "jpeg"]

DICOM_MAGIC_OFFSET = 128
DICOM_MAGIC = b"DICM"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
JPEG_SIGNATURE = b"\xff\xd8\xff"
# Largest image accepted (pixels). Radiographs are <= ~4k x 4k; a bigger declared size is
# refused before decoding so that a hostile header cannot make the loader allocate gigabytes.
MAX_PIXELS = 64 * 1024 * 1024


@dataclass
class LoadedImage:
    """A display-ready grayscale image and the few facts about its source the build may keep.

    ``pixels`` is float32, shape (H, W), in [0, 1], oriented for display with white = dense
    (bone bright, lungs dark): MONOCHROME1 sources have been inverted. ``pixel_spacing`` is
    (row_mm, col_mm) or None when the source states none. ``normalisation`` says how raw values
    became [0, 1] (e.g. ``"dicom-window(center=..., width=..., linear)"``,
    ``"percentile(0.5, 99.5)"``, ``"full-range(8-bit)"``). ``geometry_tags`` holds allow-listed,
    non-identifying acquisition/geometry attributes only.
    """
    pixels: np.ndarray
    pixel_spacing: Optional[tuple[float, float]]
    source_bytes: int
    source_kind: SourceKind
    photometric: str
    normalisation: str
    geometry_tags: dict = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.pixels.shape[0]), int(self.pixels.shape[1])

    def to_uint8(self) -> np.ndarray:
        """The pixels as 8-bit grayscale (round half up), e.g. for tiles or PNG export."""
        return np.clip(np.floor(self.pixels * 255.0 + 0.5), 0, 255).astype(np.uint8)


def sniff_kind(head: bytes) -> Optional[SourceKind]:
    """The image kind from the first bytes of a file (at least 132), or None."""
    if head[DICOM_MAGIC_OFFSET:DICOM_MAGIC_OFFSET + 4] == DICOM_MAGIC:
        return "dicom"
    if head.startswith(PNG_SIGNATURE):
        return "png"
    if head.startswith(JPEG_SIGNATURE):
        return "jpeg"
    return None


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
        from .dicom import load_dicom
        return load_dicom(path)
    if kind in ("png", "jpeg"):
        from .raster import load_raster
        return load_raster(path)
    raise BuildInputError(IMAGE_UNSUPPORTED, "not a DICOM (Part 10), PNG or JPEG file", location=str(path),
                          expected="'DICM' at byte 128, PNG or JPEG signature", found=head[:8].hex())


def file_size(path) -> int:
    return int(os.stat(path).st_size)
