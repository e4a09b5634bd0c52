"""How a collection file stores its columns: compression filter, gzip level, chunk size.

Derived files (``reprune``, ``merge``) keep the input's storage settings unless told otherwise: a
gzip file re-pruned to 14 % of its patches must not come out twice as large because the output
was written unfiltered. The settings are read from ``/patches/features``, the column that holds
almost every byte; the writer applies one rule to every column (see
:class:`neural_format.files.writer.CollectionWriter`), so that column's settings describe the file.
The feature dtypes are part of the metadata (``patch_feature_dtype``) and travel with it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Optional

__all__ = ["StorageSettings", "read_storage", "COMPRESSIONS"]

COMPRESSIONS = ("gzip", "lzf")
FEATURES = "patches/features"


@dataclass(frozen=True)
class StorageSettings:
    """``compression``: None, ``"gzip"`` or ``"lzf"``; ``compression_level``: gzip's 0-9 (None:
    h5py's default, 4); ``chunk_bytes``: the target bytes per chunk of the feature column (None:
    the writer's default)."""
    compression: Optional[str] = None
    compression_level: Optional[int] = None
    chunk_bytes: Optional[int] = None

    def overridden(self, compression: Optional[str] = None, compression_level: Optional[int] = None,
                   chunk_bytes: Optional[int] = None) -> "StorageSettings":
        """These settings with the given (non-None) overrides; ``compression="none"`` drops the filter."""
        out = self
        if compression is not None:
            name = None if compression == "none" else compression
            out = replace(out, compression=name, compression_level=None)
        if compression_level is not None:
            out = replace(out, compression_level=int(compression_level))
        if chunk_bytes is not None:
            out = replace(out, chunk_bytes=int(chunk_bytes))
        if out.compression != "gzip":
            out = replace(out, compression_level=None)
        return out

    def writer_kwargs(self) -> dict:
        return {"compression": self.compression, "compression_level": self.compression_level,
                "chunk_bytes": self.chunk_bytes}

    def describe(self) -> str:
        name = self.compression or "no compression"
        if self.compression == "gzip" and self.compression_level is not None:
            name += f" level {self.compression_level}"
        return name + (f", {self.chunk_bytes:,}-byte chunks" if self.chunk_bytes else "")


def read_storage(h5file) -> StorageSettings:
    """The settings of an open collection file (an ``h5py.File``); unknown filters (e.g. a file
    written by another tool with szip) map to no compression, which every reader can read."""
    dataset = h5file.get(FEATURES)
    if dataset is None or not hasattr(dataset, "compression"):
        return StorageSettings()
    compression = dataset.compression if dataset.compression in COMPRESSIONS else None
    level = dataset.compression_opts if compression == "gzip" and isinstance(dataset.compression_opts, int) else None
    chunk_bytes = None
    if dataset.chunks:
        from .writer import chunk_rows
        row_bytes = int(dataset.dtype.itemsize) * math.prod(dataset.chunks[1:])
        if dataset.chunks[0] != chunk_rows(row_bytes):  # not the writer's default: keep it
            chunk_bytes = row_bytes * int(dataset.chunks[0])
    return StorageSettings(compression, level, chunk_bytes)
