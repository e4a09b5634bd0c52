"""Side-by-side benchmark: neural-format HDF5 collection vs torch.save of torch_geometric Data.

    .venv/bin/python benchmarks/bench_format.py                # N = 10,000 (about 1.5 GB per file)
    .venv/bin/python benchmarks/bench_format.py --records 500  # a quick run

Both containers hold the same graphs: per record 20 patch rows and 5-30 entity rows of 1024-d
float32 features (the reference projects every row to one width), the patch grid edges, the KG
relations, the bridge edge and one label. The PyG side is one ``Data(x=patch rows then entity
rows, edge_index, y)`` per record in a list saved with ``torch.save`` and loaded with
``torch.load(weights_only=True)`` (PyG's classes allow-listed; never unsafe unpickling).

Timings are wall-clock from ``time.perf_counter``. Both sides start from objects built in memory
(a list of Data, a list of Records). Writes (torch.save, float32, float16) and reads (torch.load,
read_all, validation) each run one untimed warm-up round and then ``--repeats`` interleaved
rounds; the best and the median of each are reported. Files are read warm (from the page cache)
on both sides; every write goes to a fresh path and is fsynced on both sides. The read phase runs
in a fresh interpreter (``--reads-only``), so that memory freed by the write phase does not favour
whichever read happens to reuse it. Results go to
``--json`` and to a markdown table in ``--markdown`` together with the machine description.
"""
from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import neural_format as nf  # noqa: E402
from neural_format.format.metadata import (CollectionMeta, FusionRule, ModelRef, Provenance, PruningPolicy,  # noqa: E402
                                    SoftwareRef, TopKPercent)
from neural_format.collections.synthetic import ENTITY_TYPES, RELATION_TYPES, WORDS, grid_edges  # noqa: E402

GOALS = {
    "read_all_speedup": ("read-all: torch.load time / neural-format read_all time", ">= 4"),
    "random_record_ms": ("median time to read one random record, file open (ms)", "<= 1"),
    "write_ratio": ("write time: neural-format / torch.save", "<= 1"),
    "size_ratio_float32": ("file size float32: neural-format / torch.save", "<= 1.02"),
    "size_ratio_float16": ("file size float16: neural-format / torch.save (float32)", "<= 0.52"),
    "validate_ratio": ("full validation incl. hashes / read_all time", "<= 2"),
}


def meta_for(dtype: str, dim: int) -> CollectionMeta:
    return CollectionMeta(
        spatial_axes=2, patch_feature_dim=dim, patch_feature_dtype=dtype, entity_feature_dim=dim,
        entity_feature_dtype=dtype, entity_types=ENTITY_TYPES, relation_types=RELATION_TYPES,
        label_names=["pneumonia"],
        provenance=Provenance(
            builder=SoftwareRef(name="benchmarks/bench_format.py", version=nf.__version__),
            sdk=nf.sdk_ref(), created=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc),
            encoder=ModelRef(model_id="synthetic-encoder", weights_sha256="0" * 64),
            pruning=PruningPolicy(rule=TopKPercent(percent=10.0)), fusion=FusionRule()))


def make_graphs(n: int, patches: int, entities: tuple[int, int], dim: int, seed: int):
    """Per record: x (P + M, dim) float32 and the record's index arrays."""
    rng = np.random.default_rng(seed)
    geometry = nf.Geometry.for_image((384, 384), (32, 32))
    cells = int(np.prod(geometry.grid_shape))
    graphs = []
    for i in range(n):
        M = int(rng.integers(entities[0], entities[1] + 1))
        flat = rng.choice(cells, size=patches, replace=False)
        positions = np.stack(np.unravel_index(flat, geometry.grid_shape), axis=1).astype(np.int32)
        R = int(rng.integers(0, M + 1))
        graphs.append(dict(
            x=rng.standard_normal((patches + M, dim), dtype=np.float32), P=patches, M=M,
            scores=rng.random(patches, dtype=np.float32), positions=positions, edges=grid_edges(positions),
            relations=rng.integers(0, M, size=(R, 2)).astype(np.int32),
            relation_types=rng.integers(0, len(RELATION_TYPES), R).astype(np.int16),
            entity_types=rng.integers(0, len(ENTITY_TYPES), M).astype(np.int16),
            assertions=rng.integers(0, 3, M).astype(np.int8),
            text=[str(w) for w in rng.choice(WORDS, size=M)],
            bridge=(int(rng.integers(patches)), int(rng.integers(M))), label=float(rng.integers(0, 2)),
            geometry=geometry))
    return graphs


