"""The manifest of a sharded collection: ``manifest.json`` (spec section 7, clauses NF-C001..NF-C010).

A sharded collection is a directory holding shard files (ordinary collection files) and one
``manifest.json``, a :class:`~neural_format.format.metadata.Manifest`. Per shard the manifest gives its
relative ``path``, its record count, its first and last record ID, ``ids_sha256``, the whole-file
``file_sha256`` and the ``format_version`` it was written with.

Two digests tie the manifest to the data:

``ids_sha256`` (per shard)
    SHA-256 over ``b"neural-graph-shard-ids-v1\\0"`` followed, for each record in stored order, by
    ``uint64 LE byte length of the UTF-8 ID || ID bytes || the record's 32-byte stored SHA-256``.
    It covers which records a shard holds and, through the record hashes, their content.

``collection_sha256`` (per manifest)
    SHA-256 over the UTF-8 bytes of ``json.dumps(fields, sort_keys=True, separators=(",", ":"),
    ensure_ascii=False)`` where ``fields`` is the WHOLE manifest as a JSON object except the
    ``collection_sha256`` field itself: ``format``, ``format_version``, ``collection_id``,
    ``created`` and ``shards``, each value as pydantic's ``model_dump(mode="json")`` gives it (the
    form ``manifest.json`` stores, so the digest survives a write and re-read), null fields left
    out at every level. Because each entry carries ``ids_sha256`` and ``file_sha256``, this one
    hash covers every field of the manifest and every byte of every shard.

The manifest is only ever replaced atomically (temporary file, fsync, ``os.replace``, fsync of
the directory), so a reader sees either the old or the new manifest, never a torn one.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import os
import stat
import uuid
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional, Union

import numpy as np
from pydantic import ValidationError

from ..errors import LockError, NeuralFormatError, SchemaError
from ..files.guards import file_kind
from ..format.hashing import file_sha256  # noqa: F401  (the shard file hash, NF-C003; imported from here by callers)
from ..format.metadata import CollectionMeta, Manifest, ShardEntry
from ..version import FORMAT_VERSION

MANIFEST_NAME = "manifest.json"
LOCK_NAME = ".manifest.lock"
MANIFEST_MAX_BYTES = 64 << 20
IDS_HASH_PREFIX = b"neural-graph-shard-ids-v1\x00"


def ids_sha256(ids: Iterable[str], hashes: np.ndarray) -> str:
    """The ``ids_sha256`` of a shard: its record IDs and stored record hashes, in order."""
    hashes = np.asarray(hashes, np.uint8).reshape(-1, 32)
    ids = list(ids)
    if len(ids) != hashes.shape[0]:
        raise ValueError(f"{len(ids)} IDs but {hashes.shape[0]} hashes")
    parts = [IDS_HASH_PREFIX]
    for rid, digest in zip(ids, hashes):
        raw = rid.encode("utf-8")
        parts += [len(raw).to_bytes(8, "little"), raw, digest.tobytes()]
    return hashlib.sha256(b"".join(parts)).hexdigest()


def _hashed_fields(manifest_or_fields: Union[Manifest, Mapping[str, Any]]) -> dict:
    """The manifest's fields as stored JSON values, without ``collection_sha256`` and nulls."""
    if isinstance(manifest_or_fields, Manifest):
        manifest = manifest_or_fields
    elif isinstance(manifest_or_fields, Mapping):
        # validate with a placeholder digest so that every value (``created``, the entries) is
        # normalised exactly as a parsed manifest.json would hold it
        fields = {k: v for k, v in manifest_or_fields.items() if k != "collection_sha256"}
        try:
            manifest = Manifest.model_validate({**fields, "collection_sha256": "0" * 64})
        except ValidationError as exc:
            raise _schema_error(exc, MANIFEST_NAME) from None
    else:
        raise TypeError("collection_sha256 takes a Manifest or a mapping of its fields, not "
                        f"{type(manifest_or_fields).__name__} (it covers the whole manifest, not only the shards)")
    return manifest.model_dump(mode="json", exclude_none=True, exclude={"collection_sha256"})


