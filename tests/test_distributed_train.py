"""DDP training over a sharded collection: 2 CPU processes (gloo) vs one process, same seed."""
import json
import os
import signal
import socket
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("torch_geometric")

from neural_format.collection import append_shard  # noqa: E402
from neural_format.synthetic import synthetic_meta  # noqa: E402
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


@pytest.mark.slow  # two torchrun ranks each import torch
def test_ddp_two_processes_match_single_process(tmp_path):
    data = _collection(tmp_path)
    out = tmp_path / "run"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=os.getcwd())
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={_free_port()}",
           "--master_addr=127.0.0.1", "-m", "neural_models.ddp_train", "--data", str(data), "--out", str(out),
           "--epochs", str(EPOCHS), "--patience", str(EPOCHS), "--global-batch", str(GLOBAL_BATCH),
           "--dropout", "0", "--hidden", "16", "--lr", "0.01", "--timeout", "60"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        log, _ = proc.communicate(timeout=170)
    finally:
        if proc.poll() is None:  # never leave ranks behind
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 0, log.decode(errors="replace")[-3000:]
    ddp = json.loads((out / "metrics.json").read_text())
    assert ddp["world_size"] == 2 and ddp["per_rank_batch"] == GLOBAL_BATCH // 2
    losses = [h["train_loss"] for h in ddp["history"]]
    assert losses[-1] < losses[0]  # it learns
    assert (out / "model.safetensors").exists() or any(out.iterdir())

    import torch
    torch.set_num_threads(1)
    config = TrainConfig(model="gcn", hidden=16, dropout=0.0, lr=0.01, batch_size=GLOBAL_BATCH,
                         max_epochs=EPOCHS, patience=EPOCHS, seed=0)
    single = train_distributed(data, "pneumonia", config, global_batch=GLOBAL_BATCH)
    assert single["world_size"] == 1
    assert np.allclose(losses, [h["train_loss"] for h in single["history"]], rtol=1e-4, atol=1e-5)
    assert np.allclose([h["val_auc"] for h in ddp["history"]], [h["val_auc"] for h in single["history"]], atol=1e-6)
    assert ddp["best_epoch"] == single["best_epoch"]
    assert abs(ddp["test_auc"] - single["test_auc"]) < 1e-6
