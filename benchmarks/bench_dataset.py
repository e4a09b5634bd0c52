"""A full epoch of training input from the file vs PyG's DataLoader over an in-memory Data list.

Three sides, timed interleaved in one process for each (num_workers, shuffle) setting:

* ``memory``: ``torch_geometric.loader.DataLoader`` over the graphs held as a list of ``Data``
  (``record.to_pyg`` of every record, built before timing);
* ``dataset``: the same DataLoader over ``CollectionDataset`` (per-record ``Data`` read from the file);
* ``loader``: ``GraphBatchLoader`` (collated ``Batch`` built straight from the file's columns).

Workloads: ``synthetic`` (default 10,000 records, NEURAL-like sizes: 0-30 patches, 0-12 entities,
4-neighbour patch edges, a bridge; ``--dim`` features) and ``phantom`` (a collection made by the
builders from chest phantoms: ``neural_models.phantom_study.build_phantom_collection``, every patch
of the 8 x 8 grid kept, KG without entity embeddings) or ``--collection PATH`` (any file or
collection directory). Prints seconds per pass (median of the repeats) and the speed-up of the
loader over the in-memory list (memory s / loader s; >= 2 is the goal), from the medians and the
fastest passes, plus ``dataset`` / memory as a ratio (1.00 = as fast). Before the in-memory list
exists, the loader's memory is probed over one pass: the peak growth of this process's anonymous
memory (RssAnon, sampled after every batch) and of its file-backed resident pages (RssFile: the
page cache the map touches, which the kernel can drop), next to the in-memory list's size.
Objects alive before timing are frozen out of the cyclic GC's reach (``gc.freeze``) so that no
side pays for traversing the in-memory list.

    .venv/bin/python benchmarks/bench_dataset.py [--workload synthetic|phantom] [--records 10000]
        [--dim 256] [--repeats 5] [--workers 0 2] [--shuffle both]
"""
from __future__ import annotations

import argparse
import gc
import os
import statistics
import tempfile
import time
from pathlib import Path


def one_pass(loader) -> float:
    start = time.perf_counter()
    nodes = 0
    for batch in loader:
        nodes += batch.num_nodes
    return time.perf_counter() - start


def rss_kib() -> dict:
    """RssAnon and RssFile of this process, in KiB (Linux /proc)."""
    out = {}
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(("RssAnon:", "RssFile:")):
                key, value = line.split(":")
                out[key] = int(value.split()[0])
    return out


def probe_memory(loader) -> tuple[float, float]:
    """Peak growth (MB) of anonymous and file-backed resident memory over one pass of ``loader``."""
    gc.collect()
    base = rss_kib()
    peak = dict(base)
    for batch in loader:
        now = rss_kib()
        peak = {k: max(peak[k], now[k]) for k in peak}
        del batch
    return (peak["RssAnon"] - base["RssAnon"]) / 1024, (peak["RssFile"] - base["RssFile"]) / 1024


def synthetic_collection(path: Path, records: int, dim: int) -> Path:
    import neural_format as nf
    from neural_format.collections.synthetic import synthetic_meta, synthetic_records
    meta = synthetic_meta(feature_dim=dim, entity_feature_dim=dim)
    nf.write_collection(path, meta, synthetic_records(records, meta, seed=0))
    return path


