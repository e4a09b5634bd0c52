"""A missing optional library of the builders or the models is ``NF-E-EXTRA`` naming the extra
that installs it, from Python as from the CLI (``tests/test_import_layering.py`` holds that every
import goes through the packages' tables; these tests check what a user then sees)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from neural_format.errors import MissingExtraError

ROOT = Path(__file__).resolve().parents[1]


def _absent(monkeypatch, *modules: str) -> None:
    """``import module`` now fails as for an uninstalled library (None in sys.modules)."""
    for module in modules:
        monkeypatch.setitem(sys.modules, module, None)


def test_a_builders_function_without_pillow_names_the_builders_extra(monkeypatch, tmp_path):
    from neural_builders.phantom import generate_cases, write_cases
    cases = generate_cases(1, seed=0)
    _absent(monkeypatch, "PIL", "PIL.Image")
    with pytest.raises(MissingExtraError) as caught:
        write_cases(cases, tmp_path)
    assert caught.value.code == "NF-E-EXTRA"
    assert "pip install 'neural-format[builders]'" in str(caught.value)
    assert "write_cases" in str(caught.value) and "PIL" in str(caught.value)
    assert isinstance(caught.value, ModuleNotFoundError)  # still what `except ImportError` expects


def test_a_models_function_without_scikit_learn_names_the_models_extra(monkeypatch):
    from neural_models.metrics import roc_auc
    assert roc_auc([0, 1, 1], [0.1, 0.9, 0.8]) == 1.0
    _absent(monkeypatch, "sklearn", "sklearn.metrics")
    with pytest.raises(MissingExtraError, match=r"neural-format\[models\]"):
        roc_auc([0, 1, 1], [0.1, 0.9, 0.8])


def test_a_torch_module_imported_without_torch_says_which_extra():
    """``neural_models.gcn`` is torch code throughout: its top-level require() turns a missing
    torch into NF-E-EXTRA even for a direct import."""
    code = ("import sys\nsys.modules['torch'] = None\n"
            "from neural_format.errors import MissingExtraError\n"
            "try:\n    import neural_models.gcn\nexcept MissingExtraError as exc:\n    print(exc.code, exc)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("NF-E-EXTRA") and "neural-format[torch]" in out.stdout and "FusedGCN" in out.stdout


def test_a_library_outside_the_table_is_a_programming_error():
    from neural_builders import optional_deps
    with pytest.raises(ValueError, match="not an optional dependency of neural_builders"):
        optional_deps.load("yaml", needed_by="nothing")


def test_a_broken_library_keeps_its_own_error(monkeypatch):
    """A library that is there but misses one of ITS dependencies is not 'install the extra'."""
    from neural_models import optional_deps

    def broken(name, *args, **kwargs):
        raise ModuleNotFoundError("No module named 'some_dependency_of_scipy'", name="some_dependency_of_scipy")

    monkeypatch.setattr("importlib.import_module", broken)
    with pytest.raises(ModuleNotFoundError) as caught:
        optional_deps.load("scipy.fake_submodule", needed_by="x")
    assert not isinstance(caught.value, MissingExtraError)
