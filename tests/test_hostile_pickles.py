"""Hostile torch.save pickles against ``convert_pickle`` (tests/hostile/pickles.py).

One rlimited subprocess converts every file (tests/hostile/run_pickles.py). Each kind must give
its exact code (or convert, for the controls), the subprocess must survive all of them, and no
payload may have run: none of the marker files the payloads would create may exist.
"""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent / "hostile"
_spec = importlib.util.spec_from_file_location("hostile_pickles", HERE / "pickles.py")
pickles = sys.modules["hostile_pickles"] = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(pickles)

KINDS = {case.name: case.expect for case in pickles.PICKLE_KINDS}


@pytest.fixture(scope="session")
def pickle_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile-pickles")
    corpus, markers = root / "corpus", root / "markers"
    pickles.generate(corpus, markers)
    files = [str(corpus / f"{name}.pt") for name in KINDS]
    proc = subprocess.run([sys.executable, str(HERE / "run_pickles.py"), str(root / "out"), *files],
                          capture_output=True, text=True, timeout=120, cwd=markers)
    done = {}
    started = []
    for line in proc.stdout.splitlines():
        event = json.loads(line)
        (started.append(Path(event["file"]).stem) if event["phase"] == "start"
         else done.__setitem__(Path(event["file"]).stem, event))
    return proc, started, done, markers


def test_at_least_the_issue_kinds():
    assert len(KINDS) >= 20
    for required in ("reduce-os-system", "reduce-builtins-eval", "nested-pickle-as-storage-bytes",
                     "second-data-pkl-in-archive", "storage-numel-2-pow-60",
                     # issue 14, items 2, 7 and 8
                     "billion-laughs-legacy-magic", "billion-laughs-persistent-id", "billion-laughs-inmemory-class",
                     "zero-stride-broadcast-x", "nesting-200k-deep-legacy-magic", "long-4000-digits-as-y",
                     "long-4000-digits-as-inmemory-class", "x-shape-0-by-2-pow-40"):
        assert required in KINDS


def test_no_payload_ran_and_runner_survived(pickle_run):
    proc, started, done, markers = pickle_run
    assert proc.returncode == 0, f"rc {proc.returncode} on {[n for n in started if n not in done]}: {proc.stderr[-1500:]}"
    assert sorted(done) == sorted(KINDS)
    assert list(markers.iterdir()) == [], "a pickle payload ran"
    assert max(e["rss_mib"] for e in done.values()) < 400
    # under RLIMIT_AS 2 GiB and RLIMIT_CPU 60 s; none of them may come near: the billion-laughs
    # files took 30-40 s and all the memory allowed before they were fixed
    assert max(e["seconds"] for e in done.values()) < 10


@pytest.mark.parametrize("name", sorted(KINDS))
def test_pickle_kind(pickle_run, name):
    _, _, done, _ = pickle_run
    assert name in done, f"{name}: the converter never finished it (crash or hang)"
    assert done[name]["outcome"] == KINDS[name]


def test_payloads_are_live(tmp_path):
    """The marker check can fail: plain ``pickle.loads`` of the same payloads does run them."""
    for build in (pickles.evil_os_system, pickles.evil_eval, pickles.evil_stack_global):
        marker = tmp_path / f"{build.__name__}.marker"
        payload = tmp_path / f"{build.__name__}.pkl"
        payload.write_bytes(build(marker))
        subprocess.run([sys.executable, "-c", f"import pickle; pickle.loads(open({str(payload)!r}, 'rb').read())"],
                       check=True, timeout=60, capture_output=True)
        assert marker.exists(), build.__name__


def test_billion_laughs_are_real():
    """The memo-shared files really describe 10^14 leaves: plain pickle builds the nest at once."""
    import pickle as plain
    for kind in (b"l", b"t"):
        nest = plain.loads(b"\x80\x02" + pickles.billion_laughs(kind=kind) + b".")
        depth = 0
        while isinstance(nest, (list, tuple)) and nest and isinstance(nest[0], (list, tuple)):
            assert len(nest) == 10 and all(item is nest[0] for item in nest)
            nest, depth = nest[0], depth + 1
        assert depth == 13 and len(nest) == 10  # 10^14 leaves
