"""Optional third-party libraries, each imported through a table that names the extra installing
it, on first use: the core's here (nowhere else in ``neural_format``; ``tests/test_import_layering.py``
holds that), and the builders' and models' through their own ``optional_deps`` modules, which
build an :class:`OptionalLibraries` of their own on this one mechanism.

The core promises numpy, h5py and pydantic only; the adapters, the bridge check, remote
collections and progress bars use more. A missing library raises
:class:`~neural_format.errors.MissingExtraError` (``NF-E-EXTRA``, an ``ImportError``) that names
the extra installing it, never a bare ``ModuleNotFoundError``.
"""
from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Mapping
from types import ModuleType

from ..errors import MissingExtraError


class OptionalLibraries:
    """One package's optional libraries: top-level module -> the extras of pyproject.toml that
    install it. ``owner`` names the package in the error for a module outside the table."""

    def __init__(self, owner: str, extras: Mapping[str, tuple[str, ...]]):
        self.owner = owner
        self.extras = dict(extras)

    def _top(self, module: str) -> str:
        top = module.partition(".")[0]
        if top not in self.extras:
            raise ValueError(f"{top} is not an optional dependency of {self.owner} (known: {sorted(self.extras)})")
        return top

    def load(self, module: str, *, needed_by: str = "this feature") -> ModuleType:
        """``importlib.import_module(module)`` for a module of one of the table's libraries."""
        top = self._top(module)
        loaded = sys.modules.get(module)
        if loaded is not None:  # the common case, kept as cheap as an import statement's
            return loaded
        try:
            return importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name is None or exc.name.split(".")[0] != top:
                raise  # the library is there and broken: its own error says more
            raise MissingExtraError(needed_by, self.extras[top], exc.name) from None

    def require(self, *modules: str, needed_by: str) -> None:
        """Import ``modules`` (or raise ``NF-E-EXTRA``) before a module's own top-level
        ``import torch``: the statements after it then bind what is already loaded, typed."""
        for module in modules:
            self.load(module, needed_by=needed_by)

    def available(self, module: str) -> bool:
        """Whether ``module``'s library is installed (without importing it)."""
        top = self._top(module)
        try:
            return importlib.util.find_spec(top) is not None
        except (ImportError, ValueError):  # an import hook that refuses it, a broken installation
            return False


# top-level module -> the extra of pyproject.toml that installs it
EXTRAS = {
    "torch": "torch",
    "torch_geometric": "torch",
    "networkx": "torch",
    "fsspec": "remote",
    "tqdm": "progress",
}
CORE = OptionalLibraries("the core (neural_format)", {module: (extra,) for module, extra in EXTRAS.items()})


def load(module: str, *, needed_by: str = "this feature") -> ModuleType:
    """``importlib.import_module(module)`` for a module of one of :data:`EXTRAS`."""
    return CORE.load(module, needed_by=needed_by)


def available(module: str) -> bool:
    """Whether ``module``'s library is installed (without importing it)."""
    return CORE.available(module)
