"""How the reference MPNN is trained: :class:`TrainConfig`, the one place its defaults live.

Torch-free, so that ``neural-format train``/``ablate`` and ``python -m neural_models.ddp_train``
read their flags' defaults from it without importing torch. :mod:`neural_models.train` uses it
(and re-exports it). Fine-tuning the report generator is another concept with its own config,
:class:`neural_builders.vlm.generator_config.FinetuneConfig`.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

# graphs per batch when a trained model scores graphs (train, evaluate, generate-reports, ddp_train);
# saved in each run's config.json, so that evaluate reproduces the run's test scores bit for bit
PREDICT_BATCH_SIZE = 64
# the MPNN's width and dropout: TrainConfig's defaults, and the models' when built directly
HIDDEN = 64
DROPOUT = 0.2


@dataclass
class TrainConfig:
    model: str = "gcn"
    hidden: int = HIDDEN
    dropout: float = DROPOUT
    lr: float = 1e-3
    weight_decay: float = 5e-4
    batch_size: int = 32
    max_epochs: int = 100
    patience: int = 10
    seed: int = 0
    workers: int = 0  # loader processes building training batches (0: in this process)

    def to_dict(self) -> dict:
        return asdict(self)
