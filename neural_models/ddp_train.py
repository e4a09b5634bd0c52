"""Distributed data-parallel training of the reference MPNN over a sharded collection.

    torchrun --nproc_per_node=K -m neural_models.ddp_train --data COLLECTION --label pneumonia \\
        --out RUN_DIR --batch-size 32 --max-epochs 20 [--workers 2]

The flags are those of ``neural-format train`` (``--batch-size`` is the global batch over all
ranks; ``--global-batch`` and ``--epochs`` are accepted as older spellings). Every rank opens the
collection itself (:func:`neural_format.open_collection`; handles are per process) and reads
only the records its share of each epoch's permutation gives it (the order of
:class:`torch.utils.data.DistributedSampler`): for the GCN as whole batches built from the
columns (:class:`~neural_format.adapters.pyg_batches.GraphBatchLoader` with
:class:`~neural_models.batch_input.HomogeneousBatches`, ``--workers`` loader processes per rank),
for the heterogeneous model as graphs of :func:`neural_models.graph_input.convert`. The model is wrapped in
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
computes the same ROC-AUC. Rank 0 writes ``metrics.json``, the best checkpoint with the settings
``neural-format evaluate`` needs (label, split rule and seed, sources, modality) and the test
predictions scored as ``evaluate`` scores them, so that ``evaluate RUN_DIR COLLECTION`` rebuilds
the test split and reproduces them.
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
from typing import TYPE_CHECKING, Optional, Sequence

import numpy as np

from neural_format.cli import int_at_least, positive_seconds

from .graph_input import NodeFeatures, convert
from .metrics import roc_auc
from .train import TrainConfig, make_loss, seed_everything
from .train_config import PREDICT_BATCH_SIZE
from . import optional_deps

optional_deps.require("torch", needed_by="distributed training")
import torch  # noqa: E402 (after the NF-E-EXTRA check above)
import torch.distributed as dist  # noqa: E402 (after the NF-E-EXTRA check above)

if TYPE_CHECKING:
    from neural_format.collections.collection import ShardedCollection


class CollectionGraphs(torch.utils.data.Dataset):
    """Records ``indices`` of a (sharded) collection as model graphs, read on demand.

    Pickles as its source (never an open handle), so DataLoader workers open their own.
    """

    def __init__(self, source, indices: Sequence[int], features: NodeFeatures, label_index: int, model_kind: str):
        self.source = source
        self.indices = [int(i) for i in indices]
        self.features, self.label_index, self.model_kind = features, label_index, model_kind
        self._collection: Optional[ShardedCollection] = None

    def _open(self) -> ShardedCollection:
        if self._collection is None:
            from neural_format.collections.collection import open_collection
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
    from neural_format.collections.collection import open_collection
    with open_collection(source) as coll:
        meta = coll.meta
        if label not in meta.label_names:
            raise ValueError(f"{source}: no label {label!r} (labels: {list(meta.label_names)})")
        column = list(meta.label_names).index(label)
        parts: list[np.ndarray] = []
        groups: list[str] = []
        for k in range(coll.shard_count):
            reader = coll.shard(k)
            if len(reader):
                parts.append(reader.cols["/records/labels"][()][:, column])
                groups += reader.strings["/records/group_key"].all()
        labels = np.concatenate(parts) if parts else np.zeros(0, np.float32)
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
    DataLoader = optional_deps.load("torch_geometric.loader", needed_by="distributed training").DataLoader
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, shuffle=False)


def _examples(columns, source, positions, labels, features: NodeFeatures, column: int, model_kind: str,
              keep_half: bool):
    """A split's examples: read as GCN batches from the columns, or (hetero) one graph per record."""
    if model_kind == "gcn":
        from .batch_input import FileExamples, HomogeneousBatches
        return FileExamples(columns, positions, HomogeneousBatches(features, column, keep_half=keep_half), labels)
    return CollectionGraphs(source, positions, features, column, model_kind)


def _batches(dataset, batch_size: int, *, shuffle: bool, seed: int, rank: int, world: int, workers: int = 0):
    """This rank's batches of ``dataset`` (``set_epoch`` as ``DistributedSampler``) and its positions in it."""
    from neural_format.adapters.batch_columns import epoch_order

    from .batch_input import FileExamples
    if isinstance(dataset, FileExamples):
        loader = dataset.loader(batch_size, shuffle=shuffle, seed=seed, num_workers=workers, rank=rank, world_size=world)
        return loader, lambda: epoch_order(len(dataset), shuffle=shuffle, seed=seed, epoch=loader.epoch,
                                           rank=rank, world=world).tolist()
    from torch.utils.data.distributed import DistributedSampler
    sampler: DistributedSampler = DistributedSampler(dataset, num_replicas=world, rank=rank, shuffle=shuffle, seed=seed, drop_last=False)
    loader = _collate_loader(dataset, batch_size, sampler)
    loader.set_epoch = sampler.set_epoch
    return loader, lambda: list(iter(sampler))


