"""``neural_format.validation.isolation.validate_isolated``: validation in a limited child process.

The damaged heaps that made HDF5 2.0 loop or allocate 3 GiB (found by atheris) are now refused
in-process by ``neural_format.files.heap_guard`` (see the hostile corpus); isolation stays the
recommended way to look at untrusted files because other such defects in the C library cannot be
ruled out. These tests check that the child's verdict comes back intact and that a child that
does not finish in time becomes an NF-F001 finding instead of a hang.
"""
from __future__ import annotations

import importlib.util
import sys
import time
from pathlib import Path

from neural_format.validation.isolation import validate_isolated

HERE = Path(__file__).parent / "hostile"
if "hostile_generate" not in sys.modules:
    _spec = importlib.util.spec_from_file_location("hostile_generate", HERE / "generate.py")
    sys.modules["hostile_generate"] = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(sys.modules["hostile_generate"])
generate = sys.modules["hostile_generate"]


def test_isolated_validation_reports_and_bounds_time(tmp_path):
    kinds = [k for k in generate.KINDS if k.name in ("global-heap-objects-zeroed", "attr-vlen-length-3gib")]
    generate.generate(tmp_path, kinds=kinds)
    valid = validate_isolated(tmp_path / "_bases" / "_base_gzip.h5", timeout_s=120)
    assert valid.ok and valid.records == 6, valid.to_text()
    for case in kinds:
        report = validate_isolated(tmp_path / f"{case.name}.h5", timeout_s=120)
        assert case.validator in {f.code for f in report.errors}, report.to_text()

    started = time.perf_counter()
    late = validate_isolated(tmp_path / "_bases" / "_base_gzip.h5", timeout_s=0.05)
    assert time.perf_counter() - started < 10
    assert [f.code for f in late.errors] == ["NF-F001"] and "did not finish" in late.errors[0].message
