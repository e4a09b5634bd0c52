"""The builders' optional third-party libraries, imported through this table alone (with the
core's mechanism, :class:`neural_format.internals.optional_deps.OptionalLibraries`), so that a
missing one raises ``NF-E-EXTRA`` naming the extra to install, from Python as from the CLI.

Rule (docs/architecture.md, held by ``tests/test_import_layering.py``): a function that needs a
library calls :func:`load` once, outside any per-record loop; a module that is torch code
throughout (``vlm/model.py``, ...) calls :func:`require` at its top and then imports torch
normally (typed), so even a direct ``import`` of it without torch says which extra is missing.
"""
from __future__ import annotations

from types import ModuleType

from neural_format.internals.optional_deps import OptionalLibraries

# top-level module -> the extras of pyproject.toml that install it
LIBRARIES = OptionalLibraries("neural_builders", {
    "torch": ("torch",),
    "transformers": ("builders",),
    "tokenizers": ("builders",),
    "safetensors": ("builders",),
    "pydicom": ("builders",),
    "PIL": ("builders",),
})


def load(module: str, *, needed_by: str) -> ModuleType:
    """The module (``"PIL.Image"``, ``"torch"``), or ``NF-E-EXTRA`` naming its extra."""
    return LIBRARIES.load(module, needed_by=needed_by)


def require(*modules: str, needed_by: str) -> None:
    """Load ``modules`` or raise ``NF-E-EXTRA``: the first line of a torch module."""
    LIBRARIES.require(*modules, needed_by=needed_by)
