"""Open every file of a hostile corpus with the reader and the validator, under resource limits.

    python tests/hostile/run_corpus.py CORPUS_DIR [--as-mib 2048] [--cpu-s 60] FILE...

Meant to run in a subprocess: it caps its own address space (RLIMIT_AS) and CPU time
(RLIMIT_CPU) before importing anything but the standard library and ``neural_format``, so a
size bomb shows up as a MemoryError (reported, never survived silently) and a spin as SIGXCPU.
It prints one JSON line per file, ``{"file", "phase": "start"}`` before touching it (so that a
crash names its culprit) and then the outcome:

* ``reader``: ``"ok"`` if opening and reading every record (bulk and one by one) succeeded, else
  ``"<code>"`` of the NeuralFormatError raised, else ``"uncaught <Type>: <message>"``;
* ``validator``: the sorted error-severity clause IDs of ``neural_format.validate(path)``, or
  ``"uncaught <Type>: ..."``;
* ``rss_mib``: the process's peak resident size after the file, for the allocation check.
"""
from __future__ import annotations

import argparse
import json
import resource
import sys
import time
import warnings

from peak_memory import peak_rss_mib  # sibling module: scripts run with their folder on sys.path



def limit(as_mib: int, cpu_s: int) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (as_mib << 20, as_mib << 20))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s + 5))


def read_everything(path: str) -> str:
    import neural_format as nf
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with nf.open(path) as reader:
                reader.read_all()
                for i in range(len(reader)):
                    reader[i]
                reader.record_ids()
        return "ok"
    except nf.NeuralFormatError as exc:
        return exc.code
    except Exception as exc:  # anything else is a defect the test reports
        return f"uncaught {type(exc).__name__}: {str(exc)[:200]}"


def validate(path: str):
    try:
        from neural_format.validation import validate as validate_fn
    except ImportError as exc:
        return f"unavailable: {exc}"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            report = validate_fn(path)
        return sorted({f.code for f in report.findings if f.severity == "error"})
    except Exception as exc:
        return f"uncaught {type(exc).__name__}: {str(exc)[:200]}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("files", nargs="+")
    parser.add_argument("--as-mib", type=int, default=2048)
    parser.add_argument("--cpu-s", type=int, default=60)
    parser.add_argument("--no-validator", action="store_true")
    args = parser.parse_args(argv)
    limit(args.as_mib, args.cpu_s)
    import neural_format  # noqa: F401  (imported after the limits, like a user's process would)
    for path in args.files:
        print(json.dumps({"file": path, "phase": "start"}), flush=True)
        started = time.perf_counter()
        outcome = {"file": path, "phase": "done", "reader": read_everything(path)}
        if not args.no_validator:
            outcome["validator"] = validate(path)
        outcome["seconds"] = round(time.perf_counter() - started, 3)
        outcome["rss_mib"] = peak_rss_mib()
        print(json.dumps(outcome), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
