"""The two containers ``torch.save`` writes, opened without executing anything.

* the zip container (torch >= 1.6): ``<prefix>/data.pkl`` is the pickle, ``<prefix>/data/<key>``
  holds the raw bytes of storage ``key``, plus ``byteorder``, ``version`` and friends;
* the legacy stream (``_use_new_zipfile_serialization=False``): four pickles back to back (magic
  number, protocol 1001, ``sys_info``, the object), a pickle of the sorted storage keys, then for
  each key an int64 element count followed by the storage's bytes.

An archive hands out the pickle bytes and, per storage key, its stored byte length and byte ranges
read on demand: no storage is read until a tensor is materialised, so memory stays bounded by the
pickle itself. The (much older) tar container is refused. Structural problems raise
:class:`~neural_format.errors.UnsafeContentError` or :class:`~neural_format.errors.NotAFileError`
with a ``NF-U*`` code (see docs/convert.md).
"""
from __future__ import annotations

import re
import struct
import zipfile
from pathlib import Path
from typing import Optional

from ..errors import NotAFileError, UnsafeContentError
from .restricted_unpickler import describe

MAX_PICKLE_BYTES = 2 << 30      # data.pkl larger than this is refused before reading it
MAX_MEMBERS = 10_000_000        # zip entries
LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001
_STORAGE_KEY = re.compile(r"^[A-Za-z0-9_]{1,64}$")


class ZipTorchArchive:
    """A ``torch.save`` zip archive. ``read(key, start, count)`` reads bytes of one storage."""

    kind = "zip"

    def __init__(self, path: Path):
        self.path = Path(path)
        try:
            self._zip = zipfile.ZipFile(self.path)
            infos = self._zip.infolist()
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
            raise NotAFileError("NF-U004", f"not a readable zip archive: {exc}", location=str(path),
                                expected="a torch.save zip archive", found=type(exc).__name__) from None
        try:
            self._index(infos)
        except BaseException:
            self._zip.close()
            raise

    def _index(self, infos) -> None:
        if len(infos) > MAX_MEMBERS:
            raise UnsafeContentError("NF-U004", "too many archive members", location=str(self.path),
                                     expected=f"<= {MAX_MEMBERS}", found=len(infos))
        names = [i.filename for i in infos]
        seen: set[str] = set()
        dup = None
        for name in names:  # one pass: O(n)
            if name in seen:
                dup = name
                break
            seen.add(name)
        if dup is not None:
            raise UnsafeContentError("NF-U004", "duplicate member names in the archive", location=dup,
                                     expected="unique names", found="duplicates")
        pickles = [n for n in names if n.count("/") == 1 and n.endswith("/data.pkl")]
        if len(pickles) != 1:
            raise UnsafeContentError(
                "NF-U004", "a torch archive has exactly one <prefix>/data.pkl", location=str(self.path),
                expected="1 data.pkl", found=f"{len(pickles)} ({', '.join(pickles[:3])})")
        self.prefix = pickles[0][: -len("data.pkl")]
        self._infos = {i.filename: i for i in infos}
        for info in infos:
            if not info.filename.startswith(self.prefix):
                raise UnsafeContentError("NF-U004", "member outside the archive's prefix", location=info.filename,
                                         expected=f"{self.prefix}...", found=info.filename)
            if info.compress_type != zipfile.ZIP_STORED:
                # torch.save never compresses; refusing compression rules out decompression bombs
                raise UnsafeContentError("NF-U004", "compressed archive member", location=info.filename,
                                         expected="stored (uncompressed) members as torch.save writes",
                                         found=f"compression method {info.compress_type}")
        pkl = self._infos[pickles[0]]
        if pkl.file_size > MAX_PICKLE_BYTES:
            raise UnsafeContentError("NF-U003", "data.pkl is too large", location=pkl.filename,
                                     expected=f"<= {MAX_PICKLE_BYTES} bytes", found=pkl.file_size)
        order = self._small(f"{self.prefix}byteorder")
        if order not in (None, b"little", b"big"):
            raise UnsafeContentError("NF-U004", "unknown byteorder record", location=f"{self.prefix}byteorder",
                                     expected="little or big", found=order[:16])
        self.big_endian = order == b"big"

    def _small(self, name: str) -> Optional[bytes]:
        info = self._infos.get(name)
        if info is None:
            return None
        if info.file_size > 64:
            raise UnsafeContentError("NF-U004", "metadata member too large", location=name,
                                     expected="<= 64 bytes", found=info.file_size)
        return self._zip.read(info).strip()

    def pickle_bytes(self) -> bytes:
        try:
            return self._zip.read(self._infos[self.prefix + "data.pkl"])
        except (zipfile.BadZipFile, OSError, ValueError) as exc:
            raise NotAFileError("NF-U004", f"data.pkl unreadable: {exc}", location=self.prefix + "data.pkl") from None

    def _member(self, key: str) -> zipfile.ZipInfo:
        if not isinstance(key, str) or not _STORAGE_KEY.match(key):
            raise UnsafeContentError("NF-U003", "malformed storage key", location=f"{self.prefix}data/",
                                     expected="1-64 characters [A-Za-z0-9_]", found=describe(key))
        info = self._infos.get(f"{self.prefix}data/{key}")
        if info is None:
            raise UnsafeContentError("NF-U003", "storage referenced by the pickle is missing from the archive",
                                     location=f"{self.prefix}data/{key}", expected="a member", found="absent")
        return info

    def storage_nbytes(self, key: str) -> int:
        return int(self._member(key).file_size)

    def read(self, key: str, start: int, count: int) -> bytes:
        info = self._member(key)
        if start < 0 or count < 0 or start + count > info.file_size:
            raise UnsafeContentError("NF-U003", "read outside the stored bytes", location=info.filename,
                                     expected=f"bytes within 0..{info.file_size}", found=f"{start}+{count}")
        if count == 0:
            return b""
        try:
            with self._zip.open(info) as handle:
                if start:
                    handle.seek(start)
                data = handle.read(count)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
            raise NotAFileError("NF-U004", f"storage unreadable: {exc}", location=info.filename) from None
        if len(data) != count:
            raise NotAFileError("NF-U004", "storage truncated", location=info.filename, expected=count, found=len(data))
        return data

    def close(self) -> None:
        self._zip.close()


