"""One training epoch of the reference GCN: from the HDF5-backed Dataset vs from an in-memory list.

Both sides train the same FusedGCN (same seed, same shuffled order, same batches) for one epoch
over the same graphs: the lazy ``neural_format.adapters.torch_dataset.CollectionDataset`` reads
each batch from the collection file while the model trains; the in-memory side holds
``list(dataset)`` built before the clock starts. Rounds alternate the two sides, and the report
gives the median seconds per epoch of each and their ratio (goal: HDF5 / memory <= 1.2).

    .venv/bin/python benchmarks/bench_epoch.py --records 2000 --rounds 5

``--sampler block`` shuffles contiguous blocks of records instead of single records, so that
each batch is a few contiguous runs the dataset reads with one HDF5 read per column;
``--workers N`` reads in N DataLoader worker processes while the main process trains;
``--preload`` lets the dataset read its columns once and build each batch's graphs from memory.
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


class BlockShuffleSampler(torch.utils.data.Sampler):
    """Contiguous blocks of ``block`` indices in a seeded random order (records within a block stay in order)."""

    def __init__(self, n: int, block: int, seed: int):
        self.n, self.block, self.seed, self.epoch = n, block, seed, 0

    def __len__(self) -> int:
        return self.n

    def __iter__(self):
        starts = np.arange(0, self.n, self.block)
        order = np.random.default_rng(self.seed + self.epoch).permutation(starts.size)
        for s in starts[order]:
            yield from range(int(s), min(int(s) + self.block, self.n))


def make_loader(source, args, seed: int):
    from torch_geometric.loader import DataLoader
    if args.sampler == "block":
        return DataLoader(source, batch_size=args.batch_size, sampler=BlockShuffleSampler(len(source), args.batch_size, seed),
                          num_workers=args.workers if not isinstance(source, list) else 0,
                          persistent_workers=False)
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(source, batch_size=args.batch_size, shuffle=True, generator=generator,
                      num_workers=args.workers if not isinstance(source, list) else 0)


def one_epoch(source, args, seed: int) -> tuple[float, float]:
    from neural_models.gcn import FusedGCN
    from neural_models.train import make_loss, train_epoch
    from neural_models.train_config import TrainConfig
    torch.manual_seed(seed)
    width = source[0].x.shape[1]
    model = FusedGCN(width, hidden=args.hidden)
    optimizer = torch.optim.Adam(model.parameters(), lr=TrainConfig().lr)
    loss_fn = make_loss(np.array([0.0, 1.0]))
    loader = make_loader(source, args, seed)
    start = time.perf_counter()
    loss = train_epoch(model, loader, optimizer, loss_fn)
    return time.perf_counter() - start, loss


def main(argv=None) -> int:
    from neural_models.train_config import TrainConfig
    defaults = TrainConfig()  # the MPNN's training defaults: the benchmark trains as `neural-format train` does
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--collection", default=None, help="an existing collection (default: write a planted one)")
    parser.add_argument("--label", default="pneumonia")
    parser.add_argument("--records", type=int, default=2000)
    parser.add_argument("--feature-dim", type=int, default=768, help="patch feature width (Swin-T last stage: 768)")
    parser.add_argument("--patches", type=int, nargs=2, default=(8, 24), help="patches per record (min max)")
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--hidden", type=int, default=defaults.hidden)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--sampler", choices=("random", "block"), default="random")
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--preload", action="store_true",
                        help="CollectionDataset(preload=True): columns read once per process, graphs built per batch")
    parser.add_argument("--json", default=None, help="also write the result here")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    from neural_format.adapters.torch_dataset import CollectionDataset
    from neural_models.planted import write_planted_collection

    with tempfile.TemporaryDirectory() as tmp:
        path = args.collection or write_planted_collection(Path(tmp) / "bench.h5", args.records, seed=0,
                                                           feature_dim=args.feature_dim, patches=tuple(args.patches))
        options = {"preload": True} if args.preload else {}
        dataset = CollectionDataset(path, label=args.label, entity_features="zeros", pad="zeros", extras=False,
                                    **options)
        t0 = time.perf_counter()
        in_memory = list(dataset)
        load_seconds = time.perf_counter() - t0
        one_epoch(in_memory[:64], args, 0)  # warm-up: first-call costs (kernels, imports) out of the timings
        one_epoch(dataset, args, 0)
        hdf5, memory = [], []
        losses = set()
        for r in range(args.rounds):
            first, second = ((dataset, hdf5), (in_memory, memory)) if r % 2 == 0 else ((in_memory, memory), (dataset, hdf5))
            for source, bucket in (first, second):
                seconds, loss = one_epoch(source, args, seed=r)
                bucket.append(seconds)
                losses.add((r, round(loss, 6)))
        result = {
            "records": len(dataset), "feature_dim": int(in_memory[0].x.shape[1]), "batch_size": args.batch_size,
            "sampler": args.sampler, "workers": args.workers, "preload": args.preload, "threads": args.threads,
            "rounds": args.rounds,
            "hdf5_epoch_s_median": statistics.median(hdf5), "memory_epoch_s_median": statistics.median(memory),
            "ratio_hdf5_over_memory": statistics.median(hdf5) / statistics.median(memory),
            "hdf5_epoch_s": hdf5, "memory_epoch_s": memory, "list_build_s": load_seconds,
            "same_losses_both_sides": len({loss for _, loss in losses}) == args.rounds,
        }
        dataset.close()
    print(json.dumps(result, indent=2))
    print(f"\nepoch from HDF5 Dataset {result['hdf5_epoch_s_median']:.3f} s, from in-memory list "
          f"{result['memory_epoch_s_median']:.3f} s: ratio {result['ratio_hdf5_over_memory']:.2f}x (goal <= 1.2x)")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
