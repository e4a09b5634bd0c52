"""The hostile-input corpus (tests/hostile/generate.py) against the reader and the validator.

All files are processed by ONE subprocess (tests/hostile/run_corpus.py) that caps its address
space and CPU time before importing neural_format, under a wall-clock timeout here. A crash shows
as a negative return code and names the file it was working on; a hang as the timeout; a size
bomb as a MemoryError (reported as uncaught) or as a high peak RSS.
"""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent / "hostile"
_spec = importlib.util.spec_from_file_location("hostile_generate", HERE / "generate.py")
generate = sys.modules["hostile_generate"] = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(generate)

KINDS = {case.name: case for case in generate.KINDS}
AS_LIMIT_MIB = 2048  # numpy + h5py + pydantic need ~1.2 GiB of address space to import
CPU_LIMIT_S = 60
WALL_TIMEOUT_S = 90
PEAK_RSS_LIMIT_MIB = 400  # the base file holds 6 tiny records; nothing may read a declared bomb


@pytest.fixture(scope="session")
def corpus_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("hostile")
    generate.generate(out)
    files = [str(out / f"{name}.h5") for name in KINDS]
    proc = subprocess.run(
        [sys.executable, str(HERE / "run_corpus.py"), "--as-mib", str(AS_LIMIT_MIB), "--cpu-s", str(CPU_LIMIT_S), *files],
        capture_output=True, text=True, timeout=WALL_TIMEOUT_S, cwd=out)
    started, done = [], {}
    for line in proc.stdout.splitlines():
        event = json.loads(line)
        name = Path(event["file"]).stem
        if event["phase"] == "start":
            started.append(name)
        else:
            done[name] = event
    return proc, started, done


def test_corpus_is_big_enough_and_families_covered():
    assert len(KINDS) >= 40
    families = {case.family for case in KINDS.values()}
    assert {"not-hdf5", "truncated", "flip-header", "flip-data", "offsets", "indices", "shapes", "bombs",
            "non-finite", "dtypes", "filters", "links", "versions", "attributes", "ids"} <= families


def test_runner_survived_every_file(corpus_run):
    proc, started, done = corpus_run
    crashed_on = [name for name in started if name not in done]
    assert proc.returncode == 0, f"runner died (rc {proc.returncode}) on {crashed_on}: {proc.stderr[-2000:]}"
    assert sorted(done) == sorted(KINDS)


def test_no_large_allocation(corpus_run):
    _, _, done = corpus_run
    peak = max(event["rss_mib"] for event in done.values())
    assert peak < PEAK_RSS_LIMIT_MIB, f"peak RSS {peak} MiB"
    slow = {name: e["seconds"] for name, e in done.items() if e["seconds"] > 5}
    assert not slow, f"files that took more than 5 s: {slow}"


@pytest.mark.parametrize("name", sorted(KINDS))
def test_hostile_kind(corpus_run, name):
    case = KINDS[name]
    _, _, done = corpus_run
    if name not in done:
        pytest.fail(f"{name}: the runner never finished this file (crash or hang)")
    event = done[name]
    assert event["reader"] == case.reader, f"reader: expected {case.reader}, got {event['reader']}"
    findings = event["validator"]
    assert isinstance(findings, list), f"validator did not return a report: {findings}"
    if case.validator is None:
        assert findings == [], f"validator reported errors on a readable file: {findings}"
    else:
        assert case.validator in findings, f"validator: expected {case.validator} among {findings}"


def test_limits_are_enforced(tmp_path):
    """The runner's limits are real: an unguarded 3 GiB allocation fails inside them."""
    probe = ("import sys; sys.path.insert(0, %r); import run_corpus; run_corpus.limit(%d, 10)\n"
             "import numpy as np\n"
             "try:\n    np.ones(3 << 30, np.uint8)\nexcept MemoryError:\n    print('refused')\n"
             % (str(HERE), AS_LIMIT_MIB))
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip() == "refused", proc.stderr[-500:]
