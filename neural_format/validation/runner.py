"""``validate(path) -> Report``: run every registered check, stage by stage, collecting findings.

Stages run while it is safe: a file that does not open stops after ``container``; a version that
cannot be interpreted stops after ``root``; unparseable metadata stops after ``metadata``; the
``records`` stage needs the lazy reader to open (structure sound) and then streams over the
records in batches of at most ``batch_bytes`` of column data, so memory stays bounded.

Every check is called by :func:`.registry.run_check` with the inputs it names (:class:`.registry.Inputs`):
the runner gives each stage its inputs and owns the thread pool that runs ``background`` checks.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Optional

from ..internals.progress import Progress
from . import (checks_container, checks_manifest, checks_metadata, checks_records, checks_root,  # noqa: F401
               checks_structure)  # importing registers the checks
from ..errors import NeuralFormatError
from ..collections.manifest import MANIFEST_NAME
from .checks_manifest import ManifestContext
from .checks_root import legacy_reader
from .context import Context, rows_per_batch
from .findings import Finding, Report, finding, from_error
from .clauses import CLAUSES
from .registry import Inputs, checks_for, run_check
from ..internals import optional_deps

DEFAULT_BATCH_BYTES = 64 << 20


def _applicable(stage: str, report: Report, ctx: Context) -> list:
    """The checks of ``stage`` whose clause applies to the file's declared format version."""
    checks = checks_for(stage)
    if all(CLAUSES[c.code].since == "1.0.0" for c in checks):
        return checks  # nothing to decide: the file's version is not even looked up
    version = ctx.root()[0]
    out = []
    for registered in checks:
        clause = CLAUSES[registered.code]
        if clause.applies_to(version):
            out.append(registered)
        else:
            report.skipped.append(f"{registered.code}: added in format {clause.since}; the file declares {version}")
    return out


def _run(stage: str, report: Report, ctx: Context) -> None:
    inputs = Inputs(stage, ctx=ctx)
    for registered in _applicable(stage, report, ctx):
        report.checks_run += 1
        report.add(run_check(registered, inputs, "/"))


def validate(path, *, hashes: bool = True, batch_bytes: int = DEFAULT_BATCH_BYTES,
             workers: Optional[int] = None, progress: bool | None = None) -> Report:
    """Check one collection file (or a sharded collection: its directory or ``manifest.json``) against
    spec 1.x (the clauses of the version the file declares and older); never raises for bad input.

    ``hashes=False`` skips NF-I001 (faster). ``progress`` shows a bar on stderr (None: when a TTY).
    """
    if isinstance(path, str) and "://" in path and not path.rstrip("/").endswith(".json"):
        # a collection file behind a URL, read as a file object
        fsspec = optional_deps.load("fsspec", needed_by="validating a URL")
        fs, where = fsspec.core.url_to_fs(path)
        if not fs.isdir(where):
            with fsspec.open(path, "rb") as handle:
                report = validate(handle, hashes=hashes, batch_bytes=batch_bytes, workers=workers, progress=progress)
            report.path = path
            return report
    filelike = hasattr(path, "read") and hasattr(path, "seek")  # io.BytesIO, an open file, an fsspec file
    if not filelike and not isinstance(path, (str, os.PathLike)):
        report = Report(repr(path)[:80])
        report.add(finding("NF-F001", "/", "not a path or a binary file object", "a path or a seekable binary "
                                                                                   "file object", type(path).__name__))
        return report
    if not filelike and (str(path).endswith(".json") or Path(path).is_dir()):  # a sharded collection (section 7)
        return validate_manifest(path, hashes=hashes, batch_bytes=batch_bytes, workers=workers)
    report = Report(str(path))
    ctx = Context(path, hashes=hashes, workers=workers)
    try:
        _validate_file(ctx, report, batch_bytes, progress)
    finally:
        ctx.close()
    return report


