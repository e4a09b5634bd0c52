"""Distributed data-parallel training of the reference MPNN over a sharded collection.

    torchrun --nproc_per_node=K -m neural_models.ddp_train --data COLLECTION --label pneumonia \\
        --out RUN_DIR --global-batch 32 --epochs 20

Every rank opens the collection itself (:func:`neural_format.open_collection`; handles are per
process) and reads only the records its :class:`torch.utils.data.DistributedSampler` gives it,
lazily, as graphs of :func:`neural_models.graph_input.convert`. The model is wrapped in
:class:`torch.nn.parallel.DistributedDataParallel`, which averages gradients over ranks after
every step. Each rank runs on the device :mod:`neural_builders.devices` gives it (``--device auto``:
GPU ``LOCAL_RANK mod G`` of the ``G`` visible GPUs, ranks sharing one when they outnumber the GPUs;
the CPU when there is none); the model and every batch are moved there. The backend follows the
device actually used: nccl only when the tensors are on CUDA and no two ranks share a GPU, else gloo.

Why a K-rank run computes the same thing as one process: ``DistributedSampler`` draws ONE
permutation ``p`` of the training indices per epoch from ``seed + epoch``, and rank ``r`` takes
``p[r::K]``. With per-rank batch ``b = B / K``, step ``t`` of rank ``r`` covers
``p[r + K(tb + j)]`` for ``j < b``; over all ranks that is exactly ``p[tKb : (t+1)Kb]``, the batch
of size ``B`` that a single process (``K = 1``) takes at step ``t``. When every rank holds the
same number of examples (``N`` divisible by ``K``; otherwise the sampler pads by repeating
examples) the per-rank batches have equal sizes, and the mean of the per-rank mean losses, whose
gradient DDP averages, is the mean loss over the global batch. So weights, losses and metrics
agree with a single-process run of batch ``B`` up to floating-point summation order, as long as
the model has no randomness of its own (dropout draws different masks on each rank; use
``--dropout 0`` to compare).

Validation after each epoch is sharded too: each rank scores its part of the validation set
(sampler without shuffling), the scores are gathered with ``all_gather_object`` and every rank
computes the same ROC-AUC. Rank 0 writes ``metrics.json`` and the best checkpoint.
"""
from __future__ import annotations

import argparse
import copy
import datetime as dt
import json
import os
import sys
import time
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch
import torch.distributed as dist

from .graph_input import NodeFeatures, convert
from .metrics import roc_auc
from .train import TrainConfig, make_loss, seed_everything


class CollectionGraphs(torch.utils.data.Dataset):
    """Records ``indices`` of a (sharded) collection as model graphs, read on demand.

    Pickles as its source (never an open handle), so DataLoader workers open their own.
    """

    def __init__(self, source, indices: Sequence[int], features: NodeFeatures, label_index: int, model_kind: str):
        self.source = source
        self.indices = [int(i) for i in indices]
        self.features, self.label_index, self.model_kind = features, label_index, model_kind
        self._collection = None

    def _open(self):
        if self._collection is None:
            from neural_format.collection import open_collection
            self._collection = open_collection(self.source)
        return self._collection

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int):
        record = self._open()[self.indices[i]]
        return convert(record, self.features, self.label_index, self.model_kind)

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_collection"] = None
        return state


def labelled_indices(source, label: str):
    """``(indices, labels, group_keys, meta)`` of the records with a known value of ``label``.

    Reads only the labels column and the group keys of each shard, not the graphs.
    """
    from neural_format.collection import open_collection
    with open_collection(source) as coll:
        meta = coll.meta
        if label not in meta.label_names:
            raise ValueError(f"{source}: no label {label!r} (labels: {list(meta.label_names)})")
        column = list(meta.label_names).index(label)
        labels, groups = [], []
        for k in range(coll.shard_count):
            reader = coll.shard(k)
            if len(reader):
                labels.append(reader.cols["/records/labels"][()][:, column])
                groups += reader.strings["/records/group_key"].all()
        labels = np.concatenate(labels) if labels else np.zeros(0, np.float32)
    known = np.flatnonzero(~np.isnan(labels))
    return known, labels[known].astype(np.float64), [groups[i] or None for i in known], meta, column


