"""``neural-format validate`` and ``verify`` check files in a resource-limited child by default.

The child's wall-clock and address-space limits hold (a bound too small for the work ends as one
NF-F001 finding and exit 2, never as a hang or a crash); ``--in-process`` opts out; a hostile
file's coded error comes back from the child intact.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

import neural_format as nf
from neural_format.collections.synthetic import synthetic_meta, synthetic_records

ROOT = Path(__file__).resolve().parents[1]
META = synthetic_meta(feature_dim=16)


def cli(*args, timeout=120):
    import os
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "neural_format", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=env)


@pytest.fixture(scope="module")
def valid(tmp_path_factory):
    path = tmp_path_factory.mktemp("iso") / "ok.h5"
    nf.write_collection(path, META, synthetic_records(20, META, seed=0), fsync=False)
    return path


@pytest.mark.parametrize("command", ["validate", "verify"])
def test_default_runs_isolated_and_agrees_with_in_process(valid, command):
    isolated = cli(command, valid, "--json")
    direct = cli(command, valid, "--json", "--in-process")
    assert isolated.returncode == direct.returncode, (isolated.stderr, direct.stderr)
    a, b = json.loads(isolated.stdout), json.loads(direct.stdout)
    assert a["records"] == b["records"] == 20
    key = "findings" if command == "validate" else "problems"
    assert a[key] == b[key]


@pytest.mark.parametrize("command", ["validate", "verify"])
def test_wall_clock_bound_holds(valid, command):
    started = time.perf_counter()
    proc = cli(command, valid, "--timeout-s", "0.05")
    assert time.perf_counter() - started < 60
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "NF-F001" in proc.stdout and "did not finish" in proc.stdout


@pytest.mark.parametrize("command", ["validate", "verify"])
def test_memory_bound_holds(valid, command):
    proc = cli(command, valid, "--memory-mib", "64")  # too little to even import numpy
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "NF-F001" in proc.stdout and "Traceback" not in proc.stdout


def test_hostile_file_refused_through_the_child(tmp_path):
    import importlib.util
    here = ROOT / "tests" / "hostile"
    if "hostile_generate" not in sys.modules:
        spec = importlib.util.spec_from_file_location("hostile_generate", here / "generate.py")
        sys.modules["hostile_generate"] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules["hostile_generate"])
    generate = sys.modules["hostile_generate"]
    generate.generate(tmp_path, kinds=[k for k in generate.KINDS if k.name == "superblock3-global-heap-zeroed"])
    for command in ("validate", "verify"):
        proc = cli(command, tmp_path / "superblock3-global-heap-zeroed.h5", timeout=60)
        assert proc.returncode == 2 and "NF-F001" in proc.stdout, proc.stdout + proc.stderr
