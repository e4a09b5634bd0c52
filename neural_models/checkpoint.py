"""Saved models: weights as safetensors plus a JSON config, never pickle.

A model directory holds ``model.safetensors`` (the ``state_dict`` tensors, with the SHA-256 of
the JSON config in the safetensors metadata) and ``config.json`` (the model's constructor
arguments, its node-feature layout, the training settings and anything else the caller adds).
Loading rebuilds the module from the config with :func:`~neural_models.registry.model_from_config`
and fills it with :func:`safetensors.torch.load_file`; no code or object is ever unpickled.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from .graph_input import NodeFeatures
from .registry import model_from_config
from . import optional_deps

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
CHECKPOINT_FORMAT = "neural-models-checkpoint/1"


def _canonical(config: dict) -> bytes:
    return json.dumps(config, sort_keys=True, separators=(",", ":")).encode("utf-8")


def save_model(directory, model, features: NodeFeatures, extra: dict | None = None) -> Path:
    """Write ``model.safetensors`` and ``config.json`` into ``directory``; returns the directory."""
    save = optional_deps.load("safetensors.torch", needed_by="save_model").save

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    config = {"format": CHECKPOINT_FORMAT, "model": model.config(), "features": features.to_dict(),
              **(extra or {})}
    state = {name: tensor.detach().cpu().contiguous().clone() for name, tensor in model.state_dict().items()}
    # bytes written like config.json, so the mode follows the umask (safetensors' save_file creates 0600)
    (directory / WEIGHTS_NAME).write_bytes(save(state, metadata={"config_sha256": hashlib.sha256(_canonical(config)).hexdigest()}))
    (directory / CONFIG_NAME).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return directory


def load_config(directory) -> dict:
    path = Path(directory) / CONFIG_NAME
    if not path.is_file():
        from .errors import NO_MODEL, NoModelError
        directory = Path(directory)
        models = sorted(p.parent.name for p in directory.glob(f"*/{CONFIG_NAME}")) if directory.is_dir() else []
        hint = (f"this looks like a training run directory: pass one of its model directories "
                f"({', '.join(str(directory / m) for m in models)})" if models else
                "pass a model directory written by 'neural-format train' (RUN/fused, RUN/image, RUN/text) "
                "or the --out directory of neural_models.ddp_train")
        raise NoModelError(NO_MODEL, f"no saved model here; {hint}", location=str(directory),
                           expected=CONFIG_NAME, found="nothing" if not directory.exists() else "no such file")
    config = json.loads(path.read_text(encoding="utf-8"))
    if config.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path}: not a {CHECKPOINT_FORMAT} config (format={config.get('format')!r})")
    return config


def load_model(directory):
    """``(model in eval mode, NodeFeatures, config)`` from a directory written by :func:`save_model`."""
    safe_open = optional_deps.load("safetensors", needed_by="load_model").safe_open
    load_file = optional_deps.load("safetensors.torch", needed_by="load_model").load_file

    directory = Path(directory)
    config = load_config(directory)
    weights = directory / WEIGHTS_NAME
    with safe_open(str(weights), framework="pt") as handle:
        recorded = (handle.metadata() or {}).get("config_sha256")
    if recorded != hashlib.sha256(_canonical(config)).hexdigest():
        raise ValueError(f"{weights}: weights were saved with a different config.json (config_sha256 mismatch)")
    model = model_from_config(config["model"])
    model.load_state_dict(load_file(str(weights)), strict=True)
    model.eval()
    return model, NodeFeatures.from_dict(config["features"]), config
