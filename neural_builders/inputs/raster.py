"""PNG and JPEG radiographs -> :class:`LoadedImage` via Pillow.

8-bit data is scaled by 255 and 16-bit data by 65535 (``normalisation = "full-range(N-bit)"``);
colour is reduced to luminance (0.299 R + 0.587 G + 0.114 B, ITU-R BT.601); alpha is dropped.
EXIF orientation is applied so that the image is the right way round. The raster is taken as
MONOCHROME2 (white = dense), the convention of exported radiographs; metadata chunks (text,
EXIF) are not copied. Pixel spacing is None: PNG/JPEG resolution fields hold display DPI, not
detector spacing.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import IMAGE_UNREADABLE, IMAGE_UNSUPPORTED, BuildInputError
from ..errors import IMAGE_UNUSABLE
from .loaded_image import MAX_PIXELS, LoadedImage, file_size, sniff_kind
from .. import optional_deps

LUMA = np.array([0.299, 0.587, 0.114])


def _pixels(image) -> tuple[np.ndarray, str, str]:
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        return np.asarray(image, dtype=np.float64) / 65535.0, "MONOCHROME2", "full-range(16-bit)"
    if mode == "I":  # 16-bit PNG on Pillow versions that widen it to int32
        values = np.asarray(image, dtype=np.float64)
        depth = 16 if values.max(initial=0) > 255 or image.info.get("bits", 16) == 16 else 8
        return values / float((1 << depth) - 1), "MONOCHROME2", f"full-range({depth}-bit)"
    if mode == "F":
        values = np.asarray(image, dtype=np.float64)
        lo, hi = float(values.min()), float(values.max())
        return (values - lo) / max(hi - lo, 1e-12), "MONOCHROME2", "min-max(float)"
    if mode in ("L", "1"):
        return np.asarray(image.convert("L"), dtype=np.float64) / 255.0, "MONOCHROME2", "full-range(8-bit)"
    if mode == "LA":
        return np.asarray(image.getchannel("L"), dtype=np.float64) / 255.0, "MONOCHROME2", "full-range(8-bit)"
    rgb = np.asarray(image.convert("RGB"), dtype=np.float64)
    return (rgb @ LUMA) / 255.0, "RGB", "full-range(8-bit), luminance of RGB"


def load_raster(path) -> LoadedImage:
    """Read a PNG or JPEG file; raises ``NB-I001`` (undecodable) or ``NB-I002`` (other format)."""
    Image = optional_deps.load("PIL.Image", needed_by="load_raster")
    ImageOps = optional_deps.load("PIL.ImageOps", needed_by="load_raster")
    UnidentifiedImageError = Image.UnidentifiedImageError

    path = Path(path)
    where = str(path)
    try:
        with open(path, "rb") as handle:
            kind = sniff_kind(handle.read(132))
        if kind not in ("png", "jpeg"):
            raise BuildInputError(IMAGE_UNSUPPORTED, "not a PNG or JPEG file", location=where,
                                  expected="PNG or JPEG signature", found=kind or "unknown")
        with Image.open(path) as image:
            if image.width * image.height > MAX_PIXELS:
                raise BuildInputError(IMAGE_UNUSABLE, "image is larger than the loader accepts", location=where,
                                      expected=f"<= {MAX_PIXELS} pixels", found=f"{image.width}x{image.height}")
            image.load()
            image = ImageOps.exif_transpose(image)
            values, photometric, normalisation = _pixels(image)
    except BuildInputError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise BuildInputError(IMAGE_UNREADABLE, f"image cannot be decoded: {exc}", location=where) from None
    pixels = np.clip(values, 0.0, 1.0).astype(np.float32)
    if pixels.ndim != 2 or min(pixels.shape) == 0:
        raise BuildInputError(IMAGE_UNREADABLE, "decoded image is not a 2-D raster", location=where,
                              expected="(rows, cols)", found=str(pixels.shape))
    tags = {"Rows": int(pixels.shape[0]), "Columns": int(pixels.shape[1]), "Mode": image.mode}
    return LoadedImage(pixels=np.ascontiguousarray(pixels), pixel_spacing=None, source_bytes=file_size(path),
                       source_kind=kind, photometric=photometric, normalisation=normalisation,
                       geometry_tags=tags)
