"""Validate or verify an untrusted file in a child process with memory, CPU and wall-clock limits.

The SDK's own guards refuse hostile files with coded errors before they allocate or loop, but
damaged structures are parsed inside the HDF5 C library, where Python cannot interrupt it. Two
such defects were found by fuzzing (HDF5 2.0 allocates what a corrupted variable-length string
attribute declares, up to 4 GiB, and loops forever on a global heap collection with a zero-size
free-space object); :mod:`neural_format.files.heap_guard` now refuses both before HDF5 reads them, but
others cannot be ruled out (docs/safety.md, "Residual risk"). For files from untrusted sources
the remedy is a process boundary:

>>> report = validate_isolated("from-another-site.h5")   # doctest: +SKIP
>>> if report.ok:
...     reader = neural_format.open("from-another-site.h5")

The child caps its address space (RLIMIT_AS, so HDF5's allocation fails cleanly and becomes a
coded error) and CPU time, then runs :func:`neural_format.validation.validate` (or, for
:func:`verify_isolated`, the hash check of ``neural-format verify``), which reads every
attribute, object and record the reader would. A child that runs out of wall-clock time or dies
from a signal yields a report with one NF-F001 error naming what happened; the file should then
be treated as hostile. ``neural-format validate`` and ``verify`` run this way by default
(``--in-process`` opts out).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

DEFAULT_MEMORY_MIB = 2048  # numpy + h5py + pydantic map about 1.2 GiB before any file is opened
DEFAULT_TIMEOUT_S = 300.0
CLI_MEMORY_MIB = 4096  # the command line's default: room for 4 hashing threads and their arenas
CLI_BASE_TIMEOUT_S = 300.0
CLI_TIMEOUT_S_PER_GIB = 120.0  # validation with hashes runs well above 100 MB/s on one core


def input_bytes(path) -> int:
    """Bytes a validation of ``path`` reads: the file, or the files of a collection directory."""
    target = Path(path)
    if target.name == "manifest.json":
        target = target.parent
    try:
        if target.is_dir():
            return sum(entry.stat().st_size for entry in os.scandir(target) if entry.is_file(follow_symlinks=False))
        return target.stat().st_size
    except OSError:
        return 0


def cli_timeout_s(path) -> float:
    """The command line's default wall-clock bound: a base plus a rate per GiB of input."""
    return CLI_BASE_TIMEOUT_S + CLI_TIMEOUT_S_PER_GIB * input_bytes(path) / (1 << 30)


def _failure(path, message: str):
    from .findings import Report, finding
    report = Report(str(path))
    report.add(finding("NF-F001", "/", message))
    report.skipped.append("all checks: the isolated validator did not finish")
    return report


def _run_child(task: str, path, timeout_s: float, memory_mib: int, extra: list[str], progress: bool):
    """``(parsed JSON, None)`` from the child, or ``(None, what went wrong)``."""
    command = [sys.executable, "-m", "neural_format.validation.isolation", str(path), "--task", task,
               "--memory-mib", str(memory_mib), "--cpu-s", str(max(1, int(timeout_s)))] + extra
    if progress:
        command.append("--progress")
    try:
        # stderr is the user's when a progress bar is wanted; the verdict comes back on stdout
        proc = subprocess.run(command, stdout=subprocess.PIPE, stderr=None if progress else subprocess.PIPE,
                              text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return None, (f"{task} did not finish within {timeout_s:g} s; the HDF5 library may be looping on a "
                      "damaged structure (raise the bound with --timeout-s, or use --in-process)")
    if proc.returncode < 0:
        return None, (f"the {task} process died from signal {-proc.returncode} (a crash in the HDF5 library, or "
                      "the CPU limit)")
    try:
        return json.loads(proc.stdout), None
    except ValueError:
        tail = ((proc.stderr or "") or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        return None, f"the {task} process failed (exit {proc.returncode}): {tail[0][:200]}"


def validate_isolated(path, *, timeout_s: float = DEFAULT_TIMEOUT_S, memory_mib: int = DEFAULT_MEMORY_MIB,
                      hashes: bool = True, progress: bool = False):
    """``validate(path)`` in a limited child process; returns its :class:`~neural_format.validation.Report`."""
    from .findings import Finding, Report
    data, failure = _run_child("validate", path, timeout_s, memory_mib, [] if hashes else ["--no-hashes"], progress)
    if failure is not None:
        return _failure(path, failure)
    report = Report(data["path"], records=data["records"], checks_run=data["checks_run"],
                    skipped=data["skipped"], suppressed=data["suppressed"])
    report.findings = [Finding(**f) for f in data["findings"]]
    return report


def verify_isolated(path, *, timeout_s: float = DEFAULT_TIMEOUT_S, memory_mib: int = DEFAULT_MEMORY_MIB,
                    workers=None, file_hashes: bool = True, progress: bool = False) -> dict:
    """``verify_path(path)`` (``neural-format verify``) in a limited child; returns its JSON-able result."""
    extra = [] if file_hashes else ["--no-file-hash"]
    if workers:
        extra += ["--workers", str(int(workers))]
    data, failure = _run_child("verify", path, timeout_s, memory_mib, extra, progress)
    if failure is not None:
        return {"path": str(path), "kind": "unknown", "records": 0, "shards": [], "ok": False,
                "problems": [{"code": "NF-F001", "location": "/", "message": failure, "expected": None,
                              "found": None}]}
    return data


def _child(argv=None) -> int:
    import argparse
    import resource
    parser = argparse.ArgumentParser(prog="python -m neural_format.validation.isolation")
    parser.add_argument("path", type=Path)
    parser.add_argument("--task", choices=["validate", "verify"], default="validate")
    parser.add_argument("--memory-mib", type=int, default=DEFAULT_MEMORY_MIB)
    parser.add_argument("--cpu-s", type=int, default=int(DEFAULT_TIMEOUT_S))
    parser.add_argument("--no-hashes", action="store_true")
    parser.add_argument("--no-file-hash", action="store_true")
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--progress", action="store_true")
    args = parser.parse_args(argv)
    limit = args.memory_mib << 20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    resource.setrlimit(resource.RLIMIT_CPU, (args.cpu_s, args.cpu_s + 5))
    if args.task == "validate":
        from . import validate
        print(validate(args.path, hashes=not args.no_hashes, progress=args.progress).to_json())
        return 0
    from ..collections.verification import total_records, verify_path
    from ..internals.progress import Progress
    with Progress(total_records(args.path) if args.progress else None, "verifying",
                  enabled=True if args.progress else False) as bar:
        result = verify_path(args.path, workers=args.workers, progress=bar, file_hashes=not args.no_file_hash)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(_child())
