"""Recompute every hash of a file or a sharded collection: what ``neural-format verify`` runs,
in-process or in the resource-limited child of :mod:`neural_format.validation.isolation`.

Hash checks only (the structural rules are :func:`neural_format.validate`'s job); the problems are
JSON-able dicts with the clause code, the place, expected and found.
"""
from __future__ import annotations

from pathlib import Path

MAX_LISTED = 20  # mismatched record indices listed per shard


def _problem(code, location, message, expected=None, found=None) -> dict:
    return {"code": code, "location": str(location), "message": message,
            "expected": None if expected is None else str(expected)[:200],
            "found": None if found is None else str(found)[:200]}


def _from_error(exc) -> dict:
    return _problem(exc.code, exc.location, exc.message, exc.expected, exc.found)


def _verify_records(reader, label: str, workers, progress) -> tuple[dict, list[dict]]:
    from ..files.integrity import verify_hashes
    report = verify_hashes(reader, workers=workers, progress=progress)
    problems: list[dict] = []
    ids = None
    for index in report.mismatched[:MAX_LISTED]:
        ids = ids if ids is not None else reader.record_ids()
        problems.append(_problem("NF-I001", f"{label}/records/sha256[{index}]",
                                 f"record {ids[index]!r} does not match its stored SHA-256"))
    if len(report.mismatched) > MAX_LISTED:
        problems.append(_problem("NF-I001", f"{label}/records/sha256",
                                 f"{len(report.mismatched) - MAX_LISTED} more records do not match"))
    return {"records": report.records, "mismatched": len(report.mismatched)}, problems


def verify_file(path, *, workers=None, progress=None) -> dict:
    from ..errors import NeuralFormatError
    from ..files.reader import CollectionReader
    records = 0
    problems: list[dict] = []
    try:
        with CollectionReader(path) as reader:
            counts, problems = _verify_records(reader, str(path), workers, progress)
    except NeuralFormatError as exc:
        problems.append(_from_error(exc))
    else:
        records = counts["records"]
    return {"path": str(path), "kind": "file", "records": records, "problems": problems, "ok": not problems}


def verify_collection(directory, *, workers=None, progress=None, file_hashes: bool = True) -> dict:
    """Check every hash of a sharded collection; returns a JSON-able report (``ok`` is the verdict)."""
    import numpy as np

    from .collection import resolve_shard_path
    from ..errors import NeuralFormatError
    from .manifest import collection_sha256, file_sha256, ids_sha256, read_manifest
    from ..files.reader import CollectionReader

    directory = Path(directory)
    records = 0
    shards: list[dict] = []
    problems: list[dict] = []

    def result() -> dict:
        return {"path": str(directory), "kind": "collection", "records": records, "shards": shards,
                "problems": problems, "ok": not problems}

    try:
        manifest = read_manifest(directory)
    except NeuralFormatError as exc:
        problems.append(_from_error(exc))
        return result()
    actual = collection_sha256(manifest)
    if actual != manifest.collection_sha256:
        problems.append(_problem("NF-C007", "manifest.json/collection_sha256",
                                 "collection hash does not match the manifest",
                                 manifest.collection_sha256, actual))
    seen: dict[str, str] = {}
    duplicates = 0
    listed: dict[Path, str] = {}
    relisted = 0
    for entry in manifest.shards:
        shard = {"path": entry.path, "records": entry.records, "ok": True}
        shards.append(shard)
        before = len(problems)
        try:
            path = resolve_shard_path(directory, entry.path)
            if path in listed:  # reported, and hashed once: a manifest may list one file many times
                relisted += 1
                if relisted <= MAX_LISTED:
                    problems.append(_problem("NF-C002", entry.path, "shard listed more than once in the manifest",
                                             "each shard once", f"also as {listed[path]}"))
                shard["ok"] = False
                continue
            listed[path] = entry.path
            if not path.is_file():
                raise_missing(entry.path)
            if file_hashes and entry.file_sha256 is not None:
                digest = file_sha256(path)
                if digest != entry.file_sha256:
                    problems.append(_problem("NF-C003", entry.path, "file SHA-256 does not match the manifest",
                                             entry.file_sha256, digest))
            with CollectionReader(path) as reader:
                ids = reader.record_ids()
                hashes = reader.stored_hashes() if ids else np.zeros((0, 32), np.uint8)
                found = {"records": len(ids), "first_id": ids[0] if ids else None,
                         "last_id": ids[-1] if ids else None}
                for key, value in found.items():
                    if getattr(entry, key) != value:
                        problems.append(_problem("NF-C005", f"{entry.path}", f"{key} differs from the manifest",
                                                 getattr(entry, key), value))
                digest = ids_sha256(ids, hashes)
                if digest != entry.ids_sha256:
                    problems.append(_problem("NF-C005", entry.path, "ids_sha256 does not match the shard",
                                             entry.ids_sha256, digest))
                for rid in ids:
                    if rid in seen:
                        duplicates += 1
                        if duplicates <= MAX_LISTED:
                            problems.append(_problem("NF-C006", entry.path, f"record ID {rid!r} also in {seen[rid]}"))
                    else:
                        seen[rid] = entry.path
                counts, record_problems = _verify_records(reader, entry.path, workers, progress)
                problems += record_problems
                records += counts["records"]
        except NeuralFormatError as exc:
            problems.append(_from_error(exc))
        shard["ok"] = len(problems) == before
    if relisted > MAX_LISTED:
        problems.append(_problem("NF-C002", "manifest.json", f"{relisted - MAX_LISTED} more entries list a shard again"))
    if duplicates > MAX_LISTED:
        problems.append(_problem("NF-C006", "manifest.json", f"{duplicates - MAX_LISTED} more duplicate IDs"))
    return result()


def raise_missing(relative: str):
    from ..errors import SchemaError
    raise SchemaError("NF-C002", "shard file listed in the manifest is missing", location=relative,
                      expected="a file", found="nothing")


def verify_path(path, *, workers=None, progress=None, file_hashes: bool = True) -> dict:
    """Verify a collection file, a collection directory or a ``manifest.json``."""
    path = Path(path)
    if path.is_dir() or path.name == "manifest.json":
        return verify_collection(path if path.is_dir() else path.parent, workers=workers, progress=progress,
                                 file_hashes=file_hashes)
    return verify_file(path, workers=workers, progress=progress)


def total_records(path: Path) -> int | None:
    """The record count of a file or sharded collection for a progress bar; None when it cannot be read."""
    try:
        from .collection import open_collection
        with open_collection(path) as coll:
            return len(coll)
    except Exception:
        return None