class LegacyTorchArchive:
    """The pre-1.6 stream format. The object pickle is loaded by the caller from :attr:`pickle_bytes`."""

    kind = "legacy"

    def __init__(self, path: Path, header_loader):
        self.path = Path(path)
        self._file = open(self.path, "rb")
        try:
            self._parse(header_loader)
        except BaseException:
            self._file.close()
            raise

    def _parse(self, header_loader) -> None:
        f = self._file
        magic = header_loader(f)
        if magic != LEGACY_MAGIC:
            raise NotAFileError("NF-U005", "not a torch.save file (no zip signature, no legacy magic number)",
                                location=str(self.path), expected="zip archive or legacy torch stream",
                                found=describe(magic))
        protocol = header_loader(f)
        if protocol != LEGACY_PROTOCOL:
            raise NotAFileError("NF-U005", "unsupported legacy torch protocol", location=str(self.path),
                                expected=LEGACY_PROTOCOL, found=describe(protocol))
        info = header_loader(f)
        if not isinstance(info, dict):
            raise NotAFileError("NF-U005", "legacy sys_info is not a dict", location=str(self.path))
        self.big_endian = info.get("little_endian", True) is False
        self._pickle_start = f.tell()
        self._header_loader = header_loader
        self._storages: Optional[dict[str, tuple[int, int]]] = None

    def pickle_stream(self):
        """The file positioned at the object pickle; after loading it, call :meth:`index_storages`."""
        self._file.seek(self._pickle_start)
        return self._file

    def pickle_bytes(self) -> bytes:  # pragma: no cover - the legacy loader streams instead
        raise NotImplementedError

    def index_storages(self, element_sizes: dict[str, int]) -> None:
        """Walk the storage section once, checking each count against what the pickle declared."""
        f = self._file
        keys = self._header_loader(f)
        if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
            raise UnsafeContentError("NF-U005", "legacy storage key list is malformed", location=str(self.path))
        if set(keys) != set(element_sizes):
            raise UnsafeContentError("NF-U003", "storage keys differ from the storages the pickle references",
                                     location=str(self.path), expected=f"{len(element_sizes)} keys",
                                     found=f"{len(keys)} keys")
        end = self.path.stat().st_size
        table: dict[str, tuple[int, int]] = {}
        for key in keys:
            head = f.read(8)
            if len(head) != 8:
                raise UnsafeContentError("NF-U003", "storage section truncated", location=f"storage {key}")
            (count,) = struct.unpack("<q", head)
            nbytes = count * element_sizes[key]
            start = f.tell()
            if count < 0 or start + nbytes > end:
                raise UnsafeContentError("NF-U003", "declared storage size exceeds the stored bytes",
                                         location=f"storage {key}", expected=f"<= {end - start} bytes",
                                         found=f"{nbytes} bytes")
            table[key] = (start, nbytes)
            f.seek(start + nbytes)
        self._storages = table

    def _storage(self, key: str) -> tuple[int, int]:
        """(start, nbytes) of an indexed storage."""
        if self._storages is None or key not in self._storages:
            raise UnsafeContentError("NF-U003", "unknown storage key", location=f"storage {key!r}"[:80])
        return self._storages[key]

    def storage_nbytes(self, key: str) -> int:
        return self._storage(key)[1]

    def read(self, key: str, start: int, count: int) -> bytes:
        base, nbytes = self._storage(key)
        if start < 0 or count < 0 or start + count > nbytes:
            raise UnsafeContentError("NF-U003", "read outside the stored bytes", location=f"storage {key}",
                                     expected=f"bytes within 0..{nbytes}", found=f"{start}+{count}")
        self._file.seek(base + start)
        data = self._file.read(count)
        if len(data) != count:
            raise NotAFileError("NF-U004", "storage truncated", location=f"storage {key}")
        return data

    def close(self) -> None:
        self._file.close()


def sniff(path: Path) -> str:
    """``"zip"``, ``"legacy"`` or ``"tar"`` from the first bytes; raises NotAFileError otherwise."""
    path = Path(path)
    if not path.is_file():
        raise NotAFileError("NF-F001", "no such file", location=str(path), expected="a file", found="nothing")
    with open(path, "rb") as handle:
        head = handle.read(512)
    if not head:
        raise NotAFileError("NF-F001", "file is empty", location=str(path), expected="a torch.save file", found="0 bytes")
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        return "zip"
    if len(head) >= 262 and head[257:262] == b"ustar":
        return "tar"
    if head[:1] == b"\x80":
        return "legacy"
    raise NotAFileError("NF-U005", "not a torch.save file", location=str(path),
                        expected="zip archive or pickle stream", found=head[:8].hex(" "))
