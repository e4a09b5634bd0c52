"""The structural guards of a collection file: each refuses one unsafe or malformed construct
with a :class:`~neural_format.errors.NeuralFormatError` whose code is the spec clause it enforces.

The reader (:mod:`neural_format.files.reader`) raises them on open and on read; the validator
(:mod:`neural_format.validation`) calls the same functions and turns each error into a finding,
so a rule and its message exist once. Every guard runs before HDF5 is asked for the data it
protects (links before objects, declared sizes before reads, the root heap before attributes).
"""
from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Optional

import h5py
import numpy as np
from pydantic import ValidationError

from ..format import layout
from .elements import read_root_encoding
from ..errors import NeuralFormatError, NotAFileError, SchemaError, UnsafeContentError
from .heap_guard import check_root_attribute_heap, remember_filelike
from ..format.metadata import CollectionMeta
from ..version import FORMAT_NAME, check_compatible, parse_version


def is_filelike(source) -> bool:
    return hasattr(source, "read") and hasattr(source, "seek")


def open_h5(source) -> h5py.File:
    """Open an HDF5 file read-only, mapping every failure to :class:`NotAFileError` (NF-F001).

    ``source`` is a path or a seekable binary file object (``io.BytesIO``, an open file, an fsspec
    file). Either way the root attributes' global heap is checked from the source's own bytes
    before HDF5 reads them (:mod:`neural_format.files.heap_guard`): HDF5 can hang or flood on it.
    """
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        try:
            mode = path.stat().st_mode
        except (OSError, ValueError):
            mode = None
        if mode is None or not stat.S_ISREG(mode):
            # a FIFO or device would block or never end; a directory is not a file either
            raise NotAFileError("NF-F001", "no such file" if mode is None else "not a regular file",
                                location=str(path), expected="a regular file",
                                found="nothing" if mode is None else file_kind(mode))
        try:
            # O_NONBLOCK: a FIFO swapped in after the stat above must not block the open
            with os.fdopen(os.open(path, os.O_RDONLY | os.O_NONBLOCK), "rb") as handle:
                status = os.fstat(handle.fileno())
                if not stat.S_ISREG(status.st_mode):
                    raise NotAFileError("NF-F001", "not a regular file", location=str(path),
                                        expected="a regular file", found=file_kind(status.st_mode))
                size = status.st_size
                if size == 0:
                    raise NotAFileError("NF-F001", "file is empty", location="/", expected="an HDF5 file",
                                        found="0 bytes")
                check_signature(handle.read(8))
                # before HDF5 reads the root attributes: it can hang or flood on them
                check_root_attribute_heap(handle, size)
        except OSError as exc:
            raise NotAFileError("NF-F001", f"cannot read the file: {exc.strerror or exc}", location=str(path),
                                expected="a readable file", found=type(exc).__name__) from None
    elif is_filelike(source):
        try:
            position = source.tell()
            source.seek(0, os.SEEK_END)
            size = source.tell()
            source.seek(0)
            head = source.read(8)
            source.seek(position)
        except Exception as exc:
            raise NotAFileError("NF-F001", f"file object cannot be read: {type(exc).__name__}: {exc}"[:300],
                                location="/", expected="a seekable binary file object",
                                found=type(source).__name__) from None
        if size == 0:
            raise NotAFileError("NF-F001", "file is empty", location="/", expected="an HDF5 file", found="0 bytes")
        check_signature(head)
        check_root_attribute_heap(source, size)
    else:
        raise NotAFileError("NF-F001", "not a path or a binary file object", location="/",
                            expected="a path or a seekable binary file object", found=type(source).__name__)
    try:
        try:
            f = h5py.File(source, "r", locking=False)
        except OSError as exc:
            if "locking flag" not in str(exc):
                raise
            # this process already holds the file through a handle opened with HDF5's default
            # locking (e.g. a plain h5py.File), and HDF5 shares one handle per file per process:
            # open it the way that handle was opened
            f = h5py.File(source, "r")
    except Exception as exc:  # h5py raises OSError or ValueError for damaged files
        raise NotAFileError("NF-F001", f"HDF5 library could not open it: {exc}", location="/",
                            expected="a readable HDF5 file", found=type(exc).__name__) from None
    if is_filelike(source):
        remember_filelike(f, source)
    return f


