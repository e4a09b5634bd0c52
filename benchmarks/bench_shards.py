"""Shard reading speed: every record of a K-shard collection vs one file of the same records.

Writes N synthetic records once to a single file, splits it into K shards with
``neural_format.cli.split_cmd.split``, then times, side by side in one run and interleaved
(single, sharded, single, sharded, ...), three ways of reading every record:

* ``iterate``: ``for record in reader`` (lazy per-record reads)
* ``read_all``: one bulk read per column (per shard)
* ``batches``: ``read_range`` in batches of 1024 records (what merge/split/training loaders use)

and reports the median time of each and the ratio sharded / single (goal: <= 1.1). Both files are
read warm (in the page cache), so the ratio measures the SDK's overhead, not the disk.

    .venv/bin/python benchmarks/bench_shards.py --records 40000 --shards 4 --repeats 3
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from neural_format import open as open_file
from neural_format.cli.split_cmd import split
from neural_format.collection import open_collection
from neural_format.synthetic import synthetic_meta, synthetic_records
from neural_format.writer import CollectionWriter


def build(directory: Path, n: int, shards: int, feature_dim: int) -> tuple[Path, Path, dict]:
    meta = synthetic_meta(feature_dim=feature_dim)
    single = directory / "single.h5"
    t0 = time.perf_counter()
    with CollectionWriter(single, meta) as writer:
        writer.extend(synthetic_records(n, meta, seed=0, patches=(4, 24), entities=(0, 10)))
    t1 = time.perf_counter()
    split(single, directory / "sharded", shards=shards)
    t2 = time.perf_counter()
    sharded_bytes = sum(p.stat().st_size for p in (directory / "sharded").glob("*.h5"))
    return single, directory / "sharded", {
        "write_single_s": round(t1 - t0, 2), "split_s": round(t2 - t1, 2),
        "single_bytes": single.stat().st_size, "sharded_bytes": sharded_bytes}


def _iterate(reader) -> int:
    count = 0
    for record in reader:
        count += record.num_patches >= 0
    return count


def _read_all(reader) -> int:
    return len(reader.read_all())


def _batches(reader, size: int = 1024) -> int:
    return sum(len(reader.read_range(a, min(len(reader), a + size))) for a in range(0, len(reader), size))


MODES = {"iterate": _iterate, "read_all": _read_all, "batches": _batches}


def timed(opener, source, mode) -> float:
    start = time.perf_counter()
    with opener(source) as reader:  # opening is part of the cost
        count = MODES[mode](reader)
        expected = len(reader)
    elapsed = time.perf_counter() - start
    assert count == expected, "not every record was read"
    return elapsed


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=40_000)
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--feature-dim", type=int, default=64)
    parser.add_argument("--modes", default="iterate,read_all,batches")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    result = {"records": args.records, "shards": args.shards, "repeats": args.repeats,
              "feature_dim": args.feature_dim, "modes": {}}
    with tempfile.TemporaryDirectory(prefix="bench-shards-") as tmp:
        single, sharded, info = build(Path(tmp), args.records, args.shards, args.feature_dim)
        result.update(info)
        for mode in args.modes.split(","):
            times = {"single": [], "sharded": []}
            for _ in range(args.repeats):  # interleaved so that drift in machine load hits both
                times["single"].append(timed(open_file, single, mode))
                times["sharded"].append(timed(open_collection, sharded, mode))
            single_s, sharded_s = statistics.median(times["single"]), statistics.median(times["sharded"])
            result["modes"][mode] = {
                "single_s": round(single_s, 3), "sharded_s": round(sharded_s, 3),
                "ratio": round(sharded_s / single_s, 3),
                "records_per_s_single": round(args.records / single_s),
                "records_per_s_sharded": round(args.records / sharded_s),
                "all_single_s": [round(t, 3) for t in times["single"]],
                "all_sharded_s": [round(t, 3) for t in times["sharded"]]}
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{args.records:,} records, {args.shards} shards, median of {args.repeats} interleaved runs; "
              f"single file {result['single_bytes']:,} B, shards {result['sharded_bytes']:,} B")
        print(f"{'mode':<10}{'single s':>10}{'sharded s':>11}{'ratio':>8}{'records/s (sharded)':>22}")
        for mode, m in result["modes"].items():
            print(f"{mode:<10}{m['single_s']:>10.3f}{m['sharded_s']:>11.3f}{m['ratio']:>8.3f}"
                  f"{m['records_per_s_sharded']:>22,}")
    return result


if __name__ == "__main__":
    main()