def to_record(i: int, g: dict, dtype: str) -> nf.Record:
    x = g["x"] if dtype == "float32" else g["x"].astype(np.float16)
    return nf.Record(
        record_id=f"study-{i:06d}", patch_features=x[:g["P"]], patch_scores=g["scores"],
        patch_positions=g["positions"], patch_edges=g["edges"], entity_types=g["entity_types"],
        entity_assertions=g["assertions"], entity_text=g["text"], entity_features=x[g["P"]:],
        relations=g["relations"], relation_types=g["relation_types"], bridge=g["bridge"],
        labels=np.array([g["label"]], np.float32), geometry=g["geometry"])


def to_pyg(g: dict):
    import torch
    from torch_geometric.data import Data
    P = g["P"]
    bridge = np.array([[g["bridge"][0], P + g["bridge"][1]]], np.int64)
    edge_index = np.concatenate([g["edges"].astype(np.int64), g["relations"].astype(np.int64) + P, bridge]).T
    return Data(x=torch.from_numpy(g["x"]), edge_index=torch.from_numpy(np.ascontiguousarray(edge_index)),
                y=torch.tensor([int(g["label"])]))


def timed(func, repeats: int = 1):
    best, result = float("inf"), None
    for _ in range(repeats):
        gc.collect()
        start = time.perf_counter()
        result = func()
        best = min(best, time.perf_counter() - start)
        if _ < repeats - 1:
            del result
            result = None
    return best, result


def torch_save(path: Path, data_list) -> None:
    import torch
    with open(path, "wb") as handle:
        torch.save(data_list, handle)
        handle.flush()
        os.fsync(handle.fileno())  # the neural-format writer fsyncs too


def torch_load(path: Path):
    import torch
    from torch_geometric.data.data import DataEdgeAttr, DataTensorAttr
    from torch_geometric.data.storage import GlobalStorage
    from torch_geometric.data import Data
    with torch.serialization.safe_globals([Data, DataEdgeAttr, DataTensorAttr, GlobalStorage]):
        return torch.load(path, weights_only=True)


def machine() -> dict:
    import h5py
    import torch
    cpu = "unknown"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError):
        mem = float("nan")
    return {"platform": platform.platform(), "cpu": cpu, "cores": os.cpu_count(), "ram_gib": round(mem, 1),
            "python": platform.python_version(), "numpy": np.__version__, "h5py": h5py.version.version,
            "hdf5": h5py.version.hdf5_version, "torch": torch.__version__}


def _unlink(*paths: Path) -> None:
    for path in paths:
        path.unlink(missing_ok=True)


