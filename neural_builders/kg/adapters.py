"""Extractors backed by optional packages (spaCy/scispaCy, RadGraph).

They are registered so that ``get_extractor("scispacy")`` / ``get_extractor("radgraph")`` work
where the packages are installed, and fail with a clear ``NB-K001`` where they are not. Neither
package is a dependency of neural-format.
"""
from __future__ import annotations

import importlib
import importlib.util

from ..errors import EXTRACTOR_UNAVAILABLE, BuildInputError
from .graph import Entity, KnowledgeGraph, Relation


def _require(module: str, extractor: str, hint: str):
    if importlib.util.find_spec(module) is None:
        raise BuildInputError(EXTRACTOR_UNAVAILABLE, f"KG extractor {extractor!r} needs the {module!r} package",
                              location=f"kg:{extractor}", expected=f"{module} installed ({hint})",
                              found="not installed")
    return importlib.import_module(module)


def _package_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version(name)
    except PackageNotFoundError:
        return "unknown"


class SpacyExtractor:
    """spaCy / scispaCy NER (e.g. ``en_core_sci_sm``) for entities; assertions come from the
    rule-based extractor's NegEx context on the same text, relations from its clause rules are
    not reproduced: entities whose text the rules also found keep the rules' type, others are
    typed ``finding``."""
    name = "spacy"

    def __init__(self, *, model: str = "en_core_sci_sm"):
        spacy = _require("spacy", "spacy", "pip install spacy scispacy and a model such as en_core_sci_sm")
        try:
            self._nlp = spacy.load(model)
        except OSError as exc:
            raise BuildInputError(EXTRACTOR_UNAVAILABLE, f"spaCy model {model!r} is not installed: {exc}",
                                  location="kg:spacy", expected=model, found="missing") from None
        self.version = f"spacy-{_package_version('spacy')}/{model}"
        self.config = {"model": model}

    def extract(self, text: str) -> KnowledgeGraph:
        from .rules import RuleBasedExtractor
        rules = RuleBasedExtractor(merge_repeats=False).extract(text)
        by_span = {(e.start, e.end): e for e in rules.entities}
        entities = []
        for ent in self._nlp(text).ents:
            known = by_span.get((ent.start_char, ent.end_char))
            entities.append(Entity(ent.text.lower(), known.type if known else "finding",
                                   known.assertion if known else "present", ent.start_char, ent.end_char))
        return KnowledgeGraph(entities, [])


class RadGraphExtractor:
    """RadGraph (``pip install radgraph``) entities and relations, mapped to this vocabulary:
    ANAT-DP -> anatomy/present, OBS-DP/-DA/-U -> finding/present/absent/uncertain; relations
    located_at -> located_at, modify -> modifies, suggestive_of -> suggestive_of."""
    name = "radgraph"
    _ASSERT = {"DP": "present", "DA": "absent", "U": "uncertain"}
    _REL = {"located_at": "located_at", "modify": "modifies", "suggestive_of": "suggestive_of"}

    def __init__(self, *, model_type: str = "radgraph"):
        radgraph = _require("radgraph", "radgraph", "pip install radgraph (downloads model weights)")
        self._model = radgraph.RadGraph(model_type=model_type)
        self.version = f"radgraph-{_package_version('radgraph')}"
        self.config = {"model_type": model_type}

    def extract(self, text: str) -> KnowledgeGraph:
        annotations = self._model([text])
        doc = next(iter(annotations.values())) if annotations else {"entities": {}}
        ids: dict[str, int] = {}
        entities: list[Entity] = []
        relations: list[Relation] = []
        for key, ent in doc.get("entities", {}).items():
            kind, _, certainty = str(ent.get("label", "OBS-DP")).partition("-")
            ids[key] = len(entities)
            entities.append(Entity(str(ent.get("tokens", "")).lower(), "anatomy" if kind == "ANAT" else "finding",
                                   self._ASSERT.get(certainty, "present")))
        for key, ent in doc.get("entities", {}).items():
            for rel_type, target in ent.get("relations", []):
                if rel_type in self._REL and target in ids:
                    relations.append(Relation(ids[key], ids[target], self._REL[rel_type]))
        return KnowledgeGraph(entities, relations)