def _validate_file(ctx: Context, report: Report, batch_bytes: int, progress) -> None:
    ctx.open()
    if ctx.open_error is not None:  # set exactly when the file did not open
        report.add(from_error(ctx.open_error))
        report.checks_run += 1
        report.skipped.append("all other checks: the file does not open")
        return
    _run("container", report, ctx)
    _run("root", report, ctx)
    version, error, _ = ctx.root()
    if error is not None and error.code in ("NF-V001", "NF-V003", "NF-V004"):
        if legacy_reader(ctx) is not None:
            report.skipped.append(f"format {error.found} is read by its registered legacy reader; "
                                  "format 1.0 checks do not apply")
        else:
            report.skipped.append("metadata, structure and records: the format version is not readable")
        return
    _run("metadata", report, ctx)
    if ctx.meta is None:
        report.skipped.append("structure and records: the metadata does not parse")
        return
    _run("structure", report, ctx)
    reader, error = ctx.open_reader()
    if reader is None:
        report.add(from_error(error))
        report.skipped.append("records: the file's structure is not sound enough to read records")
        return
    report.records = len(reader)
    _run_records(ctx, report, reader, batch_bytes, progress)


def _run_records(ctx: Context, report: Report, reader, batch_bytes: int, progress) -> None:
    checks = _applicable("records", report, ctx)
    report.checks_run += len(checks)
    workers = ctx.workers or min(4, os.cpu_count() or 1)
    pool = ThreadPoolExecutor(max_workers=workers) if ctx.hashes and workers > 1 else None
    earlier_ids: set[str] = set()
    # two sets of column arrays, used in turn: a background check (the record hashes) may still
    # read one block in the pool while the next block is read into the other set. pending[k]:
    # the background work on set k, settled (its findings added) before set k is read into again.
    buffers: list[dict] = [{}, {}]
    pending: list[list] = [[], []]

    def settle(turn: int) -> None:
        for future in pending[turn]:
            report.add(future.result())  # run_check turns a failing check into a finding
        pending[turn].clear()

    try:
        with Progress(len(reader), "validating", enabled=progress) as bar:
            for turn, (start, stop) in enumerate(rows_per_batch(reader, batch_bytes)):
                settle(turn % 2)  # the work left on this buffer set two blocks ago
                try:
                    columns = reader.read_columns(start, stop, string_errors="surrogateescape",
                                                  buffers=buffers[turn % 2])
                except Exception as exc:
                    report.add(from_error(exc) if isinstance(exc, NeuralFormatError) else finding(
                        "NF-F001", "/", f"records {start}..{stop - 1} unreadable: {type(exc).__name__}: {exc}"[:300]))
                    bar.update(stop - start)
                    continue
                batch = checks_records.Batch(reader, start, stop, columns)
                inputs = Inputs("records", batch=batch, earlier_ids=earlier_ids, hashes=ctx.hashes)
                location = f"records {start}..{stop - 1}"
                for registered in checks:
                    if registered.background and pool is not None:
                        inputs.prepare(registered)  # derived inputs are computed here, not in the pool
                        pending[turn % 2].append(pool.submit(run_check, registered, inputs, location))
                    else:
                        report.add(run_check(registered, inputs, location))
                earlier_ids.update(columns["/records/id"])
                bar.update(stop - start)
            settle(0)
            settle(1)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)


def validate_manifest(path, *, hashes: bool = True, batch_bytes: Optional[int] = None,
                      workers: Optional[int] = None, shards: bool = True) -> Report:
    """Validate a sharded collection: the manifest checks (:mod:`.checks_manifest`), then each
    readable shard as a file, its findings prefixed with the shard's path."""
    ctx = ManifestContext(path, hashes=hashes)
    report = Report(str(path))
    inputs = Inputs("manifest", ctx=ctx)
    for registered in checks_for("manifest"):
        report.checks_run += 1
        if ctx.manifest is None and registered.code != "NF-C001":
            continue
        report.add(run_check(registered, inputs, MANIFEST_NAME))
    if ctx.manifest is None:
        report.skipped.append("shards: the manifest does not parse")
        return report
    for s in ctx.distinct():
        if not shards or s.info is None:
            continue
        sub = validate(s.path, hashes=hashes, batch_bytes=batch_bytes or DEFAULT_BATCH_BYTES, workers=workers,
                       progress=False)
        report.records += sub.records
        report.checks_run += sub.checks_run
        report.add([Finding(f.code, f.severity, f"{s.entry.path}:{f.location}", f.message, f.expected, f.found)
                    for f in sub.findings])
        report.skipped += [f"{s.entry.path}: {reason}" for reason in sub.skipped]
    return report
