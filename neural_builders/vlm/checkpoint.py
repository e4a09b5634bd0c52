"""Training checkpoints without pickle: weights, optimizer state and RNG as safetensors, the rest as JSON.

A checkpoint directory holds the model directory files (see :mod:`neural_builders.vlm.model`),
``optimizer.safetensors`` (every tensor of the optimizer state as ``state.<param>.<name>``, plus
``rng.torch``) and ``trainer_state.json`` (step, losses, the optimizer's param groups and the
training configuration). It is written to a temporary sibling and renamed into place, so a
crash mid-save leaves the previous checkpoint intact.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from .. import optional_deps

optional_deps.require("torch", needed_by="fine-tuning checkpoints")
import torch  # noqa: E402 (after the NF-E-EXTRA check above)

OPTIMIZER_FILE = "optimizer.safetensors"
STATE_FILE = "trainer_state.json"


def optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict, list]:
    state = optimizer.state_dict()
    tensors, groups = {}, []
    for index, values in state["state"].items():
        for name, value in values.items():
            tensor = value if torch.is_tensor(value) else torch.tensor(value)
            tensors[f"state.{index}.{name}"] = tensor.detach().contiguous().cpu()
    for group in state["param_groups"]:
        groups.append({k: (list(v) if isinstance(v, tuple) else v) for k, v in group.items()})
    return tensors, groups


def load_optimizer(optimizer: torch.optim.Optimizer, tensors: dict, groups: list) -> None:
    state: dict = {}
    for key, tensor in tensors.items():
        if not key.startswith("state."):
            continue
        _, index, name = key.split(".", 2)
        state.setdefault(int(index), {})[name] = tensor
    for group in groups:
        if "betas" in group:
            group["betas"] = tuple(group["betas"])
    optimizer.load_state_dict({"state": state, "param_groups": groups})


def save_checkpoint(directory, model, tokenizer, optimizer, trainer_state: dict) -> Path:
    save = optional_deps.load("safetensors.torch", needed_by="saving a checkpoint").save
    directory = Path(directory)
    tmp = directory.with_name(directory.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    model.save_pretrained(tmp, tokenizer=tokenizer)
    tensors, groups = optimizer_tensors(optimizer)
    tensors["rng.torch"] = torch.get_rng_state()
    # bytes written like every sibling, so the mode follows the umask (save_file creates 0600)
    (tmp / OPTIMIZER_FILE).write_bytes(save(tensors))
    (tmp / STATE_FILE).write_text(json.dumps({**trainer_state, "param_groups": groups}, indent=1))
    old = directory.with_name(directory.name + ".old")
    if directory.exists():
        if old.exists():
            shutil.rmtree(old)
        os.replace(directory, old)
    os.replace(tmp, directory)
    if old.exists():
        shutil.rmtree(old)
    return directory


def load_checkpoint(directory, optimizer_factory, device="cpu"):
    """``(model, tokenizer, optimizer, trainer_state)`` from a checkpoint directory."""
    load_file = optional_deps.load("safetensors.torch", needed_by="loading a checkpoint").load_file

    from .model import TOKENIZER_DIR, ReportGenerator
    from .tokenizer import load_report_tokenizer
    directory = Path(directory)
    model = ReportGenerator.from_pretrained(directory, device=device)
    tokenizer = load_report_tokenizer(directory / TOKENIZER_DIR)
    state = json.loads((directory / STATE_FILE).read_text())
    optimizer = optimizer_factory(model)
    tensors = load_file(str(directory / OPTIMIZER_FILE), device=str(device))
    if "rng.torch" in tensors:
        torch.set_rng_state(tensors.pop("rng.torch").cpu())
    load_optimizer(optimizer, tensors, state.pop("param_groups"))
    return model, tokenizer, optimizer, state