def file_kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


def check_signature(head: bytes) -> None:
    if head != b"\x89HDF\r\n\x1a\n":
        # HDF5 allows a user block (512, 1024, ... bytes) before the signature; we do not write one
        raise NotAFileError("NF-F001", "not an HDF5 file (no signature at offset 0)", location="/",
                            expected="HDF5 signature 89 48 44 46 0d 0a 1a 0a", found=head.hex(" "))


def attr_text(obj, name: str) -> Optional[str]:
    try:
        value = obj.attrs.get(name)
    except Exception as exc:
        raise SchemaError("NF-E001", f"attribute {name!r} cannot be read: {exc}", location=f"{obj.name}@{name}") from None
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.ndarray) and value.shape == () and value.dtype.kind in "SU":
        value = value.item()
        return value.decode("utf-8", "replace") if isinstance(value, bytes) else value
    return value if isinstance(value, str) else (None if value is None else repr(value)[:80])


def read_root(f: h5py.File, *, warn: bool = True):
    """Check ``format`` and ``format_version`` (NF-V001..NF-V004); return the parsed version.

    A newer minor warns (FormatVersionWarning) unless ``warn`` is False."""
    fmt = attr_text(f, "format")
    if fmt != FORMAT_NAME:
        raise SchemaError("NF-V001", "root attribute 'format' is missing or wrong", location="/@format",
                          expected=FORMAT_NAME, found=fmt)
    raw = attr_text(f, "format_version")
    if raw is None:
        raise SchemaError("NF-V001", "root attribute 'format_version' is missing", location="/@format_version",
                          expected="MAJOR.MINOR.PATCH", found=None)
    version = parse_version(raw)
    check_compatible(version, warn=warn)
    read_root_encoding(f)
    return version


def link_guard(f: h5py.File, path: str) -> None:
    """Refuse external links and soft links on the way to ``path`` (NF-H003)."""
    parts = [p for p in path.split("/") if p]
    current = "/"
    for part in parts:
        here = current.rstrip("/") + "/" + part
        try:
            parent = f[current]
            if not isinstance(parent, h5py.Group):
                raise SchemaError("NF-S001", "expected a group", location=current, expected="group",
                                  found=type(parent).__name__)
            link = parent.get(part, getlink=True)
        except NeuralFormatError:
            raise
        except Exception as exc:  # a damaged B-tree, heap or object header under a present name
            raise NotAFileError("NF-F001", f"file structure unreadable: {type(exc).__name__}: {exc}",
                                location=here) from None
        if link is None:
            raise SchemaError("NF-S001", "required object is missing", location=here, expected="present", found="absent")
        problem = link_problem(link, here)
        if problem is not None:
            raise problem
        current = here


def link_problem(link, location: str) -> Optional[UnsafeContentError]:
    """NF-H003 for one link: an external or a soft link, where the format has hard links only.
    The reader raises it on a path it follows (:func:`link_guard`); the validator reports it for
    every link of the file."""
    if isinstance(link, h5py.ExternalLink):
        return UnsafeContentError("NF-H003", "external link", location=location, expected="hard link",
                                  found=f"external link to {link.filename}:{link.path}")
    if isinstance(link, h5py.SoftLink):
        return UnsafeContentError("NF-H003", "soft link", location=location, expected="hard link",
                                  found=f"soft link to {link.path}")
    return None


