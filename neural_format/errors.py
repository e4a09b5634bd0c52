"""The one error family of the SDK.

Every error carries a stable ``code`` (a spec clause ID such as ``NF-R012`` or an SDK code
such as ``NF-E-IO``, all in the one table :mod:`neural_format.error_codes`), the ``location``
inside the HDF5 file, and what was ``expected`` and ``found``. Catch :class:`NeuralFormatError` to catch them all.
"""
from __future__ import annotations

import re

from .error_codes import check_code

# C0 controls but tab and newline, DEL and C1 controls: ESC sequences can rewrite a terminal
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """``text`` with terminal control characters shown as ``\\xNN`` escapes, for printing values
    read from files (attributes, IDs, metadata) to a terminal."""
    return _CONTROLS.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


class NeuralFormatError(Exception):
    """Base class: a typed, coded error naming where, what was expected and what was found."""

    def __init__(self, code: str, message: str, *, location: str = "/", expected: object = None,
                 found: object = None):
        self.code = check_code(code)  # one table of every code (neural_format.error_codes)
        self.location = location
        self.expected = expected
        self.found = found
        self.message = message
        detail = f"[{code}] {location}: {message}"
        if expected is not None or found is not None:
            detail += f" (expected {expected!s}, found {found!s})"
        super().__init__(detail)

    def __str__(self) -> str:
        # the coded text, also for the subclasses that are OSErrors (whose str would show errno)
        return self.args[0] if len(self.args) == 1 and isinstance(self.args[0], str) else super().__str__()


class FormatVersionError(NeuralFormatError):
    """The file's format version cannot be read by this SDK."""


class SchemaError(NeuralFormatError):
    """The file's structure, dtypes, shapes or metadata break the spec."""


class IntegrityError(NeuralFormatError):
    """A stored hash does not match the data it covers."""


class UnsafeContentError(NeuralFormatError):
    """The input holds a construct the format forbids (pickles, links, foreign filters...)."""


class NotAFileError(NeuralFormatError):
    """The input is missing, empty, truncated or not HDF5 at all."""


class FormatVersionWarning(UserWarning):
    """The file was written by a newer minor version: read, but fields may be ignored."""


class OutputExistsError(NeuralFormatError, FileExistsError):
    """The output path exists (or appeared while writing) and overwriting was not asked for
    (code ``NF-E-EXISTS``)."""


class WriteFailedError(NeuralFormatError, OSError):
    """Writing failed in the operating system: disk full (ENOSPC), file too large (EFBIG), a
    read-only or missing directory, an I/O error (code ``NF-E-IO``). Nothing was left under the
    final name."""


class LockError(NeuralFormatError, OSError):
    """A lock file is not a plain file this process may create or use (code ``NF-E-LOCK``)."""


class ClosedError(NeuralFormatError, ValueError):
    """The reader or writer is closed (code ``NF-E-CLOSED``)."""


class IndexTypeError(NeuralFormatError, TypeError):
    """An index of the wrong type, e.g. a bool used as a record index (code ``NF-E-INDEX``)."""


class MissingExtraError(NeuralFormatError, ModuleNotFoundError):
    """A command or feature needs an optional extra that is not installed (code ``NF-E-EXTRA``):
    says which extra to install and which module was missing. ``needed_by`` names the feature,
    e.g. ``"`neural-format build`"`` or ``"to_networkx"``."""

    def __init__(self, needed_by: str, extras, missing: str):
        extras = tuple(extras)
        hint = f"pip install 'neural-format[{','.join(extras)}]'" if extras else "pip install neural-format"
        super().__init__("NF-E-EXTRA", f"needs the {', '.join(extras) or 'full'} extra: {hint}",
                         location=needed_by, expected="the module installed", found=f"no module {missing}")
        self.name = missing