@torch.no_grad()
def sharded_predict(model, dataset, batch_size: int, device=None) -> np.ndarray:
    """P(label = 1) for every item of ``dataset``, each rank scoring its part; same result on all ranks."""
    from neural_format.adapters.pyg_batches import to_device
    rank, world = _world()
    loader, positions = _batches(dataset, batch_size, shuffle=False, seed=0, rank=rank, world=world)
    mine = positions()
    model.eval()
    scores = []
    device = device if device is not None else next(model.parameters()).device
    for batch in loader:
        scores.append(torch.sigmoid(model(to_device(batch, device))).cpu())
    local = torch.cat(scores).numpy().astype(np.float64).tolist() if scores else []
    out = np.zeros(len(dataset), np.float64)
    for indices, values in _all_gather((mine, local)):
        out[indices] = values  # padded repeats write the same value twice
    return out


def train_distributed(source, label: str, config: TrainConfig, *, out_dir=None, global_batch: Optional[int] = None,
                      split_seed: int = 0, log=None, device="auto", workers: int = 0) -> dict:
    """Train the reference model on ``source`` in this process's rank; returns the metrics (all ranks).

    Runs single-process when torch.distributed is not initialised (the reference for comparisons).
    ``device`` is resolved for this rank by :func:`neural_builders.devices.resolve_device`.
    GCN batches are built from the columns by ``workers`` loader processes per rank (0: in this
    process); on a GPU, float16 features travel as float16 and are upcast on the device.
    """
    from neural_builders.devices import resolve_device
    from neural_format.adapters.batch_columns import CollectionColumns
    from neural_format.adapters.pyg_batches import to_device
    from torch.nn.parallel import DistributedDataParallel

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
    device = resolve_device(str(device))
    columns = CollectionColumns(source, extras=False)
    train_set, val_set, test_set = (
        _examples(columns, source, indices[part], labels[part], features, column, config.model,
                  keep_half=device.type == "cuda") for part in (split.train, split.val, split.test))

    seed_everything(config.seed)
    model = new_model(config.model, features, hidden=config.hidden, dropout=config.dropout).to(device)
    if world > 1:
        wrapped = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    else:
        wrapped = model
    optimizer = torch.optim.Adam(wrapped.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    loss_fn = make_loss(labels[split.train]).to(device)  # pos_weight from the GLOBAL training labels
    loader, _ = _batches(train_set, per_rank, shuffle=True, seed=config.seed, rank=rank, world=world, workers=workers)
    y_val, y_test = labels[split.val], labels[split.test]
    best_score, best_epoch, best_state = -np.inf, 0, None
    history = []
    start = time.perf_counter()
    for epoch in range(1, config.max_epochs + 1):
        loader.set_epoch(epoch)
        wrapped.train()
        loss_sum = torch.zeros(2, dtype=torch.float64)
        for batch in loader:
            batch = to_device(batch, device)
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
        train_loss = float(loss_sum[0]) / max(float(loss_sum[1]), 1.0)
        val_auc = roc_auc(y_val, sharded_predict(model, val_set, per_rank)) if len(val_set) else float("nan")
        history.append({"epoch": epoch, "train_loss": train_loss, "val_auc": val_auc})
        if log and rank == 0:
            log(f"epoch {epoch:3d}  loss {train_loss:.4f}  val AUC {val_auc:.4f}")
        score = val_auc if np.isfinite(val_auc) else -train_loss
        if score > best_score:
            best_score, best_epoch, best_state = score, epoch, copy.deepcopy(model.state_dict())
        elif epoch - best_epoch >= config.patience:
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    test_scores = sharded_predict(model, test_set, per_rank) if len(test_set) else np.zeros(0)
    metrics = {
        "world_size": world, "global_batch": global_batch, "per_rank_batch": per_rank,
        "train": int(len(split.train)), "val": int(len(split.val)), "test": int(len(split.test)),
        "best_epoch": best_epoch, "history": history,
        "best_val_auc": history[best_epoch - 1]["val_auc"] if best_epoch else float("nan"),
        "test_auc": roc_auc(y_test, test_scores) if len(test_set) else float("nan"),
        "seconds": time.perf_counter() - start, "config": config.to_dict(), "device": device.type,
        "train_graphs_per_second_per_rank_incl_validation":
            len(train_set) / world * len(history) / max(time.perf_counter() - start, 1e-9),
    }
    if rank == 0 and out_dir is not None:
        save_run(out_dir, model, features, metrics, source=source, label=label, column=column, config=config,
                 split_seed=split_seed, world=world, test_set=test_set,
                 test_positions=indices[split.test], test_labels=y_test)
    return metrics


def save_run(out_dir, model, features, metrics: dict, *, source, label: str, column: int, config: TrainConfig,
             split_seed: int, world: int, test_set, test_positions, test_labels) -> None:
    """Weights, metrics and the settings ``neural-format evaluate`` needs to rebuild and re-score the test split.

    The saved test predictions are scored in this process on the CPU in batches of
    ``predict_batch_size``, as ``evaluate`` scores them, so that it can reproduce them bit for bit.
    """
    from neural_format.collections.collection import open_collection

    from .checkpoint import save_model
    from .cli.train_cmd import split_rule
    from .run_files import write_predictions
    from .train import predict
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    scorer = copy.deepcopy(model).cpu()
    scores = predict(scorer, test_set, batch_size=PREDICT_BATCH_SIZE) if len(test_set) else np.zeros(0, np.float32)
    sources = [str(Path(source).resolve())] if isinstance(source, (str, os.PathLike)) else [str(s) for s in source]
    save_model(out_dir, model, features, extra={
        "label": label, "label_index": column, "modality": "fused", "bridge": True, "train": config.to_dict(),
        "split": {"seed": split_seed, "fractions": [0.70, 0.15, 0.15], "one_per_patient": False, "rule": split_rule()},
        "sources": sources, "best_epoch": metrics["best_epoch"], "best_val_auc": metrics["best_val_auc"],
        "predict_batch_size": PREDICT_BATCH_SIZE, "world_size": world, "trainer": "ddp_train"})
    with open_collection(source) as collection:
        ids = collection.record_ids()
    write_predictions(out_dir, [ids[int(i)] for i in test_positions], test_labels, scores)
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))


