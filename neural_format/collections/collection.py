"""Sharded collections: many shard files read as one (spec section 7, clauses NF-C001..NF-C010).

:func:`open_collection` accepts a collection directory (with ``manifest.json``), the path of a
manifest, one collection file, a list of shard paths, ``fsspec`` URLs (``memory://``, ``s3://``...)
or Python binary file-like objects, and returns a :class:`ShardedCollection` with the same lazy
API as :class:`~neural_format.files.reader.CollectionReader`: ``len``, ``[i]``, ``[a:b]``, iteration,
``get(record_id)`` and ``read_all()``.

Global index ``i`` maps to ``(shard k, local j)`` with ``k = bisect_right(starts, i) - 1`` and
``j = i - starts[k]``, where ``starts`` are the cumulative record counts. With a manifest, ``len``
needs no shard to be opened; shards are opened on first use, and each opened shard's record count
and metadata are checked against the manifest and against shard 0.

Handles are per process: a collection that finds itself in a new process (a forked DataLoader
worker, a torchrun rank) drops the inherited h5py handles and reopens its shards; pickling
carries sources, never handles. File-like objects cannot be reopened, so a collection built on
them is refused in another process and cannot be pickled.

:func:`append_shard` adds records to a collection crash-safely: the records go to a NEW shard file
(written under a temporary name and renamed), then the manifest is atomically replaced. A crash
at any point leaves either the old or the new consistent collection (at worst an orphan shard
file that no manifest lists; the validator reports it as NF-C010).
"""
from __future__ import annotations

import bisect
import itertools
import os
import uuid
from pathlib import Path
from typing import Iterable, Iterator, Optional, Sequence, TypeGuard, Union

import numpy as np

from ..errors import IntegrityError, SchemaError
from .manifest import (MANIFEST_NAME, check_compatible_meta, make_manifest, manifest_lock, manifest_path,
                       parse_manifest, read_manifest, read_manifest_bytes, shard_entry, write_manifest)
from ..format.metadata import CollectionMeta, Manifest, ShardEntry, ShardInfo
from ..files.reader import CollectionReader
from ..files.record_sequence import RecordSequence
from ..format.record import Record
from ..files.writer import BATCH_RECORDS, CollectionWriter
from ..internals import optional_deps

SHARD_SUFFIX = ".h5"
MAX_COLLECTION_RECORDS = 1 << 62  # len() of a collection must fit a Py_ssize_t


def _is_url(source: object) -> TypeGuard[str]:
    return isinstance(source, str) and "://" in source


def _is_filelike(source) -> bool:
    return hasattr(source, "read") and hasattr(source, "seek")


def resolve_shard_path(directory: Path, relative: str) -> Path:
    """``directory/relative``, refusing paths that leave the directory (NF-C002)."""
    try:
        base = directory.resolve()
        candidate = (base / relative).resolve()
    except (ValueError, OSError, RuntimeError) as exc:  # NUL bytes, symlink loops
        raise SchemaError("NF-C002", f"shard path cannot be resolved: {exc}", location=MANIFEST_NAME,
                          expected="a path inside the collection directory", found=repr(relative)[:200]) from None
    if Path(relative).is_absolute() or base not in candidate.parents:
        raise SchemaError("NF-C002", "shard path escapes the collection directory", location=MANIFEST_NAME,
                          expected=f"a path inside {base}", found=relative)
    return candidate


class _Shard:
    """One shard source (path, URL or file-like) and this process's open reader for it."""

    def __init__(self, source, entry: Optional[ShardEntry], label: str):
        self.source, self.entry, self.label = source, entry, label
        self.reader: Optional[CollectionReader] = None
        self._handle = None  # an fsspec file we opened and must close
        self._pid: Optional[int] = None

    def open(self) -> CollectionReader:
        pid = os.getpid()
        if self.reader is not None and self._pid == pid:
            return self.reader
        if self.reader is not None:  # inherited from the parent process: never use its handle here
            if _is_filelike(self.source):
                raise RuntimeError(f"shard {self.label} was opened from a file-like object in another "
                                   "process; pass paths or URLs so that each process opens its own handle")
            self.reader = self._handle = None
        if _is_url(self.source):
            fsspec = optional_deps.load("fsspec", needed_by="a collection behind a URL")
            self._handle = fsspec.open(self.source, "rb").open()
            source = self._handle
        elif isinstance(self.source, (str, os.PathLike)):
            path = Path(self.source)
            if not path.is_file():
                raise SchemaError("NF-C002", "shard file listed in the manifest is missing", location=str(path),
                                  expected="a file", found="nothing")
            source = path
        else:
            source = self.source
        reader = CollectionReader(source)
        if self.entry is not None and len(reader) != self.entry.records:
            reader.close()
            raise IntegrityError("NF-C005", "shard record count differs from the manifest", location=self.label,
                                 expected=self.entry.records, found=len(reader))
        self.reader, self._pid = reader, pid
        return reader

    def close(self) -> None:
        if self.reader is not None and self._pid == os.getpid():
            self.reader.close()
            if self._handle is not None:
                self._handle.close()
        self.reader = self._handle = None