def manifest_json(manifest_or_fields: Union[Manifest, Mapping[str, Any]]) -> bytes:
    """The canonical JSON bytes that ``collection_sha256`` is computed over: the whole manifest
    (a :class:`Manifest`, or a mapping of its fields) except ``collection_sha256`` itself."""
    fields = _hashed_fields(manifest_or_fields)
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def collection_sha256(manifest_or_fields: Union[Manifest, Mapping[str, Any]]) -> str:
    """``collection_sha256`` of a manifest: SHA-256 of :func:`manifest_json` (clause NF-C007).

    Accepts a parsed :class:`Manifest` (its own ``collection_sha256`` is ignored) or a mapping of
    the fields ``format`` (optional), ``format_version``, ``collection_id``, ``created`` and
    ``shards``, as :func:`make_manifest` uses before the manifest exists."""
    return hashlib.sha256(manifest_json(manifest_or_fields)).hexdigest()


def shard_entry(path, relative: str, *, with_file_hash: bool = True) -> ShardEntry:
    """Describe one finished shard file (opens it and reads its IDs and stored hashes)."""
    from ..files.reader import CollectionReader
    with CollectionReader(path) as reader:
        ids = reader.record_ids()
        hashes = reader.stored_hashes() if ids else np.zeros((0, 32), np.uint8)
        version = str(reader.version)
    return ShardEntry(
        path=relative, records=len(ids), first_id=ids[0] if ids else None, last_id=ids[-1] if ids else None,
        ids_sha256=ids_sha256(ids, hashes), file_sha256=file_sha256(path) if with_file_hash else None,
        format_version=version)


def new_collection_id() -> str:
    return uuid.uuid4().hex


def make_manifest(shards: list[ShardEntry], *, collection_id: Optional[str] = None,
                  created: Optional[_dt.datetime] = None) -> Manifest:
    collection_id = collection_id or new_collection_id()
    entries, created = list(shards), created or _dt.datetime.now(_dt.timezone.utc)
    fields = {"format_version": FORMAT_VERSION, "collection_id": collection_id, "shards": entries, "created": created}
    return Manifest(format_version=FORMAT_VERSION, collection_id=collection_id, shards=entries, created=created,
                    collection_sha256=collection_sha256(fields))


def manifest_path(directory) -> Path:
    return Path(directory) / MANIFEST_NAME


def parse_manifest(blob: bytes, *, location: str = MANIFEST_NAME) -> Manifest:
    """Parse manifest bytes; any failure is NF-C001."""
    if len(blob) > MANIFEST_MAX_BYTES:
        raise SchemaError("NF-C001", "manifest is too large", location=location,
                          expected=f"<= {MANIFEST_MAX_BYTES} bytes", found=len(blob))
    try:
        return Manifest.model_validate_json(blob)
    except ValidationError as exc:
        raise _schema_error(exc, location) from None


def _schema_error(exc: ValidationError, location: str) -> SchemaError:
    first = [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:3]]
    return SchemaError("NF-C001", "manifest does not match the manifest schema", location=location,
                       expected="JSON per spec/schema/manifest.schema.json", found="; ".join(first)[:300])


