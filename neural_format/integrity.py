"""Record and collection integrity (spec clauses NF-I001, NF-I002).

:func:`verify_hashes` recomputes every record's canonical SHA-256 (see
:mod:`neural_format.hashing`) from a bulk read and compares it with ``/records/sha256``.
Hashing runs in a thread pool: :mod:`hashlib` releases the GIL on large buffers.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
import os

import numpy as np

from .errors import IntegrityError
from .hashing import record_digest


def check_record_hash(record, stored: bytes, index: int) -> None:
    actual = record_digest(record)
    if actual != stored:
        raise IntegrityError("NF-I001", f"record {index} ({record.record_id!r}) hash mismatch",
                             location="/records/sha256", expected=stored.hex(), found=actual.hex())


@dataclass
class HashReport:
    records: int = 0
    mismatched: list[int] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.mismatched


def verify_hashes(reader, *, workers: int | None = None, progress=None) -> HashReport:
    """Recompute all record hashes of an open reader; list the indices that do not match."""
    records = reader.read_all()
    stored = reader.stored_hashes()
    workers = workers or min(4, os.cpu_count() or 1)
    report = HashReport(records=len(records))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for i, digest in enumerate(pool.map(record_digest, records, chunksize=64)):
            if digest != stored[i].tobytes():
                report.mismatched.append(i)
            if progress is not None:
                progress.update(1)
    return report
