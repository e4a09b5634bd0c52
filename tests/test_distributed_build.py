"""Distributed build: torchrun with 2 CPU processes (gloo) equals a single-process build; resume."""
import os
import signal
import socket
import subprocess
import sys

import pytest

from neural_builders.distributed_build import build_sharded, collection_id_for, rank_slice, synthetic_build
from neural_format.collections.collection import open_collection
from neural_format.errors import SchemaError
from neural_format.collections.manifest import read_manifest

CASES = 6
IDS = [f"rec-{i:06d}" for i in range(CASES)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _contents(directory):
    with open_collection(directory) as coll:
        return dict(zip(coll.record_ids(), (h.tobytes() for h in coll.stored_hashes())))


def test_rank_slice_partitions_in_order():
    items = list(range(11))
    parts = [rank_slice(items, r, 3) for r in range(3)]
    assert sum(parts, []) == items and [len(p) for p in parts] == [3, 4, 4]
    assert rank_slice([7], 0, 2) == [] and rank_slice([7], 1, 2) == [7]
    with pytest.raises(ValueError):
        rank_slice(items, 3, 3)


@pytest.fixture
def phantom_inputs(tmp_path):
    """6 phantom cases (images + reports CSV) and a tiny random report generator saved to disk."""
    pytest.importorskip("neural_builders.build")
    import torch

    from neural_builders.phantom import generate_cases, write_cases
    from neural_builders.vlm.model import ReportGenerator, tiny_config
    from neural_builders.vlm.tokenizer import train_report_tokenizer
    torch.manual_seed(0)
    cases = generate_cases(CASES, seed=3, size=(128, 128))
    paths = write_cases(cases, tmp_path / "data")
    tokenizer = train_report_tokenizer([c.report for c in cases])
    ReportGenerator(tiny_config(len(tokenizer))).save_pretrained(tmp_path / "model", tokenizer)
    # batch size 1: in general a batched matmul may round differently for another batch composition
    return ["--images", str(paths["images"]), "--reports", str(paths["reports"]), "--model",
            str(tmp_path / "model"), "--batch-size", "1"], [c.case_id for c in cases]


@pytest.mark.slow  # two torchrun ranks each import torch
def test_torchrun_two_processes_equal_single_process(tmp_path, phantom_inputs):
    """The issue's own entry point: torchrun -m neural_builders.build hands over to the sharded build."""
    options, case_ids = phantom_inputs
    out = tmp_path / "dist"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=os.getcwd())
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={_free_port()}",
           "--master_addr=127.0.0.1", "-m", "neural_builders.build", *options, "--out", str(out),
           "--timeout", "120"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        log, _ = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:  # never leave ranks behind
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 0, log.decode(errors="replace")[-3000:]
    manifest = read_manifest(out)
    assert [e.path for e in manifest.shards] == ["shard-00000-of-00002.h5", "shard-00001-of-00002.h5"]
    assert [e.records for e in manifest.shards] == [3, 3]
    assert manifest.collection_id == collection_id_for(sorted(case_ids), 2)

    from neural_builders.distributed_build import main as build_main
    single = tmp_path / "single"
    assert build_main([*options, "--out", str(single)]) == 0  # no torchrun: world size 1
    assert len(read_manifest(single).shards) == 1
    distributed, reference = _contents(out), _contents(single)
    assert sorted(distributed) == sorted(case_ids) and distributed == reference  # same IDs, same record hashes
    from neural_format.cli import main
    assert main(["verify", str(out)]) == 0


class SequentialGroup:
    """Stands in for gloo so that both ranks of a 2-process build can run one after the other here."""

    def __init__(self, world=2):
        self.world, self.entries = world, {}

    def gather(self, value, rank):
        self.entries[rank] = value
        return [self.entries[r] for r in range(self.world)] if rank == 0 else None

    def barrier(self):
        pass

    def close(self):
        pass


def _build_both(out, build_fn, inputs=tuple(range(CASES)), ids=IDS):
    group = SequentialGroup()
    return [build_sharded(list(inputs), build_fn, out, ids=list(ids), rank=r, world=2, group=group,
                          log=lambda _: None) for r in (1, 0)]


def test_rerun_skips_finished_shards_and_resumes(tmp_path):
    out = tmp_path / "c"
    calls = []

    def counting(indices, path):
        calls.append(list(indices))
        synthetic_build()(indices, path)

    _build_both(out, counting)
    assert calls == [[3, 4, 5], [0, 1, 2]]
    first = read_manifest(out)
    shard0 = out / first.shards[0].path
    stat0 = shard0.stat()
    (out / first.shards[1].path).unlink()  # as if rank 1 had died before renaming its shard
    (out / "manifest.json").unlink()
    (out / ".shard-00001-of-00002.h5.building.h5").write_bytes(b"half-written")
    calls.clear()
    summaries = _build_both(out, counting)
    assert calls == [[3, 4, 5]] and [s["skipped"] for s in summaries] == [False, True]
    assert shard0.stat().st_mtime_ns == stat0.st_mtime_ns
    second = read_manifest(out)
    assert [e.ids_sha256 for e in second.shards] == [e.ids_sha256 for e in first.shards]
    assert not (out / ".shard-00001-of-00002.h5.building.h5").exists()
    calls.clear()
    assert [s["manifest_written"] for s in _build_both(out, counting)] == [False, False] and calls == []


def test_finished_shard_of_another_build_is_refused(tmp_path):
    out = tmp_path / "c"
    _build_both(out, synthetic_build())
    with pytest.raises(SchemaError) as err:
        _build_both(out, synthetic_build(), inputs=range(4), ids=IDS[:4])
    assert err.value.code == "NF-C004"
