"""The decoded image every builder stage works on, and the file kinds the decoders recognise
(the decoders :mod:`.dicom` and :mod:`.raster` build it; :mod:`.image` dispatches to them)."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Literal, Optional

import numpy as np

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


def file_size(path) -> int:
    """The source file's size in bytes (what the build reports as saved against)."""
    return int(os.stat(path).st_size)