class ShardedCollection(RecordSequence):
    """Read-only, lazy view of a collection spread over one or more shard files."""

    def __init__(self, shards: list[_Shard], counts: Optional[list[int]], *, manifest: Optional[Manifest] = None,
                 directory: Optional[Path] = None):
        self._shards = shards
        self.manifest = manifest
        self.directory = directory
        if counts is None:
            counts = [len(s.open()) for s in shards]
        self.counts = [int(c) for c in counts]
        self.starts = [0, *itertools.accumulate(self.counts)]  # Python ints: no int64 wrap
        self._n = self.starts[-1]
        if any(c < 0 for c in self.counts) or self._n > MAX_COLLECTION_RECORDS:
            raise SchemaError("NF-C001", "shard record counts do not add up to a sane total", location=MANIFEST_NAME,
                              expected=f"counts >= 0 summing to <= {MAX_COLLECTION_RECORDS}", found=self._n)
        self._meta: Optional[CollectionMeta] = None
        self._id_index: Optional[dict[str, int]] = None
        self._checked: set[int] = set()

    # -- shards ---------------------------------------------------------------------------------
    @property
    def shard_count(self) -> int:
        return len(self._shards)

    def shard(self, k: int) -> CollectionReader:
        """The open reader of shard ``k`` in this process (checked against shard 0 on first use)."""
        reader = self._shards[k].open()
        if k not in self._checked:
            if k != 0:
                check_compatible_meta(self.meta, reader.meta, location=self._shards[k].label)
            self._checked.add(k)
        return reader

    def shard_labels(self) -> list[str]:
        return [s.label for s in self._shards]

    def shard_sources(self) -> list:
        """Each shard's source as given or resolved from the manifest (a path, URL or file-like object)."""
        return [s.source for s in self._shards]

    def locate(self, i: int) -> tuple[int, int]:
        """``(shard, local index)`` of global record ``i``."""
        # bisect_right skips empty shards: they share their start with the next shard
        k = bisect.bisect_right(self.starts, i) - 1
        return k, i - self.starts[k]

    @property
    def meta(self) -> CollectionMeta:
        if self._meta is None:
            if not self._shards:
                raise SchemaError("NF-C001", "the collection lists no shards", location=MANIFEST_NAME,
                                  expected="at least one shard", found=0)
            self._meta = self._shards[0].open().meta
            self._checked.add(0)
        return self._meta

    @property
    def label_names(self) -> list[str]:
        return list(self.meta.label_names)

    # -- sequence API (len, [i], [a:b] and iteration come from RecordSequence) ------------------
    def _record(self, i: int) -> Record:
        k, j = self.locate(i)
        return self.shard(k)._record(j)

    def __iter__(self) -> Iterator[Record]:
        for k in range(len(self._shards)):
            if self.counts[k]:
                yield from self.shard(k)

    def iter_batches(self, batch_records: int = BATCH_RECORDS) -> Iterator[list[Record]]:
        """Records in lists of at most ``batch_records``, shard by shard, each read in bulk."""
        if batch_records < 1:  # range() would yield nothing (or fail) and the records be lost to the caller
            raise ValueError(f"batch_records must be at least 1, not {batch_records!r}")
        for k in range(len(self._shards)):
            if not self.counts[k]:
                continue
            reader = self.shard(k)
            for a in range(0, self.counts[k], batch_records):
                yield reader.read_range(a, min(self.counts[k], a + batch_records))

    def read_range(self, start: int, stop: int) -> list[Record]:
        """Records ``start:stop`` (global indices) read in bulk, shard by shard."""
        start, stop, _ = slice(start, stop).indices(self._n)
        out: list[Record] = []
        for k in range(len(self._shards)):
            a, b = max(start, self.starts[k]), min(stop, self.starts[k + 1])
            if a < b:
                out += self.shard(k).read_range(a - self.starts[k], b - self.starts[k])
        return out

    def get(self, record_id: str) -> Record:
        """The record with this ID (builds an ID index over all shards on first use)."""
        if self._id_index is None:
            self._id_index = {rid: i for i, rid in enumerate(self.record_ids())}
        try:
            return self._record(self._id_index[record_id])
        except KeyError:
            raise KeyError(f"no record with ID {record_id!r}") from None

    def record_ids(self) -> list[str]:
        out: list[str] = []
        for k in range(len(self._shards)):
            out += self.shard(k).record_ids()
        return out

    def stored_hashes(self) -> np.ndarray:
        parts = [self.shard(k).stored_hashes() for k in range(len(self._shards))]
        return np.concatenate(parts) if parts else np.zeros((0, 32), np.uint8)

    def read_all(self) -> list[Record]:
        """All records, each shard read column by column in one pass."""
        out: list[Record] = []
        for k in range(len(self._shards)):
            out += self.shard(k).read_all()
        return out

    # -- lifecycle --------------------------------------------------------------------------------
    def close(self) -> None:
        for s in self._shards:
            s.close()

    def __enter__(self) -> "ShardedCollection":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __getstate__(self):
        if any(_is_filelike(s.source) for s in self._shards):
            raise TypeError("a collection opened from file-like objects cannot be sent to another process; "
                            "open it from paths or URLs")
        state = self.__dict__.copy()
        state["_shards"] = [_Shard(s.source, s.entry, s.label) for s in self._shards]
        state["_checked"] = set()
        return state

    def __repr__(self) -> str:
        where = self.directory if self.directory is not None else f"{len(self._shards)} sources"
        return f"<ShardedCollection {where} shards={len(self._shards)} records={self._n}>"