def read_manifest_bytes(path) -> bytes:
    """The bytes of a manifest file, at most :data:`MANIFEST_MAX_BYTES` + 1 (NF-C001 when missing,
    unreadable or not a regular file: a FIFO or device there would block or never end)."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise SchemaError("NF-C001", "collection directory has no manifest", location=str(path),
                          expected=MANIFEST_NAME, found="nothing") from None
    except OSError as exc:
        raise SchemaError("NF-C001", f"manifest unreadable: {exc.strerror or exc}", location=str(path)) from None
    with os.fdopen(fd, "rb") as handle:
        mode = os.fstat(handle.fileno()).st_mode
        if not stat.S_ISREG(mode):
            raise SchemaError("NF-C001", "manifest is not a regular file", location=str(path),
                              expected="a regular file", found=file_kind(mode))
        try:
            return handle.read(MANIFEST_MAX_BYTES + 1)
        except OSError as exc:
            raise SchemaError("NF-C001", f"manifest unreadable: {exc.strerror or exc}", location=str(path)) from None


def read_manifest(directory) -> Manifest:
    """Read ``directory/manifest.json`` (NF-C001 when missing, invalid or not a regular file)."""
    path = manifest_path(directory)
    return parse_manifest(read_manifest_bytes(path), location=str(path))


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_manifest(directory, manifest: Manifest) -> Path:
    """Atomically replace ``directory/manifest.json``: temp file, fsync, ``os.replace``, fsync dir."""
    directory = Path(directory)
    target = manifest_path(directory)
    tmp = directory / f".{MANIFEST_NAME}.{uuid.uuid4().hex[:12]}.partial"
    blob = manifest.model_dump_json(indent=1, exclude_none=True).encode("utf-8")
    try:
        with open(tmp, "wb") as handle:
            handle.write(blob)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(exc, OSError) and not isinstance(exc, NeuralFormatError):
            from ..errors import WriteFailedError
            reason = exc.strerror or str(exc)
            error = WriteFailedError("NF-E-IO", f"writing the manifest failed: {reason}; the previous manifest "
                                                "stands", location=str(target), expected="a writable directory with "
                                                "free space", found=reason)
            error.errno = exc.errno
            raise error from None
        raise
    _fsync_dir(directory)
    return target


@contextlib.contextmanager
def manifest_lock(directory):
    """Serialise read-modify-write cycles of one manifest between processes on one host (flock)."""
    import errno
    import fcntl
    path = Path(directory) / LOCK_NAME
    try:
        # O_NOFOLLOW: a planted symlink must not make us create or truncate a file elsewhere
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0),
                     0o644)
    except OSError as exc:
        named: dict[int | None, str] = {errno.ELOOP: "a symbolic link", errno.EISDIR: "a directory"}
        kind = named.get(exc.errno, exc.strerror or str(exc))
        raise LockError("NF-E-LOCK", f"the manifest lock cannot be used: it is {kind}" if exc.errno in
                        (errno.ELOOP, errno.EISDIR) else f"the manifest lock cannot be opened: {kind}",
                        location=str(path), expected="a regular lock file (or none)", found=kind) from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise LockError("NF-E-LOCK", "the manifest lock is not a regular file", location=str(path),
                        expected="a regular lock file (or none)", found=file_kind(mode))
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


# -- metadata compatibility between shards ------------------------------------------------------
STRUCTURAL_FIELDS = tuple(name for name in CollectionMeta.model_fields if name not in ("provenance", "shard"))
MODEL_PROVENANCE_FIELDS = ("encoder", "decoder", "score_aggregation", "pruning", "kg_extractor", "fusion")


def meta_differences(a: CollectionMeta, b: CollectionMeta, *, provenance: bool = False) -> list[str]:
    """Names of the fields in which two shards' metadata disagree in a way that makes them
    incompatible: everything but provenance and shard info (feature dims, dtypes, vocabularies,
    geometry axes...), and with ``provenance=True`` also the models, aggregation and pruning."""
    out = [name for name in STRUCTURAL_FIELDS if getattr(a, name) != getattr(b, name)]
    if provenance:
        out += [f"provenance.{name}" for name in MODEL_PROVENANCE_FIELDS
                if getattr(a.provenance, name) != getattr(b.provenance, name)]
    return out


def check_compatible_meta(first: CollectionMeta, other: CollectionMeta, *, location: str,
                          provenance: bool = False) -> None:
    """Raise NF-C009 when ``other`` cannot live in one collection with ``first``."""
    diff = meta_differences(first, other, provenance=provenance)
    if diff:
        name = diff[0]
        if name.startswith("provenance."):
            expected = getattr(first.provenance, name.split(".", 1)[1])
            found = getattr(other.provenance, name.split(".", 1)[1])
        else:
            expected, found = getattr(first, name), getattr(other, name)
        raise SchemaError("NF-C009", f"incompatible metadata: {', '.join(diff)} differ", location=location,
                          expected=str(expected)[:200], found=str(found)[:200])
