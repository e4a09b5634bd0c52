"""Hypothesis mutation fuzzing of the reader and the validator over a small valid file.

Each example applies a few byte-level mutations (bit flips, overwrites, inserted or deleted runs,
truncation) to a valid collection file, biased towards its first 4 KiB where the superblock,
object headers, B-trees and heaps live. Then:

* the reader opens it and reads every record, bulk and one by one, and recomputes the hashes;
  the only exception allowed is a :class:`~neural_format.errors.NeuralFormatError`;
* ``validate`` must return a report (never raise) whose finding codes are all spec clauses.

The search runs in a subprocess (this file run as a script) under RLIMIT_AS / RLIMIT_CPU and a
wall-clock timeout, so a crash in the HDF5 C library or a hang fails the test instead of killing
the test session. ``derandomize=True`` makes the example sequence the same on every run.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

EXAMPLES = 120
AS_LIMIT_MIB = 2048


def base_file(directory: Path) -> bytes:
    import neural_format as nf
    from neural_format.collections.synthetic import synthetic_meta, synthetic_records
    meta = synthetic_meta(feature_dim=4)
    path = directory / "base.h5"
    nf.write_collection(path, meta, synthetic_records(3, meta, seed=5, patches=(1, 4), entities=(1, 3)),
                        compression="gzip", fsync=False)
    return path.read_bytes()


def mutate(data: bytes, ops) -> bytes:
    buffer = bytearray(data)
    for kind, position, value in ops:
        if not buffer:
            break
        at = position % len(buffer)
        if kind == "flip":
            buffer[at] ^= (value % 255) + 1
        elif kind == "set":
            buffer[at] = value % 256
        elif kind == "insert":
            buffer[at:at] = bytes([value % 256]) * (1 + value % 16)
        elif kind == "delete":
            del buffer[at:at + 1 + value % 64]
        elif kind == "truncate":
            del buffer[at:]
        elif kind == "int64":  # plant a large or negative 8-byte value (sizes, offsets, addresses)
            buffer[at:at + 8] = (value * 0x0101010101010101 % (1 << 64)).to_bytes(8, "little")
    return bytes(buffer)


def exercise(path: Path) -> str:
    """Reader then validator on one file; returns the reader's outcome; raises on any defect."""
    import neural_format as nf
    from neural_format.files.integrity import verify_hashes
    from neural_format.validation import CLAUSES, validate
    outcome = "ok"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            with nf.open(path) as reader:
                reader.read_all()
                for i in range(len(reader)):
                    reader[i]
                verify_hashes(reader, workers=1)
        except nf.NeuralFormatError as exc:
            outcome = exc.code
        report = validate(path)
    unknown = {f.code for f in report.findings} - set(CLAUSES)
    assert not unknown, f"validator reported codes that are no clause: {unknown}"
    return outcome


def run_search(examples: int, out: Path) -> dict:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    workdir = Path(tempfile.mkdtemp(prefix="nf-fuzz-"))
    data = base_file(workdir)
    position = st.one_of(st.integers(0, 4095), st.integers(0, len(data) - 1))
    op = st.tuples(st.sampled_from(["flip", "set", "insert", "delete", "truncate", "int64"]), position,
                   st.integers(0, 1 << 16))
    stats = {"examples": 0, "outcomes": {}}

    @settings(max_examples=examples, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(st.lists(op, min_size=1, max_size=4))
    def fuzz(ops):
        target = workdir / "mutated.h5"
        target.write_bytes(mutate(data, ops))
        outcome = exercise(target)
        stats["examples"] += 1
        stats["outcomes"][outcome] = stats["outcomes"].get(outcome, 0) + 1

    fuzz()
    out.write_text(json.dumps(stats))
    return stats


def test_reader_and_validator_survive_mutations(tmp_path):
    stats_path = tmp_path / "stats.json"
    proc = subprocess.run([sys.executable, __file__, str(EXAMPLES), str(stats_path)],
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, f"rc {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    stats = json.loads(stats_path.read_text())
    print(f"\nfuzz examples run: {stats['examples']}; reader outcomes: {stats['outcomes']}")
    assert stats["examples"] >= EXAMPLES
    assert len(stats["outcomes"]) >= 3  # the mutations reach more than one guard


if __name__ == "__main__":
    import resource
    resource.setrlimit(resource.RLIMIT_AS, (AS_LIMIT_MIB << 20, AS_LIMIT_MIB << 20))
    cpu_s = max(200, 2 * int(sys.argv[1]))  # ~0.2 CPU-s per example; the limit only stops a spin
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s + 5))
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    os.environ.setdefault("HYPOTHESIS_STORAGE_DIRECTORY", tempfile.mkdtemp(prefix="nf-hyp-"))
    run_search(int(sys.argv[1]), Path(sys.argv[2]))
