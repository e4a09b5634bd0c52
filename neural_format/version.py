"""Format versions and the compatibility rule (spec clauses NF-V001..NF-V004).

Readers read files whose major version equals theirs; a newer minor reads with a
:class:`FormatVersionWarning`; a newer major fails naming both versions; an older major is read
only through a registered legacy reader (see :mod:`neural_format.files.elements`).
"""
from __future__ import annotations

import re
import warnings
from typing import NamedTuple, Optional

from .errors import FormatVersionError, FormatVersionWarning

SDK_VERSION = "0.1.0"  # this package's release (pyproject.toml's [project] version): ``neural_format.__version__``

FORMAT_NAME = "neural-graph"
FORMAT_VERSION = "1.1.0"

SEMVER = re.compile(r"^(0|[1-9]\d{0,5})\.(0|[1-9]\d{0,5})\.(0|[1-9]\d{0,5})$")


class Version(NamedTuple):
    major: int
    minor: int
    patch: int

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"


def parse_version(text: object, *, location: str = "/@format_version") -> Version:
    """Parse ``MAJOR.MINOR.PATCH``; anything else raises NF-V001."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            text = repr(text[:40])
    if not isinstance(text, str) or len(text) > 32 or not SEMVER.match(text):
        shown = text if isinstance(text, str) and len(text) <= 64 else repr(text)[:64]
        raise FormatVersionError("NF-V001", "format version is not a semantic version",
                                 location=location, expected="MAJOR.MINOR.PATCH", found=shown)
    major, minor, patch = (int(part) for part in text.split("."))
    return Version(major, minor, patch)


CURRENT = parse_version(FORMAT_VERSION)


def newer_minor_notice(found: Version) -> Optional[str]:
    """The notice a reader gives for a file of a newer minor of its major (NF-V002), else None."""
    if found.major == CURRENT.major and found.minor > CURRENT.minor:
        return (f"file format version {found} is newer than this reader's {CURRENT}; "
                "fields added after it are ignored")
    return None


def check_compatible(found: Version, *, location: str = "/@format_version",
                     supported_majors: tuple[int, ...] = (CURRENT.major,), warn: bool = True) -> None:
    """Apply the version rule: same major reads, newer minor warns, other majors fail.

    ``warn=False`` leaves the newer-minor notice to the caller (the validator reports it as a
    finding from :func:`newer_minor_notice`): ``warnings.catch_warnings`` swaps process-wide state
    and is not safe while other threads validate.
    """
    if found.major not in supported_majors:
        newer = found.major > CURRENT.major
        raise FormatVersionError(
            "NF-V003" if newer else "NF-V004",
            f"file format version {found} is a {'newer' if newer else 'different'} major version "
            f"than this reader's {CURRENT}; "
            + ("upgrade neural-format" if newer else "no registered reader for that major"),
            location=location, expected=f"{CURRENT.major}.x.y", found=str(found))
    notice = newer_minor_notice(found)
    if warn and notice is not None:
        warnings.warn(notice, FormatVersionWarning, stacklevel=3)
