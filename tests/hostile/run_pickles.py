"""Convert every file of a hostile pickle corpus with ``convert_pickle``, under resource limits.

    python tests/hostile/run_pickles.py OUT_DIR [--as-mib 2048] [--cpu-s 60] FILE...

Like run_corpus.py: limits first, then ``import neural_format`` (never torch). One JSON line per
file, ``{"phase": "start"}`` before it and then ``{"phase": "done", "outcome": "ok" | "<code>" |
"uncaught <Type>: ..."}``.
"""
from __future__ import annotations

import argparse
import json
import resource
import sys
import time
import warnings

from peak_memory import peak_rss_mib  # sibling module: scripts run with their folder on sys.path
from pathlib import Path



def main(argv=None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("files", nargs="+")
    parser.add_argument("--as-mib", type=int, default=2048)
    parser.add_argument("--cpu-s", type=int, default=60)
    args = parser.parse_args(argv)
    resource.setrlimit(resource.RLIMIT_AS, (args.as_mib << 20, args.as_mib << 20))
    resource.setrlimit(resource.RLIMIT_CPU, (args.cpu_s, args.cpu_s + 5))
    import neural_format as nf
    args.out.mkdir(parents=True, exist_ok=True)
    for path in args.files:
        print(json.dumps({"file": path, "phase": "start"}), flush=True)
        started = time.perf_counter()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                nf.convert_pickle(path, args.out / (Path(path).stem + ".h5"), unfused="visual", overwrite=True,
                                  progress=False)
            outcome = "ok"
        except nf.NeuralFormatError as exc:
            outcome = exc.code
        except Exception as exc:
            outcome = f"uncaught {type(exc).__name__}: {str(exc)[:200]}"
        print(json.dumps({"file": path, "phase": "done", "outcome": outcome,
                          "seconds": round(time.perf_counter() - started, 3),
                          "rss_mib": peak_rss_mib()}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
