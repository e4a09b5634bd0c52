"""Registry of element encodings, in the manner of anndata's ``_io/specs``.

Each group or dataset in a collection file carries ``encoding-type`` and ``encoding-version``
attributes (clause NF-E001). Readers are registered per ``(encoding-type, major version)``; when a
format major is retired its reader stays registered here, read-only, so old files stay readable.
"""
from __future__ import annotations

from typing import Callable

import h5py

from ..format import layout
from ..errors import SchemaError

ElementReader = Callable[..., object]  # (source, **kwargs) -> an open, read-only collection reader
_READERS: dict[tuple[str, int], ElementReader] = {}


def register_reader(encoding_type: str, major: int):
    """Decorator: register ``func`` as the reader of ``encoding_type`` at ``major``."""
    def wrap(func: ElementReader) -> ElementReader:
        _READERS[(encoding_type, major)] = func
        return func
    return wrap


def reader_for(encoding_type: str, major: int) -> ElementReader | None:
    return _READERS.get((encoding_type, major))


def registered() -> list[tuple[str, int]]:
    return sorted(_READERS)


def encoding_of(obj) -> tuple[str | None, str | None]:
    def text(name):
        value = obj.attrs.get(name)
        if isinstance(value, bytes):
            return value.decode("utf-8", "replace")
        return value if isinstance(value, str) else None
    try:
        from .heap_guard import check_object_attribute_heap
        check_object_attribute_heap(obj)  # HDF5 can hang or flood on a damaged heap before we see a value
        return text("encoding-type"), text("encoding-version")
    except Exception:
        return None, None


def encoding_major(value: str | None) -> int | None:
    """The major of an ``encoding-version`` value (``MAJOR.MINOR.PATCH``), or None when it is not one."""
    from ..version import SEMVER
    if value is None or len(value) > 32 or not SEMVER.match(value):
        return None
    return int(value.split(".")[0])


def encoding_fits(found: tuple[str | None, str | None], expected: tuple[str, str]) -> bool:
    """Whether ``(encoding-type, encoding-version)`` is the expected type at the expected major.

    Only the major is compared (clause NF-E001): a minor or patch change of an element encoding
    keeps every reader of that major able to read it.
    """
    major = encoding_major(found[1])
    return found[0] == expected[0] and major is not None and major == encoding_major(expected[1])


def read_root_encoding(f: h5py.File) -> tuple[str, str]:
    """Check the root's ``encoding-type``/``encoding-version`` attributes (NF-E001)."""
    found = encoding_of(f)
    kind, version = found
    if kind is None or version is None or not encoding_fits(found, layout.ROOT_ENCODING):
        raise SchemaError("NF-E001", "root encoding attributes are missing or wrong (the encoding-version "
                          "major must be this reader's)", location="/@encoding-version",
                          expected=layout.ROOT_ENCODING, found=found)
    return kind, version