MAX_SHARD_RECORDS = 1 << 40  # a count beyond this is not a real shard (and would wrap sums elsewhere)


def _from_manifest(manifest: Manifest, base) -> ShardedCollection:
    shards = []
    seen: dict[object, str] = {}
    for entry in manifest.shards:
        if not 0 <= entry.records <= MAX_SHARD_RECORDS:
            raise SchemaError("NF-C001", "shard record count is not sane", location=f"{MANIFEST_NAME}: {entry.path}",
                              expected=f"0 .. {MAX_SHARD_RECORDS}", found=entry.records)
        source: str | Path
        if _is_url(base):
            source = base.rstrip("/") + "/" + entry.path
        else:
            source = resolve_shard_path(Path(base), entry.path)
        if source in seen:  # served twice, its records would be duplicated
            raise SchemaError("NF-C002", "shard listed more than once in the manifest", location=MANIFEST_NAME,
                              expected="each shard once", found=f"{entry.path} (also as {seen[source]})")
        seen[source] = entry.path
        shards.append(_Shard(source, entry, entry.path))
    return ShardedCollection(shards, [e.records for e in manifest.shards], manifest=manifest,
                             directory=None if _is_url(base) else Path(base))


def _read_url_manifest(url: str) -> bytes:
    fsspec = optional_deps.load("fsspec", needed_by="a collection behind a URL")
    with fsspec.open(url, "rb") as handle:
        return handle.read()


def open_collection(source: Union[str, os.PathLike, object, Sequence]) -> ShardedCollection:
    """Open a sharded collection lazily.

    ``source`` is a collection directory or its ``manifest.json``; one collection file; a list of
    shard files, URLs or file-like objects (read in the given order, no manifest); or an fsspec URL
    of a collection directory, manifest or file (needs the ``remote`` extra).
    """
    if isinstance(source, (list, tuple)):
        if not source:
            raise ValueError("open_collection needs at least one shard")
        return ShardedCollection([_Shard(s, None, str(getattr(s, "name", s))) for s in source], None)
    if _is_filelike(source):
        return ShardedCollection([_Shard(source, None, str(getattr(source, "name", "file-like")))], None)
    if _is_url(source):
        url = source.rstrip("/")
        if url.endswith(".json"):
            return _from_manifest(parse_manifest(_read_url_manifest(url), location=url), url.rsplit("/", 1)[0])
        fsspec = optional_deps.load("fsspec", needed_by="a collection behind a URL")
        fs, path = fsspec.core.url_to_fs(url)
        if fs.isdir(path):
            manifest = parse_manifest(_read_url_manifest(url + "/" + MANIFEST_NAME), location=url)
            return _from_manifest(manifest, url)
        return ShardedCollection([_Shard(source, None, source)], None)
    if not isinstance(source, (str, os.PathLike)):
        raise TypeError(f"open_collection takes a path, URL, file-like object or list of shards, not {type(source).__name__}")
    path = Path(source)
    if path.is_dir():
        return _from_manifest(read_manifest(path), path)
    if path.suffix == ".json":
        return _from_manifest(read_manifest(path.parent) if path.name == MANIFEST_NAME else
                              parse_manifest(read_manifest_bytes(path), location=str(path)), path.parent)
    return ShardedCollection([_Shard(path, None, str(path))], None)


