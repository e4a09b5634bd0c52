"""Open hostile files through every kind of source the SDK accepts, under resource limits.

    python tests/hostile/run_sources.py [--as-mib 2048] [--cpu-s 60] FILE...

For each file and each source kind (a path, ``io.BytesIO``, an open file object,
``open_collection([BytesIO])``, a ``memory://`` URL through fsspec, and ``validate`` of a path,
a ``BytesIO`` and a ``memory://`` URL) it prints one JSON line: ``{"file", "source", "outcome", "seconds"}`` where
``outcome`` is the error code raised (or, for ``validate``, the sorted error clause IDs), ``"ok"``,
or ``"uncaught <Type>"``. A ``{"phase": "start"}`` line comes first, so a crash or hang names its
culprit. Limits are set before ``neural_format`` is imported, like run_corpus.py.
"""
from __future__ import annotations

import argparse
import io
import json
import sys
import time
import warnings

from run_corpus import limit  # sibling module: scripts run with their folder on sys.path


def _read_all(reader) -> None:
    reader.read_all()
    reader.record_ids()


def sources(path: str):
    import neural_format as nf
    from neural_format.validation import validate

    def by_path():
        with nf.open(path) as reader:
            _read_all(reader)

    def by_bytesio():
        with nf.open(io.BytesIO(open(path, "rb").read())) as reader:
            _read_all(reader)

    def by_file_object():
        with open(path, "rb") as handle, nf.open(handle) as reader:
            _read_all(reader)

    def by_collection_of_bytesio():
        with nf.open_collection([io.BytesIO(open(path, "rb").read())]) as collection:
            collection.read_all()

    def by_memory_url():
        import fsspec
        url = f"memory://hostile/{abs(hash(path))}.h5"
        with fsspec.open(url, "wb") as out:
            out.write(open(path, "rb").read())
        with nf.open_collection(url) as collection:
            collection.read_all()

    def validate_path():
        return validate(path, progress=False)

    def validate_bytesio():
        return validate(io.BytesIO(open(path, "rb").read()), progress=False)

    def validate_memory_url():
        import fsspec
        url = f"memory://hostile-validate/{abs(hash(path))}.h5"
        with fsspec.open(url, "wb") as out:
            out.write(open(path, "rb").read())
        return validate(url, progress=False)

    return {"path": by_path, "BytesIO": by_bytesio, "file object": by_file_object,
            "open_collection([BytesIO])": by_collection_of_bytesio, "memory:// URL": by_memory_url,
            "validate(path)": validate_path, "validate(BytesIO)": validate_bytesio,
            "validate(memory:// URL)": validate_memory_url}


def outcome(action) -> object:
    import neural_format as nf
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = action()
        if result is not None:  # a validation report
            return sorted({f.code for f in result.findings if f.severity == "error"})
        return "ok"
    except nf.NeuralFormatError as exc:
        return exc.code
    except Exception as exc:
        return f"uncaught {type(exc).__name__}: {str(exc)[:200]}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("files", nargs="+")
    parser.add_argument("--as-mib", type=int, default=2048)
    parser.add_argument("--cpu-s", type=int, default=60)
    args = parser.parse_args(argv)
    limit(args.as_mib, args.cpu_s)
    import neural_format  # noqa: F401  (imported after the limits)
    for path in args.files:
        for name, action in sources(path).items():
            print(json.dumps({"file": path, "source": name, "phase": "start"}), flush=True)
            started = time.perf_counter()
            result = outcome(action)
            print(json.dumps({"file": path, "source": name, "phase": "done", "outcome": result,
                              "seconds": round(time.perf_counter() - started, 3)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
