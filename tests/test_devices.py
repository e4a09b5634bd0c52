"""Rank -> device mapping and the process-group backend: pure rules, checked on any machine."""
import pytest

from neural_builders.devices import launch_env, process_group_backend, rank_device
from neural_builders.errors import DEVICE_UNAVAILABLE, DeviceError
from neural_format.errors import NeuralFormatError


def test_auto_gives_each_local_rank_a_gpu_and_shares_when_ranks_outnumber_gpus():
    # two ranks, one GPU (the H200 case that failed with "invalid device ordinal"): both on cuda:0
    assert [rank_device("auto", rank=r, world_size=2, device_count=1) for r in range(2)] == ["cuda:0", "cuda:0"]
    # one rank per GPU when there are enough
    assert [rank_device("auto", rank=r, world_size=4, device_count=4) for r in range(4)] == \
        ["cuda:0", "cuda:1", "cuda:2", "cuda:3"]
    # five ranks on two GPUs: round robin by local rank
    assert [rank_device("cuda", rank=r, world_size=5, device_count=2) for r in range(5)] == \
        ["cuda:0", "cuda:1", "cuda:0", "cuda:1", "cuda:0"]
    # two nodes of two ranks each: the local rank picks the GPU, not the global rank
    assert [rank_device("auto", rank=r, local_rank=r % 2, world_size=4, device_count=2) for r in range(4)] == \
        ["cuda:0", "cuda:1", "cuda:0", "cuda:1"]
    # no GPU: the CPU, for any world size
    assert {rank_device("auto", rank=r, world_size=3, device_count=0) for r in range(3)} == {"cpu"}
    assert rank_device("cpu", rank=1, world_size=2, device_count=8) == "cpu"
    assert rank_device("CUDA:1", rank=0, world_size=2, device_count=2) == "cuda:1"  # explicit: every rank


@pytest.mark.parametrize("requested, kwargs, message", [
    ("cuda", dict(device_count=0), "none is visible"),
    ("cuda:0", dict(device_count=0), "none is visible"),
    ("cuda:1", dict(device_count=1), "does not exist"),
    ("gpu", dict(device_count=1), "unknown device"),
    ("auto", dict(rank=2, world_size=2, device_count=1), "inconsistent launch"),
    ("auto", dict(rank=0, local_rank=1, world_size=2, device_count=1), "inconsistent launch"),
])
def test_a_misconfiguration_is_a_coded_error_not_a_cuda_traceback(requested, kwargs, message):
    with pytest.raises(DeviceError, match=message) as info:
        rank_device(requested, **kwargs)
    assert info.value.code == DEVICE_UNAVAILABLE == "NB-D001"
    assert isinstance(info.value, NeuralFormatError) and info.value.expected is not None


def test_backend_follows_the_device_actually_used():
    assert process_group_backend("cpu", local_world_size=2, device_count=0) == "gloo"
    assert process_group_backend("cpu", local_world_size=2, device_count=4) == "gloo"  # GPUs there, tensors not
    assert process_group_backend("cuda:1", local_world_size=2, device_count=2) == "nccl"
    assert process_group_backend("cuda:0", local_world_size=2, device_count=1) == "gloo"  # ranks share a GPU
    assert process_group_backend("cuda:0", local_world_size=2, device_count=1, requested="gloo") == "gloo"
    with pytest.raises(DeviceError, match="needs the rank's tensors on a GPU"):
        process_group_backend("cpu", local_world_size=2, device_count=0, requested="nccl")
    with pytest.raises(DeviceError, match="two ranks on one GPU"):
        process_group_backend("cuda:0", local_world_size=3, device_count=2, requested="nccl")


def test_launch_env_reads_what_torchrun_sets():
    env = {"RANK": "3", "LOCAL_RANK": "1", "WORLD_SIZE": "4", "LOCAL_WORLD_SIZE": "2"}
    assert launch_env(env) == {"rank": 3, "local_rank": 1, "world_size": 4, "local_world_size": 2}
    assert launch_env({}) == {"rank": 0, "local_rank": 0, "world_size": 1, "local_world_size": 1}


def test_distributed_build_and_ddp_refuse_a_missing_gpu_with_the_code(monkeypatch, tmp_path):
    import argparse

    import torch

    from neural_builders.distributed_build import config_from_args
    missing = f"cuda:{torch.cuda.device_count() + 7}"
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(DeviceError) as info:
        config_from_args(argparse.Namespace(device=missing))
    assert info.value.code == "NB-D001"
    monkeypatch.setenv("WORLD_SIZE", "1")
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("LOCAL_RANK", "0")
    from neural_models.ddp_train import main
    with pytest.raises(DeviceError) as info:
        main(["--data", str(tmp_path / "none"), "--device", missing])
    assert info.value.code == "NB-D001"
