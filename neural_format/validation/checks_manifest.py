"""Manifest checks for sharded collections (spec section 7, clauses NF-C001..NF-C010).

:func:`neural_format.validation.runner.validate_manifest` runs each registered
``manifest``-stage check here once over a :class:`ManifestContext`, and then validates every shard
that opens as a collection file in its own right. The context reads each shard's IDs, stored
hashes, metadata and version once.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Optional

import numpy as np

from ..errors import NeuralFormatError, SchemaError
from ..collections.manifest import (MANIFEST_NAME, collection_sha256, file_sha256, ids_sha256, meta_differences,
                                    read_manifest)
from ..format.metadata import CollectionMeta, Manifest, ShardEntry
from ..version import CURRENT, Version, parse_version
from .findings import finding, from_error
from .registry import check


@dataclass(frozen=True)
class ShardContents:
    """What one readable shard file holds, read once."""
    ids: list[str]
    hashes: np.ndarray
    meta: CollectionMeta
    version: Version


class ShardState:
    """One manifest entry, where it points, and what the shard file holds (read once)."""

    def __init__(self, directory: Path, position: int, entry: ShardEntry):
        self.position, self.entry = position, entry
        self.duplicate_of: Optional[int] = None  # position of an earlier entry naming the same file
        self.path: Optional[Path] = None
        self.path_error: Optional[str] = None
        relative = Path(entry.path)
        try:
            base = directory.resolve()
            candidate = (base / relative).resolve()
        except (ValueError, OSError, RuntimeError):  # NUL bytes, symlink loops
            self.path_error = "cannot be resolved"
            return
        if relative.is_absolute() or ".." in relative.parts or base not in candidate.parents:
            self.path_error = "escapes the collection directory"
        elif not candidate.is_file():
            self.path_error = "is missing"
        else:
            self.path = candidate

    @cached_property
    def contents(self) -> tuple[Optional[ShardContents], Optional[NeuralFormatError]]:
        """``(contents, None)`` or ``(None, coded error)`` for a shard that exists."""
        from ..files.reader import CollectionReader
        if self.path is None:
            return None, None
        try:
            with CollectionReader(self.path) as reader:
                ids = reader.record_ids()
                hashes = reader.stored_hashes() if ids else np.zeros((0, 32), np.uint8)
                return ShardContents(ids, hashes, reader.meta, reader.version), None
        except NeuralFormatError as exc:
            return None, exc
        except Exception as exc:  # damaged internals
            return None, SchemaError("NF-F001", f"unreadable: {type(exc).__name__}: {exc}"[:300],
                                     location=self.entry.path)

    @property
    def info(self) -> Optional[ShardContents]:
        return self.contents[0]

    @property
    def label(self) -> str:
        return f"{MANIFEST_NAME}#shards[{self.position}] ({self.entry.path})"


class ManifestContext:
    """One validation run over one sharded collection."""

    def __init__(self, target, *, hashes: bool = True):
        target = Path(target)
        self.directory = target if target.is_dir() else target.parent
        self.hashes = hashes
        self.manifest: Optional[Manifest] = None
        self.error: Optional[NeuralFormatError] = None
        try:
            self.manifest = read_manifest(self.directory) if target.is_dir() or target.name == MANIFEST_NAME \
                else _read_named(target)
        except NeuralFormatError as exc:
            self.error = exc
        entries = self.manifest.shards if self.manifest is not None else []
        self.shards = [ShardState(self.directory, k, e) for k, e in enumerate(entries)]
        first: dict[object, int] = {}
        for shard in self.shards:  # a file listed again is reported (NF-C002) and read once
            key = shard.path if shard.path is not None else shard.entry.path
            shard.duplicate_of = first.setdefault(key, shard.position)
            if shard.duplicate_of == shard.position:
                shard.duplicate_of = None

    def distinct(self) -> list[ShardState]:
        """The entries that name a file no earlier entry names: each shard file is read once."""
        return [s for s in self.shards if s.duplicate_of is None]

    def readable(self) -> list[tuple[ShardState, ShardContents]]:
        """Each distinct shard that reads, with what it holds."""
        out = []
        for s in self.distinct():
            info = s.info
            if info is not None:
                out.append((s, info))
        return out


def _read_named(path: Path) -> Manifest:
    from ..collections.manifest import parse_manifest, read_manifest_bytes
    return parse_manifest(read_manifest_bytes(path), location=str(path))


@check("NF-C001", "error", stage="manifest")
def manifest_matches_schema(ctx: ManifestContext):
    return from_error(ctx.error) if ctx.error is not None else None


@check("NF-C002", "error", stage="manifest")
def shard_paths_inside_and_present(ctx: ManifestContext):
    out = [finding("NF-C002", s.label, f"shard path {s.path_error}", "a file inside the collection directory",
                   s.entry.path) for s in ctx.distinct() if s.path_error is not None]
    counts = Counter(ctx.shards[s.duplicate_of].entry.path for s in ctx.shards if s.duplicate_of is not None)
    out += [finding("NF-C002", MANIFEST_NAME, "shard listed more than once", "each shard once", f"{p} x{n + 1}")
            for p, n in counts.items()]
    return out


@check("NF-C003", "error", stage="manifest")
def shards_open_and_file_hashes_match(ctx: ManifestContext):
    out = []
    for s in ctx.distinct():
        _, error = s.contents
        if error is not None:
            out.append(finding("NF-C003", s.label, f"shard is not a readable collection file: [{error.code}] "
                               f"{error.message}"[:300], error.expected, error.found))
        elif s.path is not None and ctx.hashes and s.entry.file_sha256 is not None:
            digest = file_sha256(s.path)
            if digest != s.entry.file_sha256:
                out.append(finding("NF-C003", s.label, "file SHA-256 does not match the manifest",
                                   s.entry.file_sha256, digest))
    return out


@check("NF-C004", "error", stage="manifest")
def shards_name_their_collection(ctx: ManifestContext):
    if ctx.manifest is None:  # no entries, no shards
        return []
    out, total = [], len(ctx.shards)
    for s, contents in ctx.readable():
        info = contents.meta.shard
        if info is None:
            out.append(finding("NF-C004", s.label, "shard metadata has no shard section",
                               f"collection_id {ctx.manifest.collection_id}, shard_index {s.position}", None))
            continue
        if info.collection_id != ctx.manifest.collection_id:
            out.append(finding("NF-C004", s.label, "shard belongs to another collection",
                               ctx.manifest.collection_id, info.collection_id))
        if info.shard_index != s.position:
            out.append(finding("NF-C004", s.label, "shard_index is not the shard's position in the manifest",
                               s.position, info.shard_index))
        # shard_count is the count when the shard was written: appends add shards later
        if not info.shard_index + 1 <= info.shard_count <= total:
            out.append(finding("NF-C004", s.label, "shard_count does not fit the manifest",
                               f"{info.shard_index + 1} .. {total}", info.shard_count))
    return out


@check("NF-C005", "error", stage="manifest")
def entries_match_shards(ctx: ManifestContext):
    out = []
    for s, contents in ctx.readable():
        ids, entry = contents.ids, s.entry
        found = {"records": len(ids), "first_id": ids[0] if ids else None, "last_id": ids[-1] if ids else None}
        for key, value in found.items():
            if getattr(entry, key) != value:
                out.append(finding("NF-C005", s.label, f"{key} differs from the shard", getattr(entry, key), value))
        digest = ids_sha256(ids, contents.hashes)
        if digest != entry.ids_sha256:
            out.append(finding("NF-C005", s.label, "ids_sha256 does not match the shard's IDs and record hashes",
                               entry.ids_sha256, digest))
    return out


@check("NF-C006", "error", stage="manifest")
def ids_unique_across_shards(ctx: ManifestContext):
    owner: dict[str, int] = {}
    out = []
    for s, contents in ctx.readable():
        for rid in contents.ids:
            first = owner.setdefault(rid, s.position)
            if first != s.position:
                out.append(finding("NF-C006", s.label, f"record ID {rid!r} also in shards[{first}]",
                                   "IDs unique across shards", rid))
    return out


@check("NF-C007", "error", stage="manifest")
def collection_hash_matches(ctx: ManifestContext):
    if ctx.manifest is None:
        return None
    actual = collection_sha256(ctx.manifest)
    if actual != ctx.manifest.collection_sha256:
        return finding("NF-C007", f"{MANIFEST_NAME}#collection_sha256",
                       "collection hash does not match the manifest", ctx.manifest.collection_sha256, actual)
    return None


@check("NF-C008", "error", stage="manifest")
def versions_compatible(ctx: ManifestContext):
    if ctx.manifest is None:
        return None
    out = []
    try:
        manifest_version = parse_version(ctx.manifest.format_version, location=f"{MANIFEST_NAME}#format_version")
    except NeuralFormatError as exc:
        return finding("NF-C008", exc.location, exc.message, exc.expected, exc.found)
    if manifest_version.major != CURRENT.major:
        out.append(finding("NF-C008", f"{MANIFEST_NAME}#format_version", "manifest major version is not readable",
                           f"{CURRENT.major}.x.y", str(manifest_version)))
    majors: dict[int, list[int]] = {}
    for s in ctx.distinct():
        _, error = s.contents
        if error is not None and error.code in ("NF-V003", "NF-V004"):
            out.append(finding("NF-C008", s.label, "shard format version is not readable", error.expected, error.found))
        if s.info is None:
            continue
        version = s.info.version
        majors.setdefault(version.major, []).append(s.position)
        if str(version) != s.entry.format_version:
            out.append(finding("NF-C008", s.label, "entry format_version differs from the shard file's",
                               s.entry.format_version, str(version)))
    if len(majors) > 1:
        out.append(finding("NF-C008", MANIFEST_NAME, "shards of different major format versions are mixed",
                           "one major version", {f"{m}.x": p for m, p in sorted(majors.items())}))
    return out


@check("NF-C009", "error", stage="manifest")
def shard_metadata_compatible(ctx: ManifestContext):
    readable = ctx.readable()
    if not readable:
        return []
    first = readable[0][1].meta
    out = []
    for s, contents in readable[1:]:
        diff = meta_differences(first, contents.meta)
        if diff:
            name = diff[0]
            out.append(finding("NF-C009", s.label, f"metadata incompatible with the first shard: {', '.join(diff)}",
                               getattr(first, name), getattr(contents.meta, name)))
    return out


@check("NF-C010", "warning", stage="manifest")
def no_unlisted_shard_files(ctx: ManifestContext):
    if ctx.manifest is None:
        return None
    listed = {s.path for s in ctx.shards if s.path is not None}
    out = []
    for path in sorted(ctx.directory.iterdir()):
        if path.name.endswith(".partial"):
            out.append(finding("NF-C010", path.name, "partial file left by an interrupted write",
                               "no partial files", path.name))
        elif path.suffix == ".h5" and path.resolve() not in listed:
            out.append(finding("NF-C010", path.name, "shard file not listed in the manifest (interrupted append?)",
                               "every shard file listed", path.name))
    return out