def phantom_collection(directory: Path, cases: int) -> Path:
    from neural_models.phantom_study import build_phantom_collection
    # the report generator's quality does not change the layout: a few fine-tuning steps suffice
    info = build_phantom_collection(directory, cases, seed=0, size=256, vlm_steps=4, batch_size=8)
    return Path(info["collection"])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", choices=["synthetic", "phantom"], default="synthetic")
    parser.add_argument("--collection", default=None, help="benchmark this file or collection instead")
    parser.add_argument("--records", type=int, default=10_000, help="records (synthetic) or phantom cases")
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    parser.add_argument("--shuffle", choices=["no", "yes", "both"], default="both")
    parser.add_argument("--sides", nargs="+", choices=["dataset", "loader"], default=["dataset", "loader"],
                        help="file-backed sides to time next to the in-memory list")
    parser.add_argument("--label", default="pneumonia")
    args = parser.parse_args(argv)

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch
    from torch_geometric.loader import DataLoader

    import neural_format as nf
    from neural_format.adapters.pyg_batches import GraphBatchLoader
    from neural_format.adapters.torch_dataset import CollectionDataset

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        if args.collection:
            path = Path(args.collection)
        elif args.workload == "phantom":
            path = phantom_collection(Path(tmp), args.records)
        else:
            path = synthetic_collection(Path(tmp) / "bench.h5", args.records, args.dim)
        # builder output stores no entity embeddings unless asked: entity rows are zeros on every side
        graph = dict(label=args.label, entity_features="zeros", pad="zeros")
        size = sum(p.stat().st_size for p in ([path] if path.is_file() else path.glob("*.h5")))
        with nf.open_collection(path) as collection:
            meta, count = collection.meta, len(collection)

        anon, filed = probe_memory(GraphBatchLoader(path, batch_size=args.batch_size, shuffle=True, **graph))
        before = rss_kib()["RssAnon"]
        with nf.open_collection(path) as collection:
            in_memory = [r.to_pyg(label_names=meta.label_names, **graph) for r in collection.read_all()]
        gc.collect()
        list_mb = (rss_kib()["RssAnon"] - before) / 1024
        gc.freeze()
        print(f"{args.workload if not args.collection else path}: {count} records, patch dim {meta.patch_feature_dim} "
              f"{meta.patch_feature_dtype}, entity dim {meta.entity_feature_dim}, batch {args.batch_size}, "
              f"{size / 1e6:.1f} MB on disk, torch threads 1, pid {os.getpid()}")
        print(f"memory over one shuffled pass of the loader (workers 0): +{anon:.1f} MB anonymous (heap), "
              f"+{filed:.1f} MB file-backed resident pages (page cache via the map); the in-memory Data list "
              f"holds +{list_mb:.1f} MB anonymous")
        header = f"{'workers':>8} {'shuffle':>8} {'memory s':>9}"
        if "dataset" in args.sides:
            header += f" {'dataset s':>10} {'dataset/mem':>12}"
        if "loader" in args.sides:
            header += f" {'loader s':>9} {'speed-up':>9} {'speed-up(min)':>14}"
        print(header, flush=True)
        shuffles = {"no": [False], "yes": [True], "both": [False, True]}[args.shuffle]
        for workers in args.workers:
            for shuffle in shuffles:
                kw = dict(batch_size=args.batch_size, num_workers=workers, shuffle=shuffle,
                          persistent_workers=workers > 0)
                sides = {"memory": DataLoader(in_memory, **kw)}
                if "dataset" in args.sides:
                    sides["dataset"] = DataLoader(CollectionDataset(path, **graph), **kw)
                if "loader" in args.sides:
                    sides["loader"] = GraphBatchLoader(path, **kw, **graph)
                times = {name: [] for name in sides}
                for name, loader in sides.items():  # warm-up: worker start, page cache
                    one_pass(loader)
                for repeat in range(args.repeats):
                    for name, loader in sides.items():
                        if name == "loader":
                            loader.set_epoch(repeat + 1)  # a new permutation each pass, as in training
                        times[name].append(one_pass(loader))
                med = {name: statistics.median(t) for name, t in times.items()}
                line = f"{workers:>8} {str(shuffle):>8} {med['memory']:>9.3f}"
                if "dataset" in sides:
                    line += f" {med['dataset']:>10.3f} {med['dataset'] / med['memory']:>12.2f}"
                if "loader" in sides:
                    best = min(times["memory"]) / min(times["loader"])
                    line += f" {med['loader']:>9.3f} {med['memory'] / med['loader']:>9.2f} {best:>14.2f}"
                print(line, flush=True)
                for loader in sides.values():
                    if isinstance(loader, GraphBatchLoader):
                        loader.close()
                del sides
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
