"""DDP training over a sharded collection: 2 processes vs one process, same seed (CPU/gloo; GPU when present)."""
import json
import os
import signal
import socket
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("torch_geometric")

from neural_format.collections.collection import append_shard  # noqa: E402
from neural_format.collections.synthetic import synthetic_meta  # noqa: E402
from neural_models.ddp_train import labelled_indices, train_distributed  # noqa: E402
from neural_models.planted import planted_records  # noqa: E402
from neural_models.splits import stratified_group_split  # noqa: E402
from neural_models.train import TrainConfig  # noqa: E402

EPOCHS, GLOBAL_BATCH = 6, 8


def _collection(tmp_path):
    """A 2-shard planted collection whose training split has an even size (no sampler padding)."""
    meta = synthetic_meta(feature_dim=8)
    for n in range(60, 90, 2):
        records = list(planted_records(n, meta, seed=1, image_signal=1.0, patches=(2, 8), entities=(1, 4)))
        directory = tmp_path / f"planted-{n}"
        append_shard(directory, records[:n // 2], meta)
        append_shard(directory, records[n // 2:], meta)
        _, labels, groups, _, _ = labelled_indices(directory, "pneumonia")
        if len(stratified_group_split(labels, groups, seed=0).train) % 2 == 0:
            return directory
    raise AssertionError("no collection size gave an even training split")


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _torchrun(data, out, device, nproc=2):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=os.getcwd())
    cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={nproc}", f"--master_port={_free_port()}",
           "--master_addr=127.0.0.1", "-m", "neural_models.ddp_train", "--data", str(data), "--out", str(out),
           "--max-epochs", str(EPOCHS), "--patience", str(EPOCHS), "--batch-size", str(GLOBAL_BATCH),
           "--dropout", "0", "--hidden", "16", "--lr", "0.01", "--timeout", "60", "--device", device]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        log, _ = proc.communicate(timeout=170)
    finally:
        if proc.poll() is None:  # never leave ranks behind
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 0, log.decode(errors="replace")[-3000:]
    return json.loads((out / "metrics.json").read_text())


def _compare_with_single_process(data, ddp, device, rtol):
    assert ddp["world_size"] == 2 and ddp["per_rank_batch"] == GLOBAL_BATCH // 2
    losses = [h["train_loss"] for h in ddp["history"]]
    assert losses[-1] < losses[0]  # it learns
    import torch
    torch.set_num_threads(1)
    config = TrainConfig(model="gcn", hidden=16, dropout=0.0, lr=0.01, batch_size=GLOBAL_BATCH,
                         max_epochs=EPOCHS, patience=EPOCHS, seed=0)
    single = train_distributed(data, "pneumonia", config, global_batch=GLOBAL_BATCH, device=device)
    assert single["world_size"] == 1 and single["device"] == ddp["device"]
    assert np.allclose(losses, [h["train_loss"] for h in single["history"]], rtol=rtol, atol=10 * rtol)
    assert np.allclose([h["val_auc"] for h in ddp["history"]], [h["val_auc"] for h in single["history"]],
                       atol=1e-6 if rtol < 1e-3 else 0.02)
    return single


@pytest.mark.slow  # two torchrun ranks each import torch
def test_ddp_two_processes_match_single_process(tmp_path):
    """Two CPU ranks over gloo (also on a GPU machine: the CPU path is what CI has)."""
    data = _collection(tmp_path)
    out = tmp_path / "run"
    ddp = _torchrun(data, out, "cpu")
    assert ddp["device"] == "cpu"
    assert (out / "model.safetensors").exists() or any(out.iterdir())
    single = _compare_with_single_process(data, ddp, "cpu", rtol=1e-4)
    assert ddp["best_epoch"] == single["best_epoch"]
    assert abs(ddp["test_auc"] - single["test_auc"]) < 1e-6
    # the DDP run's model evaluates like one from `neural-format train`: same test split, same scores
    from neural_format.cli import main as cli
    assert cli(["evaluate", str(out), str(data), "--bootstrap", "10"]) == 0
    evaluation = json.loads((out / "evaluation.json").read_text())
    assert evaluation["reproduced"] is True and evaluation["test"]["n"] == ddp["test"]


def test_ddp_flags_are_those_of_train():
    from neural_models.ddp_train import build_parser
    args = build_parser().parse_args(["--data", "d", "--max-epochs", "3", "--batch-size", "8", "--workers", "2"])
    assert (args.max_epochs, args.batch_size, args.workers) == (3, 8, 2)
    older = build_parser().parse_args(["--data", "d", "--epochs", "4", "--global-batch", "16"])
    assert (older.max_epochs, older.batch_size) == (4, 16)


@pytest.mark.gpu
@pytest.mark.slow
def test_ddp_two_ranks_on_the_gpus_match_single_process(tmp_path):
    """Two ranks on the visible GPUs (sharing one when there is one: gloo; else nccl), tensors on CUDA."""
    data = _collection(tmp_path)
    ddp = _torchrun(data, tmp_path / "run", "auto")
    assert ddp["device"] == "cuda"
    _compare_with_single_process(data, ddp, "cuda", rtol=1e-3)  # CUDA scatter sums run in any order
