"""Files pyproject.toml declares as package data exist in the package (the ``py.typed`` marker of
PEP 561 that the ``Typing :: Typed`` classifier promises among them); a built wheel holds what
setuptools finds here (checked by hand: docs/architecture.md, "Rules the tests hold")."""
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_declared_package_data_exists():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    declared = project["tool"]["setuptools"]["package-data"]
    assert all("py.typed" in declared[package] for package in ("neural_format", "neural_builders", "neural_models"))
    missing = [f"{package}/{name}" for package, names in declared.items() for name in names
               if not list((ROOT / package.replace(".", "/")).glob(name))]
    assert not missing, missing
    assert "Typing :: Typed" in project["project"]["classifiers"]
