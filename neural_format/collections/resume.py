"""Resumable builds: one shard per input chunk, appended crash-safely, finished chunks skipped.

A build over an ordered input list is cut into chunks of ``chunk_size`` inputs; chunk ``k``
becomes the shard ``part-<k>.h5`` of a sharded collection, added with
:func:`neural_format.collections.collection.append_shard` (shard written under a temporary name, fsynced,
renamed; then ``manifest.json`` atomically replaced). The manifest is therefore the commit
record: a chunk is finished exactly when its shard is listed there. After a crash
:func:`build_resumable` is simply run again with the same inputs:

1. temporary ``.partial`` files left by killed writers are removed (:func:`remove_stale_partials`);
2. ``part-*.h5`` files that the manifest does not list are removed: they are complete shards
   whose manifest update never happened, and their chunk is built again;
3. every chunk not listed is built and appended, in order.

So no record is lost (every chunk ends up listed) and none is duplicated (a chunk is listed at
most once, and a record ID the collection already holds is refused, NF-C006). Only one
build may run per directory at a time: cleaning up would otherwise delete another build's
temporary files.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Callable, Iterable, Iterator, Optional, Sequence

from .collection import append_shard, open_collection
from ..errors import SchemaError
from .manifest import manifest_path, read_manifest
from ..format.metadata import CollectionMeta
from ..format.record import Record

CHUNK_SHARD = re.compile(r"^part-(\d{5,})\.h5$")
PARTIAL = re.compile(r"^\..+\.[0-9a-f]{12}\.partial$")  # writer and manifest temporary files


def chunk_shard_name(index: int) -> str:
    return f"part-{index:05d}.h5"


def remove_stale_partials(directory) -> list[Path]:
    """Delete the ``.<name>.<uuid>.partial`` temporary files of killed writers; return them.

    Never call this while a writer may be running in ``directory``: its temporary file would go.
    """
    removed = []
    for path in sorted(Path(directory).iterdir()):
        if path.is_file() and PARTIAL.match(path.name):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def finished_chunks(directory) -> set[str]:
    """Shard names the manifest lists (the chunks that are committed)."""
    directory = Path(directory)
    if not manifest_path(directory).exists():
        return set()
    return {entry.path for entry in read_manifest(directory).shards}


def build_resumable(directory, inputs: Sequence, make_records: Callable[[Sequence], Iterable[Record]],
                    meta: CollectionMeta, *, chunk_size: int, progress=None, **writer_kwargs) -> int:
    """Build (or finish building) the collection in ``directory``; returns the chunks built now."""
    if chunk_size < 1:
        raise ValueError("chunk_size must be >= 1")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    remove_stale_partials(directory)
    done = finished_chunks(directory)
    for path in sorted(directory.iterdir()):
        if CHUNK_SHARD.match(path.name) and path.name not in done:
            path.unlink()  # a complete shard whose manifest update was lost: rebuilt below
    taken: set[str] = set()
    if done:
        with open_collection(directory) as current:
            taken.update(current.record_ids())

    def unique(records: Iterable[Record], name: str) -> Iterator[Record]:
        # checked here, against one ID set kept across chunks; append_shard's own check reopens
        # every shard per append, which is quadratic in the number of chunks
        for record in records:
            if record.record_id in taken:
                raise SchemaError("NF-C006", "record ID already in the collection", location=name,
                                  expected="IDs unique across shards", found=record.record_id)
            taken.add(record.record_id)
            yield record

    built = 0
    for index, start in enumerate(range(0, len(inputs), chunk_size)):
        name = chunk_shard_name(index)
        if name in done:
            continue
        append_shard(directory, unique(make_records(inputs[start:start + chunk_size]), name), meta, name=name,
                     check_duplicates=False, **writer_kwargs)
        built += 1
        if progress is not None:
            progress.update(1)
    return built


def chunk_count(inputs: Sequence, chunk_size: int) -> int:
    return -(-len(inputs) // chunk_size)


def missing_chunks(directory, inputs: Sequence, chunk_size: int) -> Optional[list[str]]:
    """Names of the chunks still to build (empty when the build is complete)."""
    done = finished_chunks(directory)
    return [chunk_shard_name(k) for k in range(chunk_count(inputs, chunk_size)) if chunk_shard_name(k) not in done]
