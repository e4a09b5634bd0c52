"""``neural-format verify PATH``: recompute every hash of a file or a sharded collection.

Hash checks only (the structural rules are ``neural-format validate``'s job). For one file:
every record's canonical SHA-256 against ``/records/sha256`` (NF-I001). For a collection
directory (or its ``manifest.json``) also: ``collection_sha256`` over the whole manifest (NF-C007),
each shard's ``file_sha256`` (NF-C003), its record count, first/last ID and ``ids_sha256``
(NF-C005), shard paths (NF-C002) and record IDs unique across shards (NF-C006).
Exit status 0 when everything matches, 2 otherwise. Records are read in bulk and hashed in a
thread pool (:func:`neural_format.files.integrity.verify_hashes`).
"""
from __future__ import annotations

import json
from pathlib import Path

from ..errors import printable
from . import int_at_least
from ..collections.verification import (MAX_LISTED, raise_missing, total_records, verify_collection,  # noqa: F401 (re-exported)
                                        verify_file, verify_path)


def run(args) -> int:
    from ..internals.progress import Progress
    path = Path(args.path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or directory")
    if args.in_process:
        with Progress(total_records(path), "verifying", enabled=None if not args.json else False) as bar:
            result = verify_path(path, workers=args.workers, progress=bar, file_hashes=not args.no_file_hash)
    else:  # a file from elsewhere is read in a resource-limited child (docs/safety.md)
        import sys

        from ..validation.isolation import cli_timeout_s, verify_isolated
        result = verify_isolated(path, workers=args.workers, file_hashes=not args.no_file_hash,
                                 progress=not args.json and sys.stderr.isatty(), memory_mib=args.memory_mib,
                                 timeout_s=args.timeout_s if args.timeout_s is not None else cli_timeout_s(path))
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        verdict = "OK" if result["ok"] else "MISMATCH"
        shards = f", {len(result['shards'])} shards" if result["kind"] == "collection" else ""
        print(f"{verdict}: {result['path']} ({result['records']:,} records{shards})")
        for p in result["problems"]:
            line = f"  {p['code']}  {p['location']}: {p['message']}"
            if p["expected"] is not None or p["found"] is not None:
                line += f" (expected {p['expected']}, found {p['found']})"
            print(printable(line))
    return 0 if result["ok"] else 2


def register(sub) -> None:
    p = sub.add_parser("verify", help="recompute record, shard and manifest hashes (exit 0 ok, 2 mismatch)")
    p.add_argument("path", help="a collection file, a collection directory or its manifest.json")
    p.add_argument("--json", action="store_true", help="print a JSON report")
    p.add_argument("--workers", type=int_at_least(0), default=None, help="hashing threads (default or 0: up to 4)")
    p.add_argument("--no-file-hash", action="store_true", help="skip whole-file SHA-256 of shards")
    from .validate_cmd import add_isolation_arguments
    add_isolation_arguments(p)
    p.set_defaults(func=run)
