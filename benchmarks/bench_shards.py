"""Shard reading speed: every record of a K-shard collection vs one file of the same records.

Writes N synthetic records once to a single file, splits it into K shards with
``neural_format.cli.split_cmd.split``, then times, side by side in one run and interleaved
(single, sharded, single, sharded, ...), three ways of reading every record:

* ``iterate``: ``for record in reader`` (lazy per-record reads)
* ``read_all``: one bulk read per column (per shard)
* ``batches``: ``read_range`` in batches of 1024 records (what merge/split/training loaders use)
* ``open``: only open the file, or every shard (the fixed cost per shard)

and reports, for wall-clock time and for this process's CPU time, the median of each and the
ratios sharded / single of the medians and of the minima (goal: <= 1.1). Both are read warm (in
the page cache), so the ratio measures the SDK's overhead, not the disk. On a shared machine the
CPU-time ratio is the steadier one: other processes stretch wall time, not this one's CPU time.

    .venv/bin/python benchmarks/bench_shards.py --records 40000 --shards 4 --repeats 3
"""
from __future__ import annotations

import argparse
import gc
import json
import statistics
import tempfile
import time
from pathlib import Path

from neural_format import open as open_file
from neural_format.cli.split_cmd import split
from neural_format.collections.collection import open_collection
from neural_format.collections.synthetic import synthetic_meta, synthetic_records
from neural_format.files.writer import CollectionWriter


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


def _open(reader) -> int:
    """Only open the file, or every shard: the fixed cost a collection adds per shard."""
    for k in range(getattr(reader, "shard_count", 0)):
        reader.shard(k)
    return len(reader)


MODES = {"iterate": _iterate, "read_all": _read_all, "batches": _batches, "open": _open}


def timed(opener, source, mode) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) to open ``source`` and read every record."""
    gc.collect()  # start each run from the same garbage-collector state
    start, cpu = time.perf_counter(), time.process_time()
    with opener(source) as reader:  # opening is part of the cost
        count = MODES[mode](reader)
        expected = len(reader)
    elapsed, cpu_elapsed = time.perf_counter() - start, time.process_time() - cpu
    assert count == expected, "not every record was read"
    return elapsed, cpu_elapsed


# record shapes of a NEURAL-like build, for bytes on disk (docs/scale.md): Swin-B last stage at
# 384 px is 12 x 12 = 144 tokens of width 1024; top 10 % kept = 14-15 patches; ~8 report entities
# with 384-wide sentence embeddings (all-MiniLM-L6-v2); the report text is stored too.
SIZE_CONFIGS = {
    "swinB-f16-top10-ent384": dict(feature_dim=1024, dtype="float16", entity_feature_dim=384, patches=(14, 15)),
    "swinB-f32-top10-ent384": dict(feature_dim=1024, dtype="float32", entity_feature_dim=384, patches=(14, 15)),
    "swinB-f16-keepall-ent384": dict(feature_dim=1024, dtype="float16", entity_feature_dim=384, patches=(144, 144)),
}


def bytes_per_record(directory: Path, n: int = 2000) -> dict:
    """Measured file bytes per record for each of :data:`SIZE_CONFIGS`, without and with gzip."""
    out = {}
    for name, cfg in SIZE_CONFIGS.items():
        meta = synthetic_meta(feature_dim=cfg["feature_dim"], dtype=cfg["dtype"],
                              entity_feature_dim=cfg["entity_feature_dim"])
        for compression in (None, "gzip"):
            path = directory / f"{name}-{compression}.h5"
            with CollectionWriter(path, meta, compression=compression) as writer:
                writer.extend(synthetic_records(n, meta, seed=0, patches=cfg["patches"], entities=(6, 10)))
            out[f"{name}{'-gzip' if compression else ''}"] = round(path.stat().st_size / n)
            path.unlink()
    return out


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=40_000)
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--feature-dim", type=int, default=64)
    parser.add_argument("--modes", default="iterate,read_all,batches")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--bytes-per-record", action="store_true",
                        help="only measure file bytes per record of NEURAL-like record shapes")
    args = parser.parse_args(argv)
    if args.bytes_per_record:
        with tempfile.TemporaryDirectory(prefix="bench-bytes-") as tmp:
            sizes = bytes_per_record(Path(tmp))
        print(json.dumps(sizes, indent=2))
        return sizes
    result = {"records": args.records, "shards": args.shards, "repeats": args.repeats,
              "feature_dim": args.feature_dim, "modes": {}}
    with tempfile.TemporaryDirectory(prefix="bench-shards-") as tmp:
        single, sharded, info = build(Path(tmp), args.records, args.shards, args.feature_dim)
        result.update(info)
        for mode in args.modes.split(","):
            runs = {"single": [], "sharded": []}
            for _ in range(args.repeats):  # interleaved so that drift in machine load hits both
                runs["single"].append(timed(open_file, single, mode))
                runs["sharded"].append(timed(open_collection, sharded, mode))
            entry = {}
            for clock, k in (("wall", 0), ("cpu", 1)):
                one = [r[k] for r in runs["single"]]
                many = [r[k] for r in runs["sharded"]]
                entry[clock] = {
                    "single_median_s": round(statistics.median(one), 3),
                    "sharded_median_s": round(statistics.median(many), 3),
                    "ratio_median": round(statistics.median(many) / statistics.median(one), 3),
                    "ratio_min": round(min(many) / min(one), 3),
                    "single_all_s": [round(t, 3) for t in one], "sharded_all_s": [round(t, 3) for t in many]}
            entry["records_per_s_sharded_cpu"] = round(args.records / entry["cpu"]["sharded_median_s"])
            result["modes"][mode] = entry
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{args.records:,} records, {args.shards} shards, median of {args.repeats} interleaved runs; "
              f"single file {result['single_bytes']:,} B, shards {result['sharded_bytes']:,} B")
        print(f"{'mode':<10}{'clock':<6}{'single s':>10}{'sharded s':>11}{'ratio (median)':>16}{'ratio (min)':>13}")
        for mode, m in result["modes"].items():
            for clock in ("wall", "cpu"):
                c = m[clock]
                print(f"{mode:<10}{clock:<6}{c['single_median_s']:>10.3f}{c['sharded_median_s']:>11.3f}"
                      f"{c['ratio_median']:>16.3f}{c['ratio_min']:>13.3f}")
    return result


if __name__ == "__main__":
    main()