def storage_layout_problems(ds: h5py.Dataset, path: str) -> list[NeuralFormatError]:
    """Every NF-H004 (virtual dataset, raw data in external files) and NF-H005 (a filter outside
    gzip, lzf, shuffle, fletcher32, or an unreadable pipeline) problem of ``ds``, as coded errors:
    the reader raises the first (:func:`dataset_guard`), the validator reports each."""
    out: list[NeuralFormatError] = []
    if ds.is_virtual:
        out.append(UnsafeContentError("NF-H004", "virtual dataset", location=path, expected="a stored dataset",
                                      found="virtual dataset"))
    if ds.external:
        # raw data kept in other files would let a file read arbitrary local files (e.g. /etc/passwd)
        out.append(UnsafeContentError("NF-H004", "raw data stored in external files", location=path,
                                      expected="data stored inside the file",
                                      found=f"external storage {[e[0] for e in ds.external][:3]}"))
    try:
        plist = ds.id.get_create_plist()
        filters = [plist.get_filter(i)[0] for i in range(plist.get_nfilters())]
    except Exception as exc:
        out.append(SchemaError("NF-H005", f"filter pipeline unreadable: {type(exc).__name__}: {exc}"[:300],
                               location=path, expected="gzip, lzf, shuffle or fletcher32", found="unreadable"))
        filters = []
    foreign = [fid for fid in filters if fid not in layout.ALLOWED_FILTER_IDS]
    if foreign:
        out.append(UnsafeContentError("NF-H005", "compression filter not allowed", location=path,
                                      expected="gzip, lzf, shuffle or fletcher32", found=f"filter ids {foreign}"))
    return out


def dataset_guard(f: h5py.File, path: str, dtypes, trailing: tuple[int, ...], *, ndim: Optional[int] = None):
    """Return ``f[path]`` after checking link, layout, filters, dtype and shape (NF-H00x, NF-S00x)."""
    link_guard(f, path)
    obj = f[path]
    if not isinstance(obj, h5py.Dataset):
        raise SchemaError("NF-S001", "expected a dataset", location=path, expected="dataset", found=type(obj).__name__)
    problems = storage_layout_problems(obj, path)
    if problems:
        raise problems[0]
    dtype = obj.dtype
    if dtype.kind in "OV" or dtype.str not in dtypes or h5py.check_dtype(vlen=dtype) is not None:
        raise SchemaError("NF-H002" if dtype.kind in "OV" else "NF-S002", "wrong dtype", location=path,
                          expected=" or ".join(dtypes), found=str(dtype))
    shape = obj.shape
    if shape is None or len(shape) != 1 + len(trailing) or tuple(shape[1:]) != tuple(trailing):
        raise SchemaError("NF-S003", "wrong shape", location=path,
                          expected=f"(n, {', '.join(map(str, trailing))})" if trailing else "(n,)", found=shape)
    storage_guard(obj)
    allocation_guard(obj)
    return obj


MAX_COMPRESSION_RATIO = 2048  # deflate tops out near 1032:1, lzf near 100:1
STORAGE_SLACK_BYTES = 1 << 20


def storage_guard(ds: h5py.Dataset) -> None:
    """Refuse a dataset that declares far more bytes than it stores (NF-H006).

    Unwritten chunks read as fill values, so a few bytes of file can declare 2^60 rows; reading
    such a dataset whole would try to allocate them. No real filter compresses beyond
    :data:`MAX_COMPRESSION_RATIO`, so a larger ratio is a size bomb.
    """
    declared = ds.dtype.itemsize * int(np.prod(ds.shape, dtype=object))
    if declared <= STORAGE_SLACK_BYTES:
        return
    try:
        stored = ds.id.get_storage_size()
    except Exception as exc:
        raise NotAFileError("NF-F001", f"storage size unreadable: {exc}", location=ds.name) from None
    if declared > MAX_COMPRESSION_RATIO * stored + STORAGE_SLACK_BYTES:
        raise SchemaError("NF-H006", "declared size is not backed by stored data", location=ds.name,
                          expected=f"<= {MAX_COMPRESSION_RATIO} x {stored} stored bytes", found=f"{declared} bytes")


