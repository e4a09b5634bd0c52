"""Record and collection integrity (spec clauses NF-I001, NF-I002).

:func:`verify_hashes` recomputes every record's canonical SHA-256 (see
:mod:`neural_format.format.hashing`) from bulk reads of blocks of records and compares it with
``/records/sha256``. Blocks are hashed in a thread pool: :mod:`hashlib` releases the GIL on large
buffers.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
import os


from ..errors import IntegrityError
from ..format.hashing import column_digests, record_digest


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


def verify_hashes(reader, *, workers: int | None = None, progress=None, block: int = 1024) -> HashReport:
    """Recompute all record hashes of an open reader; list the indices that do not match.

    Records are read ``block`` at a time (bounded memory) and hashed from their columns
    (:func:`~neural_format.format.hashing.column_digests`); up to ``workers`` blocks are hashed in threads
    while the next is read. A block whose strings do not decode is hashed record by record, and
    its undecodable records count as mismatched.
    """
    stored = reader.stored_hashes()
    n = len(reader)
    workers = workers or min(4, os.cpu_count() or 1)
    report = HashReport(records=n)

    def digests_of(start: int, columns) -> tuple[int, list]:
        return start, block_digests(columns, lambda: reader.records_from_columns(columns))

    def settle(job) -> None:
        start, digests = job.result()
        for k, digest in enumerate(digests):
            if digest != stored[start + k].tobytes():
                report.mismatched.append(start + k)
        if progress is not None:
            progress.update(len(digests))

    with ThreadPoolExecutor(max_workers=workers) as pool:
        pending = []
        for start in range(0, n, block):
            columns = reader.read_columns(start, min(n, start + block), string_errors="surrogateescape")
            pending.append(pool.submit(digests_of, start, columns))
            while len(pending) > workers:
                settle(pending.pop(0))
        for job in pending:
            settle(job)
    report.mismatched.sort()
    return report


def digest_or_none(record):
    """The record's digest, or None when it cannot be hashed (undecodable strings, unknown codes):
    the validator reports those under their own clauses."""
    try:
        return record_digest(record)
    except (UnicodeEncodeError, KeyError, ValueError, TypeError):
        return None


def block_digests(columns: dict, records, nan_free: frozenset = frozenset()) -> list:
    """Digests of a block of records held in columns (:func:`~neural_format.format.hashing.column_digests`).

    A block that the columnar path cannot hash (a string that does not encode, an unknown code) is
    hashed record by record from ``records()``, so that only the bad records get None.
    """
    try:
        return column_digests(columns, nan_free)
    except (UnicodeEncodeError, KeyError, ValueError, TypeError):
        return [digest_or_none(r) for r in records()]
