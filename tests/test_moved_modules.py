"""The pre-0.2 module paths (issue 15 item 9): one alias table, the very same module objects, a warning.

``OLD_CORE_MODULES`` is the flat core as it was before the move (``git ls-tree <before>
neural_format/``); every one of them either still lives at the top or is in the alias table.
"""
from __future__ import annotations

import importlib
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

import neural_format
from neural_format.internals import moved_modules
from neural_format.internals.moved_modules import MOVED

ROOT = Path(__file__).resolve().parents[1]

# the flat modules of neural_format/ before the move, and the one subpackage module that moved
OLD_CORE_MODULES = [
    "clauses", "collection", "elements", "error_codes", "errors", "fusion", "grid", "guards", "hashing",
    "heap_guard", "integrity", "isolation", "layout", "manifest", "mapped_columns", "metadata",
    "optional_deps", "populated", "progress", "pruning", "reader", "record", "record_columns",
    "record_sequence", "reprune", "resume", "schema", "storage", "synthetic", "verification", "version",
    "writer",
]
STAYED = {"clauses", "error_codes", "errors", "version"}  # the foundation stays top-level
MOVED_FROM_SUBPACKAGES = ["adapters.blocks"]


def _path(module: str) -> Path:
    return ROOT.joinpath(*module.split(".")).with_suffix(".py")


def test_the_table_covers_every_module_that_moved():
    expected = {f"neural_format.{m}" for m in OLD_CORE_MODULES if m not in STAYED}
    expected |= {f"neural_format.{m}" for m in MOVED_FROM_SUBPACKAGES}
    assert set(MOVED) == expected
    flat_now = {p.stem for p in (ROOT / "neural_format").glob("*.py")} - {"__init__", "__main__"}
    assert flat_now == STAYED, "a new flat core module belongs in a subpackage (docs/architecture.md)"
    for old, new in MOVED.items():
        assert not _path(old).exists(), f"{old}: no stub file at the old path (the table is the alias)"
        assert _path(new).is_file(), f"{new} is missing"
        assert old.rsplit(".", 1)[1] == new.rsplit(".", 1)[1], "a move keeps the module's own name"


@pytest.mark.parametrize("old", sorted(MOVED))
def test_an_old_name_imports_the_same_module_and_warns(old, monkeypatch):
    new_module = importlib.import_module(MOVED[old])
    monkeypatch.delitem(sys.modules, old, raising=False)
    with pytest.warns(DeprecationWarning, match=MOVED[old].replace(".", r"\.")):
        old_module = importlib.import_module(old)
    assert old_module is new_module
    assert sys.modules[old] is new_module
    assert new_module.__name__ == MOVED[old] and new_module.__spec__.name == MOVED[old]


def test_every_import_form_of_an_old_name(monkeypatch):
    from neural_format.files import reader as reader_module
    from neural_format.format.record import Record
    for old in ("neural_format.reader", "neural_format.record", "neural_format.adapters.blocks"):
        monkeypatch.delitem(sys.modules, old, raising=False)
    monkeypatch.delattr(neural_format, "reader", raising=False)
    with pytest.warns(DeprecationWarning, match="neural_format.files.reader"):
        from neural_format import reader
    assert reader is reader_module
    with pytest.warns(DeprecationWarning, match="neural_format.format.record"):
        import neural_format.record as old_record
    assert old_record.Record is Record
    with pytest.warns(DeprecationWarning, match="neural_format.files.blocks"):
        from neural_format.adapters.blocks import read_block
    from neural_format.files.blocks import read_block as new_read_block
    assert read_block is new_read_block
    # monkeypatching through the old name patches the one module
    monkeypatch.setattr("neural_format.reader.MAX_RECORD_BYTES", 7)
    assert reader_module.MAX_RECORD_BYTES == 7


def test_the_package_attribute_of_an_old_name(monkeypatch):
    from neural_format.collections import manifest
    monkeypatch.delitem(sys.modules, "neural_format.manifest", raising=False)
    monkeypatch.delattr(neural_format, "manifest", raising=False)
    with pytest.warns(DeprecationWarning, match="neural_format.collections.manifest"):
        assert neural_format.manifest is manifest
    with pytest.raises(AttributeError):
        neural_format.no_such_module  # noqa: B018
    assert not hasattr(neural_format, "files_reader")


def test_new_names_do_not_warn():
    code = ("import warnings; warnings.simplefilter('error')\n"
            "import neural_format, neural_format.files.reader, neural_format.collections.collection\n"
            "import neural_format.validation.isolation, neural_format.cli\n")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_python_dash_m_under_an_old_name_runs_the_moved_module():
    """``python -m neural_format.schema --check`` keeps working (and says where the module went)."""
    done = subprocess.run([sys.executable, "-W", "default::DeprecationWarning", "-m", "neural_format.schema",
                           "--check"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "neural_format.format.schema" in done.stderr and "DeprecationWarning" in done.stderr


def test_the_finder_answers_only_its_table():
    finder = moved_modules.MovedModuleFinder()
    assert finder.find_spec("neural_format.files.reader") is None
    assert finder.find_spec("neural_format.no_such_module") is None
    assert finder.find_spec("neural_format.reader") is not None
    moved_modules.install()
    moved_modules.install()
    assert sum(isinstance(f, moved_modules.MovedModuleFinder) for f in sys.meta_path) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ModuleNotFoundError):
            importlib.import_module("neural_format.no_such_module")


def test_a_pickle_that_names_an_old_module_loads(monkeypatch):
    import pickle
    from neural_format.format.metadata import TopKPercent
    data = pickle.dumps(TopKPercent, protocol=0).replace(b"neural_format.format.metadata", b"neural_format.metadata")
    assert b"neural_format.metadata" in data
    monkeypatch.delitem(sys.modules, "neural_format.metadata", raising=False)
    with pytest.warns(DeprecationWarning, match="neural_format.format.metadata"):
        assert pickle.loads(data) is TopKPercent