def _world() -> tuple[int, int]:
    return (dist.get_rank(), dist.get_world_size()) if dist.is_available() and dist.is_initialized() else (0, 1)


def _all_gather(value) -> list:
    if _world()[1] == 1:
        return [value]
    out = [None] * _world()[1]
    dist.all_gather_object(out, value)
    return out


def _collate_loader(dataset, batch_size: int, sampler):
    from torch_geometric.loader import DataLoader
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, shuffle=False)


@torch.no_grad()
def sharded_predict(model, dataset, batch_size: int, device=None) -> np.ndarray:
    """P(label = 1) for every item of ``dataset``, each rank scoring its part; same result on all ranks."""
    from torch.utils.data.distributed import DistributedSampler
    rank, world = _world()
    sampler = DistributedSampler(dataset, num_replicas=world, rank=rank, shuffle=False, drop_last=False)
    mine = list(iter(sampler))
    model.eval()
    scores = []
    device = device if device is not None else next(model.parameters()).device
    for batch in _collate_loader(dataset, batch_size, mine):
        scores.append(torch.sigmoid(model(batch.to(device))).cpu())
    local = torch.cat(scores).numpy().astype(np.float64).tolist() if scores else []
    out = np.zeros(len(dataset), np.float64)
    for indices, values in _all_gather((mine, local)):
        out[indices] = values  # padded repeats write the same value twice
    return out