def run(args) -> dict:
    import torch  # noqa: F401 (imported before timing so its import cost is not measured)
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="bench_format_"))
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"generating {args.records} graphs ...", flush=True)
    graphs = make_graphs(args.records, args.patches, tuple(args.entities), args.dim, args.seed)
    out: dict = {"records": args.records, "patches_per_record": args.patches, "entities_per_record": args.entities,
                 "feature_dim": args.dim, "repeats": args.repeats, "machine": machine(), "times_s": {},
                 "median_times_s": {}, "bytes": {}}
    t, med, b = out["times_s"], out["median_times_s"], out["bytes"]

    # both sides get their in-memory objects built before timing: a list of Data for torch.save,
    # a list of Records for the writer
    data_list = [to_pyg(g) for g in graphs]
    records = {dtype: [to_record(i, g, dtype) for i, g in enumerate(graphs)] for dtype in ("float32", "float16")}
    pyg_path = workdir / "graphs.pt"
    paths = {dtype: workdir / f"graphs-{dtype}.h5" for dtype in records}
    meta = {dtype: meta_for(dtype, args.dim) for dtype in records}

    def save():
        torch_save(pyg_path, data_list)

    def write(dtype):
        return lambda: nf.write_collection(paths[dtype], meta[dtype], records[dtype])

    # The machine is a VM: the first touch of memory it has not used before costs far more than
    # the work itself, whichever side happens to run first. One untimed warm-up of every step,
    # then --repeats interleaved rounds; the best and the median of each are kept.
    writes = {"torch_save": save, "write_float32": write("float32"), "write_float16": write("float16")}
    samples: dict[str, list[float]] = {name: [] for name in writes}
    for round_ in range(args.repeats + 1):
        for name, step in writes.items():
            _unlink(pyg_path if name == "torch_save" else paths[name.split("_")[1]])
            gc.collect()
            start = time.perf_counter()
            step()
            if round_:
                samples[name].append(time.perf_counter() - start)
        if round_:
            print(f"write round {round_}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in samples.items()), flush=True)
    for name, values in samples.items():
        t[name], med[name] = min(values), statistics.median(values)
    b["torch_save"] = pyg_path.stat().st_size
    for dtype, path in paths.items():
        b[dtype] = path.stat().st_size
    # emptied rather than deleted: the timed closures above still name them
    data_list.clear()
    records.clear()
    del graphs
    gc.collect()

    # The reads run in a fresh interpreter: the write phase leaves gigabytes of freed memory in
    # this process's allocator, and which side then gets recycled pages and which gets fresh
    # ones (on a VM, several times slower to fault in) would depend on the order of the steps.
    command = [sys.executable, str(Path(__file__).resolve()), "--reads-only", str(workdir),
               "--records", str(args.records), "--repeats", str(args.repeats),
               "--random-reads", str(args.random_reads), "--seed", str(args.seed)]
    reads = json.loads(subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True).stdout.splitlines()[-1])
    t.update(reads["times_s"])
    med.update(reads["median_times_s"])
    out["validation_errors"] = reads["validation_errors"]

    def ratios(times):
        return {
            "read_all_speedup": times["torch_load"] / times["read_all"],
            "random_record_ms": t["random_record_median"] * 1e3,
            "write_ratio": times["write_float32"] / times["torch_save"],
            "size_ratio_float32": b["float32"] / b["torch_save"],
            "size_ratio_float16": b["float16"] / b["torch_save"],
            "validate_ratio": times["validate"] / times["read_all"],
        }

    out["ratios"] = ratios(t)
    out["median_ratios"] = ratios(med)
    if not args.keep:
        _unlink(pyg_path, *paths.values())
    return out


def run_reads(args) -> dict:
    """The read phase on the files of a previous write phase (``--reads-only WORKDIR``)."""
    import torch  # noqa: F401
    workdir = Path(args.reads_only)
    pyg_path, f32 = workdir / "graphs.pt", workdir / "graphs-float32.h5"
    t: dict = {}
    med: dict = {}

    def read_all():
        with nf.open(f32) as reader:
            return reader.read_all()

    reads = {"torch_load": lambda: torch_load(pyg_path), "read_all": read_all, "validate": lambda: nf.validate(f32)}
    samples: dict[str, list[float]] = {name: [] for name in reads}
    report = None
    for round_ in range(args.repeats + 1):
        for name, step in reads.items():
            gc.collect()
            start = time.perf_counter()
            result = step()
            seconds = time.perf_counter() - start
            if name == "validate":
                report = result
            else:
                assert len(result) == args.records
            del result
            if round_:
                samples[name].append(seconds)
        if round_:
            print(f"read round {round_}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in samples.items()),
                  file=sys.stderr, flush=True)
    for name, values in samples.items():
        t[name], med[name] = min(values), statistics.median(values)

    rng = np.random.default_rng(args.seed + 1)
    with nf.open(f32) as reader:
        reader[0]
        latencies = []
        for i in rng.integers(0, len(reader), size=args.random_reads):
            start = time.perf_counter()
            reader[int(i)]
            latencies.append(time.perf_counter() - start)
    t["random_record_median"] = med["random_record_median"] = statistics.median(latencies)
    t["random_record_p90"] = med["random_record_p90"] = float(np.percentile(latencies, 90))
    return {"times_s": t, "median_times_s": med, "validation_errors": len(report.errors)}


