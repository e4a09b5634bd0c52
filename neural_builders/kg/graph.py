"""The clinical knowledge graph of one report: entities with assertions, and typed relations."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np

from neural_format.format.record import ASSERTION_CODES, UNKNOWN

ENTITY_TYPES = ("finding", "anatomy", "device", "modifier")
RELATION_TYPES = ("located_at", "modifies", "suggestive_of")
ASSERTIONS = ("present", "absent", "uncertain")


@dataclass(frozen=True)
class Entity:
    """A clinical mention. ``text`` is the lower-cased surface form (e.g. ``"right lower lobe"``),
    ``type`` one of :data:`ENTITY_TYPES`, ``assertion`` one of :data:`ASSERTIONS`; ``start`` and
    ``end`` are character offsets of the first mention in the extractor's input, when known."""
    text: str
    type: str
    assertion: str = "present"
    start: Optional[int] = None
    end: Optional[int] = None

    def __post_init__(self):
        if self.assertion not in ASSERTIONS:
            raise ValueError(f"assertion must be one of {ASSERTIONS}, not {self.assertion!r}")


@dataclass(frozen=True)
class Relation:
    """``source`` -> ``target`` (entity indices) of ``type`` in :data:`RELATION_TYPES`."""
    source: int
    target: int
    type: str


@dataclass
class KnowledgeGraph:
    entities: list[Entity] = field(default_factory=list)
    relations: list[Relation] = field(default_factory=list)

    def __post_init__(self):
        n = len(self.entities)
        for rel in self.relations:
            if not (0 <= rel.source < n and 0 <= rel.target < n):
                raise ValueError(f"relation {rel} refers to an entity outside 0..{n - 1}")

    def __len__(self) -> int:
        return len(self.entities)

    def find(self, text: str, type: Optional[str] = None) -> list[Entity]:
        """Entities whose text equals ``text`` (case-insensitive), optionally of one type."""
        text = text.lower()
        return [e for e in self.entities if e.text == text and (type is None or e.type == type)]

    def triples(self) -> list[tuple[str, str, str]]:
        """``(source text, relation type, target text)`` for every relation, for reading and tests."""
        return [(self.entities[r.source].text, r.type, self.entities[r.target].text) for r in self.relations]

    def to_arrays(self, entity_types: Sequence[str] = ENTITY_TYPES,
                  relation_types: Sequence[str] = RELATION_TYPES) -> dict:
        """The record columns: ``entity_types`` int16, ``entity_assertions`` int8, ``entity_text``,
        ``relations`` (R, 2) int32, ``relation_types`` int16, coded against the given vocabularies
        (a term missing from a vocabulary is coded -1, "not recorded")."""
        etype = {t: i for i, t in enumerate(entity_types)}
        rtype = {t: i for i, t in enumerate(relation_types)}
        return {
            "entity_types": np.array([etype.get(e.type, UNKNOWN) for e in self.entities], np.int16),
            "entity_assertions": np.array([ASSERTION_CODES.get(e.assertion, UNKNOWN) for e in self.entities], np.int8),
            "entity_text": [e.text for e in self.entities],
            "relations": np.array([(r.source, r.target) for r in self.relations], np.int32).reshape(-1, 2),
            "relation_types": np.array([rtype.get(r.type, UNKNOWN) for r in self.relations], np.int16),
        }