def train_distributed(source, label: str, config: TrainConfig, *, out_dir=None, global_batch: Optional[int] = None,
                      split_seed: int = 0, log=None, device="auto") -> dict:
    """Train the reference model on ``source`` in this process's rank; returns the metrics (all ranks).

    Runs single-process when torch.distributed is not initialised (the reference for comparisons).
    ``device`` is resolved for this rank by :func:`neural_builders.devices.resolve_device`.
    """
    from neural_builders.devices import resolve_device
    from torch.nn.parallel import DistributedDataParallel
    from torch.utils.data.distributed import DistributedSampler

    from .registry import new_model
    from .splits import stratified_group_split

    rank, world = _world()
    global_batch = global_batch or config.batch_size
    if global_batch % world:
        raise ValueError(f"global batch {global_batch} is not divisible by the world size {world}")
    per_rank = global_batch // world
    indices, labels, groups, meta, column = labelled_indices(source, label)
    split = stratified_group_split(labels, groups, seed=split_seed)
    features = NodeFeatures.from_meta(meta)
    train_set = CollectionGraphs(source, indices[split.train], features, column, config.model)
    val_set = CollectionGraphs(source, indices[split.val], features, column, config.model)
    test_set = CollectionGraphs(source, indices[split.test], features, column, config.model)

    seed_everything(config.seed)
    device = resolve_device(str(device))
    model = new_model(config.model, features, hidden=config.hidden, dropout=config.dropout).to(device)
    if world > 1:
        wrapped = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    else:
        wrapped = model
    optimizer = torch.optim.Adam(wrapped.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    loss_fn = make_loss(labels[split.train]).to(device)  # pos_weight from the GLOBAL training labels
    sampler = DistributedSampler(train_set, num_replicas=world, rank=rank, shuffle=True, seed=config.seed,
                                 drop_last=False)
    loader = _collate_loader(train_set, per_rank, sampler)
    y_val, y_test = labels[split.val], labels[split.test]
    best = {"score": -np.inf, "epoch": 0, "state": None}
    history = []
    start = time.perf_counter()
    for epoch in range(1, config.max_epochs + 1):
        sampler.set_epoch(epoch)
        wrapped.train()
        loss_sum = torch.zeros(2, dtype=torch.float64)
        for batch in loader:
            batch = batch.to(device)
            optimizer.zero_grad()
            logits = wrapped(batch)
            loss = loss_fn(logits, batch.y.view(-1).to(logits.dtype))
            loss.backward()
            optimizer.step()
            loss_sum += torch.tensor([float(loss.detach()) * batch.num_graphs, batch.num_graphs], dtype=torch.float64)
        if world > 1:  # on the rank's device: nccl reduces CUDA tensors only
            reduced = loss_sum.to(device)
            dist.all_reduce(reduced)
            loss_sum = reduced.cpu()
        train_loss = float(loss_sum[0] / max(loss_sum[1], 1))
        val_auc = roc_auc(y_val, sharded_predict(model, val_set, per_rank)) if len(val_set) else float("nan")
        history.append({"epoch": epoch, "train_loss": train_loss, "val_auc": val_auc})
        if log and rank == 0:
            log(f"epoch {epoch:3d}  loss {train_loss:.4f}  val AUC {val_auc:.4f}")
        score = val_auc if np.isfinite(val_auc) else -train_loss
        if score > best["score"]:
            best = {"score": score, "epoch": epoch, "state": copy.deepcopy(model.state_dict())}
        elif epoch - best["epoch"] >= config.patience:
            break
    if best["state"] is not None:
        model.load_state_dict(best["state"])
    test_scores = sharded_predict(model, test_set, per_rank) if len(test_set) else np.zeros(0)
    metrics = {
        "world_size": world, "global_batch": global_batch, "per_rank_batch": per_rank,
        "train": int(len(split.train)), "val": int(len(split.val)), "test": int(len(split.test)),
        "best_epoch": best["epoch"], "history": history,
        "best_val_auc": history[best["epoch"] - 1]["val_auc"] if best["epoch"] else float("nan"),
        "test_auc": roc_auc(y_test, test_scores) if len(test_set) else float("nan"),
        "seconds": time.perf_counter() - start, "config": config.to_dict(), "device": device.type,
        "train_graphs_per_second_per_rank_incl_validation":
            len(train_set) / world * len(history) / max(time.perf_counter() - start, 1e-9),
    }
    if rank == 0 and out_dir is not None:
        from .checkpoint import save_model
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        save_model(out_dir, model, features, extra={"label": label, "world_size": world})
        (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    return metrics


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m neural_models.ddp_train",
                                     description="Train the reference MPNN with DDP over a sharded collection.")
    parser.add_argument("--data", required=True, help="collection directory, manifest.json or collection file")
    parser.add_argument("--label", default="pneumonia")
    parser.add_argument("--out", default=None, help="run directory for metrics.json and the checkpoint (rank 0)")
    parser.add_argument("--model", default="gcn", choices=["gcn", "hetero"])
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--dropout", type=float, default=0.2)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--patience", type=int, default=10)
    parser.add_argument("--global-batch", type=int, default=32, help="examples per optimiser step over all ranks")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--split-seed", type=int, default=0)
    parser.add_argument("--device", default="auto",
                        help="auto (GPU LOCAL_RANK mod #GPUs, else CPU), cpu, cuda or cuda:N")
    parser.add_argument("--backend", default=None,
                        help="default: nccl when each rank has a GPU of its own, else gloo")
    parser.add_argument("--timeout", type=float, default=600)
    args = parser.parse_args(argv)
    from neural_builders.devices import launch_env, process_group_backend, resolve_device
    env = launch_env()
    launched = env["world_size"] > 1
    device = resolve_device(args.device)  # a misconfiguration fails here with NB-D001, before any CUDA call
    if launched:
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        backend = process_group_backend(str(device), local_world_size=env["local_world_size"], device_count=count,
                                        requested=args.backend)
        if device.type == "cuda":
            torch.cuda.set_device(device)  # collectives (and nccl's object gathers) use the current device
        dist.init_process_group(backend, timeout=dt.timedelta(seconds=args.timeout))
    try:
        torch.set_num_threads(max(1, int(os.environ.get("OMP_NUM_THREADS", torch.get_num_threads()))))
        config = TrainConfig(model=args.model, hidden=args.hidden, dropout=args.dropout, lr=args.lr,
                             batch_size=args.global_batch, max_epochs=args.epochs, patience=args.patience,
                             seed=args.seed)
        metrics = train_distributed(args.data, args.label, config, out_dir=args.out, global_batch=args.global_batch,
                                    split_seed=args.split_seed, device=str(device),
                                    log=lambda text: print(text, file=sys.stderr, flush=True))
        if _world()[0] == 0:
            print(json.dumps({k: v for k, v in metrics.items() if k != "history"}))
    finally:
        if launched:
            dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
