"""The pluggable knowledge-graph extractor interface and its registry.

An extractor is anything with ``name``, ``version``, ``config`` and ``extract(text)``; the
three descriptive fields go into the collection's provenance (``KGExtractorRef``) so that a file
says which extractor, at which version and with which settings, made its graphs.

>>> from neural_builders.kg import get_extractor
>>> kg = get_extractor("rules").extract("No pneumothorax.")
>>> [(e.text, e.assertion) for e in kg.entities]
[('pneumothorax', 'absent')]
"""
from __future__ import annotations

from typing import Callable, Protocol, runtime_checkable

from neural_format.format.metadata import KGExtractorRef

from ..errors import EXTRACTOR_UNAVAILABLE, BuildInputError
from .graph import KnowledgeGraph


@runtime_checkable
class KGExtractor(Protocol):
    name: str
    version: str
    config: dict

    def extract(self, text: str) -> KnowledgeGraph:
        ...


_REGISTRY: dict[str, Callable[..., KGExtractor]] = {}


def register_extractor(name: str, factory: Callable[..., KGExtractor]) -> None:
    """Make ``get_extractor(name, **config)`` call ``factory(**config)``."""
    _REGISTRY[name] = factory


def available_extractors() -> list[str]:
    return sorted(_REGISTRY)


def get_extractor(name: str = "rules", **config) -> KGExtractor:
    """An extractor by registry name (``"rules"`` is the offline default). Raises ``NB-K001``
    for an unknown name, or when the extractor's package is not installed."""
    try:
        factory = _REGISTRY[name]
    except KeyError:
        raise BuildInputError(EXTRACTOR_UNAVAILABLE, "unknown KG extractor", location=f"kg:{name}",
                              expected=available_extractors(), found=name) from None
    return factory(**config)


def extractor_ref(extractor: KGExtractor) -> KGExtractorRef:
    """The provenance entry for ``extractor`` (config values must be JSON scalars)."""
    config = {k: v for k, v in dict(extractor.config).items() if isinstance(v, (bool, int, float, str)) or v is None}
    return KGExtractorRef(name=extractor.name, version=extractor.version, config=config)