def met(key: str, value: float) -> bool:
    op, bound = GOALS[key][1].split()
    return value >= float(bound) if op == ">=" else value <= float(bound)


def markdown(result: dict, command: str) -> str:
    m, t, b = result["machine"], result["times_s"], result["bytes"]
    lines = [
        "# Benchmark: neural-format vs torch.save of PyG Data lists",
        "",
        f"Generated by `{command}` on {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC.",
        "",
        f"Workload: {result['records']:,} records, {result['patches_per_record']} patches and "
        f"{result['entities_per_record'][0]}-{result['entities_per_record'][1]} entities per record, "
        f"{result['feature_dim']}-d features for both patch and entity rows.",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['ram_gib']} GiB RAM, {m['platform']}; Python {m['python']}, "
        f"numpy {m['numpy']}, h5py {m['h5py']} (HDF5 {m['hdf5']}), torch {m['torch']}. The cores were shared "
        "with other jobs during the run, so absolute times are noisy; both sides ran in the same process "
        "(writes in one, reads in a fresh one), interleaved, with warm page cache.",
        "",
        f"Each timed step ran once untimed (warm-up), then in {result['repeats']} interleaved rounds; "
        "'best' compares the best round of each side, 'median' the median rounds.",
        "",
        "| measure | best | median | goal | met (best / median) |",
        "|---|---|---|---|---|",
    ]
    for key, (label, goal) in GOALS.items():
        value, typical = result["ratios"][key], result["median_ratios"][key]
        lines.append(f"| {label} | {value:.3f} | {typical:.3f} | {goal} | "
                     f"{'yes' if met(key, value) else 'NO'} / {'yes' if met(key, typical) else 'NO'} |")
    lines += ["", "| raw figure | best | median |", "|---|---|---|"]
    lines += [f"| time {k} | {v:.3f} s | {result['median_times_s'].get(k, v):.3f} s |" for k, v in t.items()]
    lines += [f"| bytes {k} | {v:,} | |" for k, v in b.items()]
    lines.append(f"| validation errors on the written file | {result['validation_errors']} | |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--patches", type=int, default=20)
    parser.add_argument("--entities", type=int, nargs=2, default=(5, 30))
    parser.add_argument("--dim", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=3,
                        help="timed rounds of interleaved writes and reads, after one untimed warm-up round")
    parser.add_argument("--random-reads", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", help="where the files are written (default: a new temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the written files")
    parser.add_argument("--json", default=str(ROOT / "docs" / "benchmarks-format.json"))
    parser.add_argument("--markdown", default=str(ROOT / "docs" / "benchmarks-format.md"))
    parser.add_argument("--reads-only", metavar="WORKDIR", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.reads_only:
        print(json.dumps(run_reads(args)))
        return 0
    result = run(args)
    command = "python benchmarks/bench_format.py" + (f" --records {args.records}" if args.records != 10_000 else "")
    Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    Path(args.markdown).write_text(markdown(result, command))
    print(markdown(result, command))
    return 0


if __name__ == "__main__":
    sys.exit(main())
