"""Validate an untrusted file in a child process with memory, CPU and wall-clock limits.

The SDK's own guards refuse hostile files with coded errors before they allocate or loop, but
damaged structures are parsed inside the HDF5 C library, where Python cannot interrupt it. Two
such defects were found by fuzzing (HDF5 2.0 allocates what a corrupted variable-length string
attribute declares, up to 4 GiB, and loops forever on a global heap collection with a zero-size
free-space object); :mod:`neural_format.heap_guard` now refuses both before HDF5 reads them, but
others cannot be ruled out (docs/safety.md, "Residual risk"). For files from untrusted sources
the remedy is a process boundary:

>>> report = validate_isolated("from-another-site.h5")   # doctest: +SKIP
>>> if report.ok:
...     reader = neural_format.open("from-another-site.h5")

The child caps its address space (RLIMIT_AS, so HDF5's allocation fails cleanly and becomes a
coded error) and CPU time, then runs :func:`neural_format.validation.validate`, which reads every
attribute, object and record the reader would. A child that runs out of wall-clock time or dies
from a signal yields a report with one NF-F001 error naming what happened; the file should then
be treated as hostile.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

DEFAULT_MEMORY_MIB = 2048  # numpy + h5py + pydantic map about 1.2 GiB before any file is opened
DEFAULT_TIMEOUT_S = 300.0


def _failure(path, message: str):
    from .validation.findings import Report, finding
    report = Report(str(path))
    report.add(finding("NF-F001", "/", message))
    report.skipped.append("all checks: the isolated validator did not finish")
    return report


def validate_isolated(path, *, timeout_s: float = DEFAULT_TIMEOUT_S, memory_mib: int = DEFAULT_MEMORY_MIB,
                      hashes: bool = True):
    """``validate(path)`` in a limited child process; returns its :class:`~neural_format.validation.Report`."""
    from .validation.findings import Finding, Report
    command = [sys.executable, "-m", "neural_format.isolation", str(path), "--memory-mib", str(memory_mib),
               "--cpu-s", str(max(1, int(timeout_s)))]
    if not hashes:
        command.append("--no-hashes")
    try:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return _failure(path, f"validation did not finish within {timeout_s:g} s; the HDF5 library may be "
                              "looping on a damaged structure")
    if proc.returncode < 0:
        return _failure(path, f"the validator process died from signal {-proc.returncode} (a crash in the HDF5 "
                              "library, or the CPU limit)")
    try:
        data = json.loads(proc.stdout)
    except ValueError:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        return _failure(path, f"the validator process failed (exit {proc.returncode}): {tail[0][:200]}")
    report = Report(data["path"], records=data["records"], checks_run=data["checks_run"],
                    skipped=data["skipped"], suppressed=data["suppressed"])
    report.findings = [Finding(**f) for f in data["findings"]]
    return report


def _child(argv=None) -> int:
    import argparse
    import resource
    parser = argparse.ArgumentParser(prog="python -m neural_format.isolation")
    parser.add_argument("path", type=Path)
    parser.add_argument("--memory-mib", type=int, default=DEFAULT_MEMORY_MIB)
    parser.add_argument("--cpu-s", type=int, default=int(DEFAULT_TIMEOUT_S))
    parser.add_argument("--no-hashes", action="store_true")
    args = parser.parse_args(argv)
    limit = args.memory_mib << 20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    resource.setrlimit(resource.RLIMIT_CPU, (args.cpu_s, args.cpu_s + 5))
    from .validation import validate
    print(validate(args.path, hashes=not args.no_hashes, progress=False).to_json())
    return 0


if __name__ == "__main__":
    sys.exit(_child())
