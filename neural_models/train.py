"""Training: seeded, deterministic mini-batch Adam on binary cross-entropy, early stopping on val AUC.

The loss is ``BCEWithLogits`` with ``pos_weight = n_neg / n_pos`` from the training split, so a
rare label still pulls on the weights. After every epoch the model scores the validation split;
the weights of the epoch with the highest validation ROC-AUC are kept (ties keep the earlier
epoch) and training stops after ``patience`` epochs without a gain. :func:`train_step` and
:func:`predict` are the pieces the DDP trainer reuses; nothing here runs on import.
"""
from __future__ import annotations

import copy
import random
import time
from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np

from .metrics import roc_auc
from .train_config import PREDICT_BATCH_SIZE
from .train_config import TrainConfig  # noqa: F401 (re-exported: its home before it moved)
from . import optional_deps

optional_deps.require("torch", needed_by="training")
import torch  # noqa: E402 (after the NF-E-EXTRA check above)


@dataclass
class TrainResult:
    best_epoch: int
    best_val_auc: float
    epochs_run: int
    seconds: float
    history: list[dict] = field(default_factory=list)


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch, and ask torch for deterministic kernels."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


def make_loader(graphs, batch_size: int, *, shuffle: bool, seed: int = 0, num_workers: int = 0):
    """Batches of ``graphs``: a list of graphs (PyG ``DataLoader``) or :class:`FileExamples` (read from the file).

    Call ``set_epoch(epoch)`` on the result, when it has one, before each epoch.
    """
    from .batch_input import FileExamples
    if isinstance(graphs, FileExamples):
        return graphs.loader(batch_size, shuffle=shuffle, seed=seed, num_workers=num_workers)
    DataLoader = optional_deps.load("torch_geometric.loader", needed_by="training").DataLoader
    generator = torch.Generator().manual_seed(seed) if shuffle else None
    return DataLoader(graphs, batch_size=batch_size, shuffle=shuffle, generator=generator,
                      num_workers=num_workers)


def train_step(model, batch, optimizer, loss_fn) -> float:
    """One optimiser step on one batch; returns the batch loss."""
    model.train()
    optimizer.zero_grad()
    logits = model(batch)
    loss = loss_fn(logits, batch.y.view(-1).to(logits.dtype))
    loss.backward()
    optimizer.step()
    return float(loss.detach())


def train_epoch(model, loader, optimizer, loss_fn, epoch: int = 0) -> float:
    """One pass over ``loader``; returns the mean batch loss."""
    if hasattr(loader, "set_epoch"):
        loader.set_epoch(epoch)  # a file-backed loader draws each epoch's order from seed + epoch
    losses = [train_step(model, batch, optimizer, loss_fn) for batch in loader]
    return float(np.mean(losses)) if losses else float("nan")


@torch.no_grad()
def predict(model, graphs, batch_size: int = PREDICT_BATCH_SIZE) -> np.ndarray:
    """P(label = 1) for each graph, in order, as float32."""
    model.eval()
    out = [torch.sigmoid(model(batch)) for batch in make_loader(graphs, batch_size, shuffle=False)]
    return torch.cat(out).numpy().astype(np.float32) if out else np.zeros(0, np.float32)


def labels_of(graphs) -> np.ndarray:
    from .batch_input import FileExamples
    if isinstance(graphs, FileExamples):
        return graphs.labels.copy()
    return np.array([float(g.y.view(-1)[0]) for g in graphs], dtype=np.float64)


def make_loss(train_labels: np.ndarray):
    positives = float(train_labels.sum())
    negatives = float(train_labels.size - positives)
    weight = torch.tensor(negatives / positives if positives else 1.0, dtype=torch.float32)
    return torch.nn.BCEWithLogitsLoss(pos_weight=weight)


def fit(model, train_graphs: Sequence, val_graphs: Sequence, config: TrainConfig, *,
        log=None, train_labels: Optional[np.ndarray] = None) -> TrainResult:
    """Train ``model`` in place and leave it holding the best-validation-AUC weights."""
    seed_everything(config.seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    y_train = labels_of(train_graphs) if train_labels is None else train_labels
    loss_fn = make_loss(y_train)
    y_val = labels_of(val_graphs)
    loader = make_loader(train_graphs, config.batch_size, shuffle=True, seed=config.seed, num_workers=config.workers)
    best_auc, best_epoch, best_state, history = -np.inf, -1, None, []
    start = time.perf_counter()
    epoch = 0
    for epoch in range(1, config.max_epochs + 1):
        loss = train_epoch(model, loader, optimizer, loss_fn, epoch)
        val_auc = roc_auc(y_val, predict(model, val_graphs)) if len(val_graphs) else float("nan")
        history.append({"epoch": epoch, "train_loss": loss, "val_auc": val_auc})
        if log:
            log(f"epoch {epoch:3d}  loss {loss:.4f}  val AUC {val_auc:.4f}")
        score = val_auc if np.isfinite(val_auc) else -loss  # a one-class val split falls back to loss
        if score > best_auc:
            best_auc, best_epoch, best_state = score, epoch, copy.deepcopy(model.state_dict())
        elif epoch - best_epoch >= config.patience:
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    best_val = history[best_epoch - 1]["val_auc"] if best_epoch > 0 else float("nan")
    return TrainResult(best_epoch, best_val, epoch, time.perf_counter() - start, history)
