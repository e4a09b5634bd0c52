"""Iterating a collection file through CollectionDataset + PyG DataLoader vs an in-memory Data list.

Writes a synthetic collection (default 10,000 records, NEURAL-like sizes: 0-30 patches, 0-12
entities, 4-neighbour patch edges, a bridge), builds the same graphs as an in-memory list of
``Data`` (via ``record_to_pyg``), and times full passes of ``torch_geometric.loader.DataLoader``
over both, side by side and interleaved, for each (num_workers, shuffle) setting. Prints seconds
per pass (median of the repeats) and the ratio file / in-memory (1.00 = as fast), from the
medians and from the fastest passes, and for num_workers=0 the ratio of CPU seconds used by this
process (median and min; robust when other processes compete for the cores, where wall time
mostly measures the run queue). Objects alive before timing (the in-memory list above all) are
frozen out of the cyclic GC's reach (``gc.freeze``), so neither side pays for traversing them.

    .venv/bin/python benchmarks/bench_dataset.py [--records 10000] [--dim 256] [--repeats 5]
"""
from __future__ import annotations

import argparse
import gc
import statistics
import tempfile
import time
from pathlib import Path


def one_pass(loader) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) for one full pass."""
    start, cpu = time.perf_counter(), time.process_time()
    nodes = 0
    for batch in loader:
        nodes += batch.num_nodes
    return time.perf_counter() - start, time.process_time() - cpu


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    parser.add_argument("--shuffle", choices=["no", "yes", "both"], default="both")
    parser.add_argument("--preload", action="store_true", help="CollectionDataset(preload=True)")
    parser.add_argument("--no-extras", action="store_true",
                        help="graphs with x, edge_index, y only (both sides), as the reference MPNN reads them")
    args = parser.parse_args(argv)

    import torch
    from torch_geometric.loader import DataLoader

    import neural_format as nf
    from neural_format.adapters.torch_dataset import CollectionDataset
    from neural_format.synthetic import synthetic_meta, synthetic_records

    torch.set_num_threads(1)
    meta = synthetic_meta(feature_dim=args.dim, entity_feature_dim=args.dim)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.h5"
        nf.write_collection(path, meta, synthetic_records(args.records, meta, seed=0))
        with nf.open(path) as reader:
            in_memory = [r.to_pyg(label="pneumonia", label_names=meta.label_names, extras=not args.no_extras)
                         for r in reader.read_all()]
        dataset = CollectionDataset(path, label="pneumonia", preload=args.preload, extras=not args.no_extras)
        # Both sides run in this one process, next to the in-memory list (~10 objects per graph).
        # Freezing the objects alive now keeps the cyclic GC from re-traversing them during every
        # pass: a file-backed pass allocates more objects, so it would otherwise pay for the
        # in-memory side's list, which a program reading from the file would not hold.
        gc.collect()
        gc.freeze()
        print(f"{args.records} records, feature dim {args.dim}, batch {args.batch_size}, "
              f"{path.stat().st_size / 1e6:.1f} MB file, torch threads 1, preload {args.preload}, "
              f"extras {not args.no_extras}")
        print(f"{'workers':>8} {'shuffle':>8} {'in-memory s':>12} {'file s':>10} {'ratio':>7} {'ratio(min)':>11}"
              f" {'cpu ratio (median/min)':>22}")
        shuffles = {"no": [False], "yes": [True], "both": [False, True]}[args.shuffle]
        for workers in args.workers:
            for shuffle in shuffles:
                kw = dict(batch_size=args.batch_size, num_workers=workers, shuffle=shuffle,
                          persistent_workers=workers > 0)
                mem_loader = DataLoader(in_memory, **kw)
                file_loader = DataLoader(dataset, **kw)
                one_pass(mem_loader), one_pass(file_loader)  # warm-up: worker start, page cache
                mem, fil = [], []
                for _ in range(args.repeats):
                    mem.append(one_pass(mem_loader))
                    fil.append(one_pass(file_loader))
                m = statistics.median(w for w, _ in mem)
                f = statistics.median(w for w, _ in fil)
                best = min(w for w, _ in fil) / min(w for w, _ in mem)
                # with workers the work runs in child processes: this process's CPU time says nothing
                cpu = (f"{statistics.median(c for _, c in fil) / statistics.median(c for _, c in mem):.2f}/"
                       f"{min(c for _, c in fil) / min(c for _, c in mem):.2f}" if workers == 0 else "-")
                print(f"{workers:>8} {str(shuffle):>8} {m:>12.3f} {f:>10.3f} {f / m:>7.2f} {best:>11.2f} {cpu:>22}",
                      flush=True)
                del mem_loader, file_loader
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