# this entry point's own, shorter epoch budget (kept from before TrainConfig held the other defaults)
DISTRIBUTED_MAX_EPOCHS = 30


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m neural_models.ddp_train",
                                     description="Train the reference MPNN with DDP over a sharded collection.")
    parser.add_argument("--data", required=True, help="collection directory, manifest.json or collection file")
    parser.add_argument("--label", default="pneumonia")
    parser.add_argument("--out", default=None, help="run directory for metrics.json and the checkpoint (rank 0)")
    defaults = TrainConfig()  # every training default comes from there, except the epoch budget:
    parser.add_argument("--model", default=defaults.model, choices=["gcn", "hetero"])
    parser.add_argument("--hidden", type=int_at_least(1), default=defaults.hidden)
    parser.add_argument("--dropout", type=float, default=defaults.dropout)
    parser.add_argument("--lr", type=float, default=defaults.lr)
    # the flags of `neural-format train`; --epochs and --global-batch are kept as older spellings
    parser.add_argument("--max-epochs", "--epochs", dest="max_epochs", type=int_at_least(1), default=DISTRIBUTED_MAX_EPOCHS,
                        help=f"default {DISTRIBUTED_MAX_EPOCHS} (TrainConfig's is {defaults.max_epochs})")
    parser.add_argument("--patience", type=int_at_least(1), default=defaults.patience)
    parser.add_argument("--batch-size", "--global-batch", dest="batch_size", type=int_at_least(1), default=defaults.batch_size,
                        help="examples per optimiser step over all ranks (each rank takes batch-size / world size)")
    parser.add_argument("--workers", type=int_at_least(0), default=defaults.workers,
                        help="loader processes per rank building GCN batches")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--split-seed", type=int, default=0)
    parser.add_argument("--device", default="auto",
                        help="auto (GPU LOCAL_RANK mod #GPUs, else CPU), cpu, cuda or cuda:N")
    parser.add_argument("--backend", default=None,
                        help="default: nccl when each rank has a GPU of its own, else gloo")
    parser.add_argument("--timeout", type=positive_seconds, default=600)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
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
                             batch_size=args.batch_size, max_epochs=args.max_epochs, patience=args.patience,
                             seed=args.seed, workers=args.workers)
        metrics = train_distributed(args.data, args.label, config, out_dir=args.out, global_batch=args.batch_size,
                                    split_seed=args.split_seed, device=str(device), workers=config.workers,
                                    log=lambda text: print(text, file=sys.stderr, flush=True))
        if _world()[0] == 0:
            print(json.dumps({k: v for k, v in metrics.items() if k != "history"}))
    finally:
        if launched:
            dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
