"""Run one SDK call on a hostile input under resource limits; print its outcome as JSON.

    python tests/hostile/run_action.py ACTION TARGET [--as-mib 2048] [--cpu-s 60]

ACTION is one of :data:`ACTIONS`. Limits are set before ``neural_format`` is imported (like
run_corpus.py). The outcome is ``{"outcome": <code | "ok" | "uncaught ...">, "codes": [...],
"seconds": s}``: ``codes`` are the error clause IDs of a validation report or the problem codes of
a verify result.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import warnings

from run_corpus import limit  # sibling module: scripts run with their folder on sys.path


def _open(target):
    import neural_format as nf
    with nf.open(target) as reader:
        reader.read_all()


def _open_collection(target):
    import neural_format as nf
    with nf.open_collection(target) as collection:
        len(collection)
        collection.read_all()


def _validate(target):
    from neural_format.validation import validate
    report = validate(target, progress=False)
    return sorted({f.code for f in report.findings if f.severity == "error"})


def _verify(target):
    from neural_format.cli.verify_cmd import verify_path
    return sorted({p["code"] for p in verify_path(target)["problems"]})


ACTIONS = {"open": _open, "open_collection": _open_collection, "validate": _validate, "verify": _verify}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("action", choices=sorted(ACTIONS))
    parser.add_argument("target")
    parser.add_argument("--as-mib", type=int, default=2048)
    parser.add_argument("--cpu-s", type=int, default=60)
    args = parser.parse_args(argv)
    limit(args.as_mib, args.cpu_s)
    import neural_format as nf
    started = time.perf_counter()
    codes = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            codes = ACTIONS[args.action](args.target)
        outcome = "ok"
    except nf.NeuralFormatError as exc:
        outcome = exc.code
    except Exception as exc:
        outcome = f"uncaught {type(exc).__name__}: {str(exc)[:200]}"
    print(json.dumps({"outcome": outcome, "codes": codes, "seconds": round(time.perf_counter() - started, 3)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
