"""The attribute-heap defects through every source kind and superblock version (issue 14, item 1).

HDF5 2.0 hangs on a zeroed global heap and allocates 3.2 GB for a 3 GiB vlen length before any
Python guard can run; ``heap_guard`` must refuse both whatever the source (path, ``BytesIO``, file
object, ``open_collection([BytesIO])``, ``memory://``) and whatever the layout (superblock 0 as
the SDK writes, superblock 3 as h5py's ``libver="latest"`` writes). One rlimited subprocess runs
them all (tests/hostile/run_sources.py) under a wall-clock timeout: a hang fails the test.
"""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("fsspec")

HERE = Path(__file__).parent / "hostile"
if "hostile_generate" not in sys.modules:
    _spec = importlib.util.spec_from_file_location("hostile_generate", HERE / "generate.py")
    sys.modules["hostile_generate"] = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(sys.modules["hostile_generate"])
generate = sys.modules["hostile_generate"]

HEAP_KINDS = ("global-heap-objects-zeroed", "attr-vlen-length-3gib", "superblock3-global-heap-zeroed",
              "superblock3-attr-vlen-length-3gib", "attr-compound-vlen-length-3gib")
SOURCES = ("path", "BytesIO", "file object", "open_collection([BytesIO])", "memory:// URL",
           "validate(path)", "validate(BytesIO)", "validate(memory:// URL)")


@pytest.fixture(scope="module")
def sources_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("hostile-sources")
    kinds = [k for k in generate.KINDS if k.name in HEAP_KINDS]
    generate.generate(out, kinds=kinds)
    files = [str(out / f"{name}.h5") for name in HEAP_KINDS] + [str(out / "_bases" / "_base_gzip.h5")]
    proc = subprocess.run([sys.executable, str(HERE / "run_sources.py"), "--as-mib", "2048", "--cpu-s", "60", *files],
                          capture_output=True, text=True, timeout=120, cwd=out)
    done = {}
    for line in proc.stdout.splitlines():
        event = json.loads(line)
        if event["phase"] == "done":
            done[(Path(event["file"]).stem, event["source"])] = event
    return proc, done


@pytest.mark.parametrize("name", HEAP_KINDS)
@pytest.mark.parametrize("source", SOURCES)
def test_heap_damage_refused_from_every_source(sources_run, name, source):
    proc, done = sources_run
    event = done.get((name, source))
    assert event is not None, f"never finished (crash or hang): rc {proc.returncode} {proc.stderr[-1500:]}"
    expected = generate.KINDS[[k.name for k in generate.KINDS].index(name)].reader
    if source.startswith("validate"):
        assert event["outcome"] == [expected], event
    else:
        assert event["outcome"] == expected, event
    assert event["seconds"] < 5, event


@pytest.mark.parametrize("source", SOURCES)
def test_valid_file_reads_from_every_source(sources_run, source):
    _, done = sources_run
    event = done[("_base_gzip", source)]
    assert event["outcome"] == ([] if source.startswith("validate") else "ok"), event
