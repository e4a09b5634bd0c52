"""Knowledge-graph extraction from radiology reports.

``get_extractor("rules")`` is the offline default (:class:`RuleBasedExtractor`);
``"spacy"`` and ``"radgraph"`` plug in where those packages are installed.
"""
from .adapters import RadGraphExtractor, SpacyExtractor
from .extractor import KGExtractor, available_extractors, extractor_ref, get_extractor, register_extractor
from .graph import ASSERTIONS, ENTITY_TYPES, RELATION_TYPES, Entity, KnowledgeGraph, Relation
from .rules import RuleBasedExtractor

register_extractor("rules", RuleBasedExtractor)
register_extractor("spacy", SpacyExtractor)
register_extractor("radgraph", RadGraphExtractor)

__all__ = [
    "ASSERTIONS", "ENTITY_TYPES", "Entity", "KGExtractor", "KnowledgeGraph", "RELATION_TYPES",
    "RadGraphExtractor", "Relation", "RuleBasedExtractor", "SpacyExtractor", "available_extractors",
    "extractor_ref", "get_extractor", "register_extractor",
]
