"""The core's optional third-party libraries, each imported here, on first use, and nowhere else
in ``neural_format`` (``tests/test_import_layering.py`` holds that).

The core promises numpy, h5py and pydantic only; the adapters, the bridge check, remote
collections and progress bars use more. A missing library raises
:class:`~neural_format.errors.MissingExtraError` (``NF-E-EXTRA``, an ``ImportError``) that names
the extra installing it, never a bare ``ModuleNotFoundError``.
"""
from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

from ..errors import MissingExtraError

# top-level module -> the extra of pyproject.toml that installs it
EXTRAS = {
    "torch": "torch",
    "torch_geometric": "torch",
    "networkx": "torch",
    "fsspec": "remote",
    "tqdm": "progress",
}


def load(module: str, *, needed_by: str = "this feature") -> ModuleType:
    """``importlib.import_module(module)`` for a module of one of :data:`EXTRAS`."""
    top = module.split(".")[0]
    if top not in EXTRAS:
        raise ValueError(f"{top} is not an optional dependency of the core (known: {sorted(EXTRAS)})")
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name is None or exc.name.split(".")[0] != top:
            raise  # the library is there and broken: its own error says more
        raise MissingExtraError(needed_by, (EXTRAS[top],), exc.name) from None


def available(module: str) -> bool:
    """Whether ``module``'s library is installed (without importing it)."""
    top = module.split(".")[0]
    if top not in EXTRAS:
        raise ValueError(f"{top} is not an optional dependency of the core (known: {sorted(EXTRAS)})")
    try:
        return importlib.util.find_spec(top) is not None
    except (ImportError, ValueError):  # an import hook that refuses it, a broken installation
        return False
