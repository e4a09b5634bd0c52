"""The old import paths of the modules that moved into subpackages (0.2), kept for one minor version.

Until 0.2 the core was flat (``neural_format/reader.py`` ...); its modules now live by layer
(docs/architecture.md). :data:`MOVED` is the one table of old -> new dotted names. A finder on
``sys.meta_path`` answers an import of an old name with the module object already imported under
the new one, so ``neural_format.reader is neural_format.files.reader``: monkeypatching through
either name patches the same module, and classes (``isinstance``, pickles written under the old
name) are the same objects. Each import of an old name warns (:class:`DeprecationWarning`) with the
new name; the aliases go away in the next minor release (CHANGELOG.md).

There are no stub files at the old paths: the table is the only place that knows them.
"""
from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import warnings
from types import CodeType, ModuleType
from typing import Optional, Sequence

_PREFIX = "neural_format."

#: old dotted module name -> new dotted module name
MOVED: dict[str, str] = {
    "neural_format.layout": "neural_format.format.layout",
    "neural_format.record": "neural_format.format.record",
    "neural_format.record_columns": "neural_format.format.record_columns",
    "neural_format.metadata": "neural_format.format.metadata",
    "neural_format.schema": "neural_format.format.schema",
    "neural_format.hashing": "neural_format.format.hashing",
    "neural_format.reader": "neural_format.files.reader",
    "neural_format.writer": "neural_format.files.writer",
    "neural_format.guards": "neural_format.files.guards",
    "neural_format.heap_guard": "neural_format.files.heap_guard",
    "neural_format.elements": "neural_format.files.elements",
    "neural_format.storage": "neural_format.files.storage",
    "neural_format.integrity": "neural_format.files.integrity",
    "neural_format.record_sequence": "neural_format.files.record_sequence",
    "neural_format.adapters.blocks": "neural_format.files.blocks",
    "neural_format.collection": "neural_format.collections.collection",
    "neural_format.manifest": "neural_format.collections.manifest",
    "neural_format.verification": "neural_format.collections.verification",
    "neural_format.reprune": "neural_format.collections.reprune",
    "neural_format.resume": "neural_format.collections.resume",
    "neural_format.synthetic": "neural_format.collections.synthetic",
    "neural_format.grid": "neural_format.graphs.grid",
    "neural_format.fusion": "neural_format.graphs.fusion",
    "neural_format.pruning": "neural_format.graphs.pruning",
    "neural_format.optional_deps": "neural_format.internals.optional_deps",
    "neural_format.progress": "neural_format.internals.progress",
    "neural_format.populated": "neural_format.internals.populated",
    "neural_format.mapped_columns": "neural_format.internals.mapped_columns",
    "neural_format.isolation": "neural_format.validation.isolation",
}

REMOVED_IN = "0.3.0"


def warn_moved(old: str, stacklevel: int = 2) -> None:
    warnings.warn(f"{old} moved to {MOVED[old]}; the old name is an alias that goes away in "
                  f"neural-format {REMOVED_IN}: import {MOVED[old]}", DeprecationWarning, stacklevel=stacklevel)


class _AliasLoader(importlib.abc.Loader):
    """Loads an old name as the module object of its new name (imported first if need be)."""

    def __init__(self, old: str) -> None:
        self.old, self.new = old, MOVED[old]
        self._spec: Optional[importlib.machinery.ModuleSpec] = None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        warn_moved(self.old, stacklevel=4)
        module = importlib.import_module(self.new)
        self._spec = module.__spec__
        return module

    def exec_module(self, module: ModuleType) -> None:
        # the import system set __spec__ to the alias's spec; the module keeps its own
        module.__spec__ = self._spec

    # ``python -m neural_format.<old>``: runpy runs the code of the old name as ``__main__``, whose
    # relative imports would resolve against the old package; so that code runs the new module
    def get_code(self, fullname: str) -> CodeType:
        warn_moved(self.old)
        return compile(f"import runpy\nrunpy.run_module({self.new!r}, run_name='__main__', alter_sys=True)\n",
                       f"<{self.old}: alias of {self.new}>", "exec")

    def is_package(self, fullname: str) -> bool:
        return False


class MovedModuleFinder(importlib.abc.MetaPathFinder):
    """Finds the old dotted names of :data:`MOVED` (and nothing else)."""

    def find_spec(self, fullname: str, path: Optional[Sequence[str]] = None,
                  target: Optional[ModuleType] = None) -> Optional[importlib.machinery.ModuleSpec]:
        if fullname not in MOVED:
            return None
        return importlib.machinery.ModuleSpec(fullname, _AliasLoader(fullname))


def install() -> None:
    """Put the finder first on ``sys.meta_path`` (once). First, because a stale copy of an old flat
    file (an editable install of an older checkout, a leftover in site-packages) must not be imported
    beside the moved module as a second, different module; the finder answers only its table."""
    if not any(isinstance(finder, MovedModuleFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, MovedModuleFinder())


def old_attribute(package: str, name: str) -> ModuleType:
    """``neural_format.<name>`` for a moved module that ``import neural_format`` used to bind."""
    old = f"{package}.{name}"
    if old not in MOVED:
        raise AttributeError(f"module {package!r} has no attribute {name!r}")
    return importlib.import_module(old)


__all__ = ["MOVED", "MovedModuleFinder", "REMOVED_IN", "install", "old_attribute", "warn_moved"]
