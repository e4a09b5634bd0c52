"""Files that defeat in-process guards are bounded by ``neural_format.isolation.validate_isolated``.

HDF5 2.0 loops forever on a zeroed global heap collection and allocates what a corrupted
variable-length attribute declares, before any SDK guard can look (docs/safety.md, "Residual
risk"). Validating in a limited child process turns both into coded findings in bounded time.
"""
from __future__ import annotations

import importlib.util
import sys
import time
from pathlib import Path

from neural_format.isolation import validate_isolated

HERE = Path(__file__).parent / "hostile"
if "hostile_generate" not in sys.modules:
    _spec = importlib.util.spec_from_file_location("hostile_generate", HERE / "generate.py")
    sys.modules["hostile_generate"] = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(sys.modules["hostile_generate"])
generate = sys.modules["hostile_generate"]

HANG_TIMEOUT_S = 8


def test_isolated_validation_bounds_hdf5_hang_and_allocation(tmp_path):
    kinds = generate.ISOLATION_KINDS + [k for k in generate.KINDS if k.name == "attr-vlen-length-3gib"]
    generate.generate(tmp_path, kinds=kinds)
    valid = validate_isolated(tmp_path / "_bases" / "_base_gzip.h5", timeout_s=120)
    assert valid.ok and valid.records == 6, valid.to_text()

    started = time.perf_counter()
    hang = validate_isolated(tmp_path / "global-heap-objects-zeroed.h5", timeout_s=HANG_TIMEOUT_S)
    elapsed = time.perf_counter() - started
    assert [f.code for f in hang.errors] == ["NF-F001"] and "did not finish" in hang.errors[0].message
    assert elapsed < HANG_TIMEOUT_S + 10  # the child was killed, not waited for

    bomb = validate_isolated(tmp_path / "attr-vlen-length-3gib.h5", timeout_s=120)
    assert "NF-E001" in {f.code for f in bomb.errors}, bomb.to_text()
