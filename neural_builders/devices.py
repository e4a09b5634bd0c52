"""Which torch device a process uses, and which process-group backend goes with it.

One rule for the single-process build, the distributed build (one shard per rank) and DDP
training:

* ``cpu`` is the CPU; ``auto`` is a GPU when one is visible, else the CPU;
* ``auto`` or ``cuda`` under a launcher (``torchrun`` sets ``LOCAL_RANK``) gives local rank ``r``
  the GPU ``cuda:(r mod G)`` of the ``G`` visible GPUs: one rank per GPU when there are enough,
  ranks sharing a GPU when there are more ranks than GPUs (two ranks on one H200, for example);
* ``cuda:N`` is that GPU for every rank, and must exist;
* anything else that asks for a GPU that is not there, or names no device, is a
  :class:`~neural_builders.errors.DeviceError` (``NB-D001``) saying what was asked and what is
  visible, raised before any CUDA call (which would fail with "invalid device ordinal").

:func:`rank_device` is the pure rule (strings in, a device string out), tested on any machine;
:func:`resolve_device` applies it to this process (environment and ``torch.cuda``).

Backends: NCCL moves CUDA tensors only and refuses two ranks on one GPU, so
:func:`process_group_backend` picks ``nccl`` only when the rank's tensors are on CUDA and every
local rank has a GPU of its own, else ``gloo`` (which works with CPU tensors, and with CUDA
tensors on a shared GPU).
"""
from __future__ import annotations

import os
import re
from typing import Optional

from .errors import DEVICE_UNAVAILABLE, DeviceError
from . import optional_deps

__all__ = ["rank_device", "resolve_device", "process_group_backend", "launch_env"]

_CUDA = re.compile(r"^cuda(?::(\d+))?$")


def rank_device(requested: str = "auto", *, rank: int = 0, local_rank: Optional[int] = None, world_size: int = 1,
                device_count: int = 0) -> str:
    """The device string (``"cpu"``, ``"cuda:K"``, ...) that a process of this rank uses.

    ``device_count`` is the number of visible GPUs; ``local_rank`` defaults to ``rank`` (one node).
    """
    local_rank = rank if local_rank is None else local_rank
    if world_size < 1 or not 0 <= rank < world_size or local_rank < 0 or local_rank > rank:
        raise DeviceError(DEVICE_UNAVAILABLE, "inconsistent launch: rank and local rank must lie in the world",
                          location=f"rank {rank}", expected=f"0 <= local_rank <= rank < world_size={world_size}",
                          found=f"rank={rank}, local_rank={local_rank}")
    name = str(requested).strip().lower()
    if name == "cpu":
        return "cpu"
    if name == "auto":
        return f"cuda:{local_rank % device_count}" if device_count > 0 else "cpu"
    match = _CUDA.match(name)
    if match is None:
        if name in ("mps", "xpu", "meta") or re.match(r"^(mps|xpu)(:\d+)?$", name):
            return name  # other accelerators: taken as given, one device per process
        raise DeviceError(DEVICE_UNAVAILABLE, f"unknown device {requested!r}", location=f"rank {rank}",
                          expected="auto, cpu, cuda or cuda:N", found=requested)
    if device_count == 0:
        raise DeviceError(DEVICE_UNAVAILABLE, f"device {requested!r} asks for a GPU but none is visible "
                          "(use --device cpu or auto)", location=f"rank {rank}", expected="a CUDA GPU",
                          found="0 GPUs")
    if match.group(1) is None:
        return f"cuda:{local_rank % device_count}"
    index = int(match.group(1))
    if index >= device_count:
        raise DeviceError(DEVICE_UNAVAILABLE, f"device {requested!r} does not exist", location=f"rank {rank}",
                          expected=f"cuda:0 .. cuda:{device_count - 1}", found=requested)
    return f"cuda:{index}"


def process_group_backend(device: str, *, local_world_size: int = 1, device_count: int = 0,
                          requested: Optional[str] = None) -> str:
    """``nccl`` when the rank's tensors are on CUDA and no two local ranks share a GPU, else ``gloo``.

    ``requested`` (a ``--backend`` option) wins, except NCCL where it cannot work.
    """
    on_cuda = str(device).startswith("cuda")
    shared = local_world_size > max(device_count, 1)
    if requested:
        requested = requested.lower()
        if requested == "nccl" and not on_cuda:
            raise DeviceError(DEVICE_UNAVAILABLE, "the nccl backend needs the rank's tensors on a GPU",
                              location="--backend", expected="gloo for a CPU run", found=f"nccl with {device}")
        if requested == "nccl" and shared:
            raise DeviceError(DEVICE_UNAVAILABLE, "nccl cannot run two ranks on one GPU",
                              location="--backend", expected=f"at most {device_count} local ranks, or gloo",
                              found=f"{local_world_size} local ranks on {device_count} GPUs")
        return requested
    return "nccl" if on_cuda and not shared else "gloo"


def launch_env(environ=None) -> dict:
    """``rank``, ``local_rank``, ``world_size`` and ``local_world_size`` as a launcher set them."""
    environ = os.environ if environ is None else environ
    rank = int(environ.get("RANK", 0))
    world = int(environ.get("WORLD_SIZE", 1))
    local_rank = int(environ.get("LOCAL_RANK", rank))
    return {"rank": rank, "local_rank": local_rank, "world_size": world,
            "local_world_size": int(environ.get("LOCAL_WORLD_SIZE", world))}


def resolve_device(requested: str = "auto"):
    """This process's ``torch.device`` under :func:`rank_device` (environment + visible GPUs)."""
    torch = optional_deps.load("torch", needed_by="resolve_device")
    env = launch_env()
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return torch.device(rank_device(requested, rank=env["rank"], local_rank=env["local_rank"],
                                    world_size=env["world_size"], device_count=count))