def allocation_guard(ds: h5py.Dataset) -> None:
    """Refuse a dataset with parts never written (NF-H006): HDF5 would read them as fill values.

    The writer writes every row it declares, so each chunk of a dataset is allocated; a missing
    chunk (a truncated write, an edited file) would otherwise come back as zeros, silently. For
    chunked data the chunk index is counted (about 20 microseconds per chunk); other layouts must
    store every declared byte.
    """
    shape = ds.shape
    if not shape or 0 in shape:
        return
    declared_rows = [int(extent) for extent in shape]
    try:
        chunks = ds.chunks
        if chunks is None:
            stored = ds.id.get_storage_size()
            declared = ds.dtype.itemsize * int(np.prod(declared_rows, dtype=object))
            if stored < declared:
                raise SchemaError("NF-H006", "dataset storage was never fully written; it would read as fill "
                                             "values", location=ds.name, expected=f"{declared} stored bytes",
                                  found=f"{stored} bytes")
            return
        expected = 1
        for extent, size in zip(declared_rows, chunks):
            expected *= -(-extent // size)
        allocated = ds.id.get_num_chunks()
    except NeuralFormatError:
        raise
    except Exception as exc:
        raise NotAFileError("NF-F001", f"chunk index unreadable: {type(exc).__name__}: {exc}"[:300],
                            location=ds.name) from None
    if allocated < expected:
        raise SchemaError("NF-H006", "chunks were never written; their rows would read as fill values",
                          location=ds.name, expected=f"{expected} allocated chunks", found=f"{allocated} chunks")


def read_metadata(f: h5py.File) -> CollectionMeta:
    """Parse ``/metadata`` against the collection-metadata schema (NF-M001)."""
    ds = dataset_guard(f, layout.METADATA_PATH, ("|u1",), ())
    if ds.shape[0] > layout.METADATA_MAX_BYTES:
        raise SchemaError("NF-H006", "metadata is too large", location=layout.METADATA_PATH,
                          expected=f"<= {layout.METADATA_MAX_BYTES} bytes", found=ds.shape[0])
    try:
        blob = bytes(ds[()])
        return CollectionMeta.model_validate(json.loads(blob.decode("utf-8")))
    except (ValidationError, ValueError, UnicodeDecodeError, RecursionError) as exc:
        first = str(exc).splitlines()
        raise SchemaError("NF-M001", "metadata does not match the collection-metadata schema",
                          location=layout.METADATA_PATH, expected="valid JSON per spec/schema",
                          found="; ".join(first[:3])[:300]) from None
    except OSError as exc:
        raise SchemaError("NF-M001", f"metadata unreadable: {exc}", location=layout.METADATA_PATH) from None


def load_offsets(f: h5py.File, path: str, count: Optional[int], rows: int) -> np.ndarray:
    """Load an offsets dataset and check it is 0-based, monotone and covers ``rows`` exactly (NF-O001)."""
    ds = dataset_guard(f, path, ("<i8",), ())
    n = ds.shape[0]
    if count is not None and n != count + 1:
        raise SchemaError("NF-O001", "offsets length does not match the record count", location=path,
                          expected=count + 1, found=n)
    if n < 1 or n > (1 << 34):
        raise SchemaError("NF-H006", "offsets length is not sane", location=path, expected="1 .. 2^34", found=n)
    try:
        offsets = ds[()]
    except Exception as exc:
        raise SchemaError("NF-O001", f"offsets unreadable: {exc}", location=path) from None
    if offsets[0] != 0:
        raise SchemaError("NF-O001", "offsets do not start at 0", location=path, expected=0, found=int(offsets[0]))
    # compared, not differenced: a difference of int64 offsets can wrap and look non-negative
    falls = offsets[1:] < offsets[:-1]
    if falls.any():
        at = int(np.argmax(falls))
        raise SchemaError("NF-O001", f"offsets decrease at index {at + 1}", location=path,
                          expected="non-decreasing", found=f"{int(offsets[at])} -> {int(offsets[at + 1])}")
    if offsets[-1] != rows:
        raise SchemaError("NF-O001", "offsets do not cover the rows exactly", location=path,
                          expected=f"last offset == {rows}", found=int(offsets[-1]))
    return offsets