# -- writing ------------------------------------------------------------------------------------------
def shard_name(index: int, count: Optional[int] = None) -> str:
    """Deterministic shard file names: ``shard-00003-of-00008.h5`` or ``shard-00003-<random>.h5``."""
    if count is not None:
        return f"shard-{index:05d}-of-{count:05d}{SHARD_SUFFIX}"
    return f"shard-{index:05d}-{uuid.uuid4().hex[:8]}{SHARD_SUFFIX}"


def shard_meta(meta: CollectionMeta, collection_id: str, index: int, count: int) -> CollectionMeta:
    """``meta`` stamped with its place in a collection (``shard_count`` is the count when written)."""
    return meta.model_copy(update={"shard": ShardInfo(collection_id=collection_id, shard_index=index,
                                                      shard_count=max(count, index + 1))})


def write_shard(path, meta: CollectionMeta, records: Iterable[Record], *, progress=None, **writer_kwargs) -> int:
    """Write one shard file atomically (the writer renames it into place on success); returns its count."""
    with CollectionWriter(path, meta, **writer_kwargs) as writer:
        for record in records:
            writer.append(record)
            if progress is not None:
                progress.update(1)
        return len(writer)


def existing_ids(collection: ShardedCollection) -> set[str]:
    return set(collection.record_ids())


def append_shard(collection_dir, records: Iterable[Record], meta: CollectionMeta, *, name: Optional[str] = None,
                 check_duplicates: bool = True, with_file_hash: bool = True, **writer_kwargs) -> ShardEntry:
    """Append ``records`` to the collection in ``collection_dir`` as a new shard, crash-safely.

    Creates the collection when the directory has no manifest. Refuses metadata that does not fit
    the existing shards (NF-C009) and, with ``check_duplicates``, record IDs the collection already
    holds (NF-C006). Order of durable steps: (1) the shard is written to a temporary file, fsynced
    and renamed to ``name``; (2) the new manifest is written to a temporary file, fsynced and
    renamed over ``manifest.json``. Concurrent appenders on one host are serialised by a lock file.
    """
    directory = Path(collection_dir)
    directory.mkdir(parents=True, exist_ok=True)
    with manifest_lock(directory):
        old = read_manifest(directory) if manifest_path(directory).exists() else None
        entries = list(old.shards) if old is not None else []
        collection_id = old.collection_id if old is not None else None
        if collection_id is None:
            from .manifest import new_collection_id
            collection_id = new_collection_id()
        taken: set[str] = set()
        if old is not None and entries:
            with _from_manifest(old, directory) as current:
                check_compatible_meta(current.meta, meta, location="appended shard")
                if check_duplicates:
                    taken = existing_ids(current)
        index = len(entries)
        name = name or shard_name(index)
        target = resolve_shard_path(directory, name)
        if target.exists() or any(e.path == name for e in entries):
            from ..errors import OutputExistsError
            raise OutputExistsError("NF-E-EXISTS", f"{target} exists; shard names are never reused",
                                    location=str(target), expected="a new shard name", found="a file")

        def checked(stream):
            for record in stream:
                if record.record_id in taken:
                    raise SchemaError("NF-C006", "record ID already in the collection", location=name,
                                      expected="IDs unique across shards", found=record.record_id)
                yield record

        write_shard(target, shard_meta(meta, collection_id, index, index + 1), checked(records), **writer_kwargs)
        try:
            entry = shard_entry(target, name, with_file_hash=with_file_hash)
            write_manifest(directory, make_manifest(entries + [entry], collection_id=collection_id,
                                                    created=old.created if old is not None else None))
        except BaseException:
            # the manifest was not replaced: the new shard is an orphan; remove it so a retry can reuse the name
            target.unlink(missing_ok=True)
            raise
        return entry


def write_manifest_for(directory, names: Sequence[str], *, collection_id: Optional[str] = None,
                       with_file_hash: bool = True) -> Manifest:
    """Describe the given finished shard files in ``directory`` and write the manifest atomically."""
    directory = Path(directory)
    entries = [shard_entry(resolve_shard_path(directory, n), n, with_file_hash=with_file_hash) for n in names]
    manifest = make_manifest(entries, collection_id=collection_id)
    write_manifest(directory, manifest)
    return manifest
