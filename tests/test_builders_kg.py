"""The rule-based KG extractor: assertions, relations, registry, and behaviour on real IU reports."""
import importlib.util
import re

import numpy as np
import pytest

from neural_builders.errors import BuildInputError
from neural_builders.kg import (ENTITY_TYPES, RELATION_TYPES, KGExtractor, KnowledgeGraph, Relation, Entity,
                                extractor_ref, get_extractor)
from neural_format.format.metadata import KGExtractorRef

RULES = get_extractor("rules")


def assertions(text):
    return {(e.text, e.type): e.assertion for e in RULES.extract(text).entities}


@pytest.mark.parametrize("text,entity,expected", [
    ("No pneumothorax.", "pneumothorax", "absent"),
    ("There is no evidence of pneumothorax.", "pneumothorax", "absent"),
    ("Pneumothorax is not seen.", "pneumothorax", "absent"),
    ("The previously seen pleural effusion has resolved.", "pleural effusion", "absent"),
    ("Lungs are clear without focal consolidation.", "consolidation", "absent"),
    ("There is no focal consolidation, pleural effusion, or pneumothorax.", "pneumothorax", "absent"),
    ("There are no XXXX of a pleural effusion.", "pleural effusion", "absent"),
    ("Possible right lower lobe pneumonia.", "pneumonia", "uncertain"),
    ("Pneumonia cannot be excluded.", "pneumonia", "uncertain"),
    ("Superimposed infection cannot be entirely excluded.", "infection", "uncertain"),
    ("Opacity, suggestive of pneumonia.", "pneumonia", "uncertain"),
    ("Opacity consistent with atelectasis.", "atelectasis", "present"),
    ("Small left pleural effusion.", "pleural effusion", "present"),
    ("No change in the small left pleural effusion.", "pleural effusion", "present"),  # pseudo-negation
    ("Small left pleural effusion but no pneumothorax.", "pleural effusion", "present"),  # terminator
    ("No pneumothorax, the heart is enlarged.", "enlarged", "present"),  # comma + verb ends the scope
    ("Heart size is not enlarged.", "enlarged", "absent"),
])
def test_assertions(text, entity, expected):
    found = {t: a for (t, _), a in assertions(text).items()}
    assert found.get(entity) == expected, found


# Regression cases for the rule classes measured against IU X-ray MeSH terms (benchmarks/bench_kg_iu.py);
# each sentence is (close to) one found in the IU reports.
@pytest.mark.parametrize("text,expected", [
    # negation scope over coordinated lists
    ("No focal consolidation, large pleural effusion or pneumothorax is identified.",
     {"consolidation": "absent", "pleural effusion": "absent", "pneumothorax": "absent"}),
    ("No pneumothorax, mild atelectasis is present.", {"pneumothorax": "absent", "atelectasis": "present"}),
    ("No pneumothorax, the heart is enlarged. Small effusion and mild atelectasis are present.",
     {"pneumothorax": "absent", "effusion": "present", "atelectasis": "present"}),
    ("Consolidation, atelectasis, and costophrenic blunting in the left lower lobe have cleared.",
     {"consolidation": "absent", "atelectasis": "absent", "blunting": "absent"}),
    ("No evidence of pneumonia, nodules, or masses.", {"pneumonia": "absent", "nodules": "absent", "masses": "absent"}),
    # hedges and differentials
    ("Right middle lobe opacity which may represent a focal area of consolidation or atelectasis.",
     {"opacity": "present", "consolidation": "uncertain", "atelectasis": "uncertain"}),
    ("Question of right lower lobe pneumonia.", {"pneumonia": "uncertain"}),
    ("Question small left pleural effusion.", {"pleural effusion": "uncertain"}),
    ("Early pulmonary edema cannot be excluded.", {"pulmonary edema": "uncertain"}),
    ("The differential diagnosis includes pneumonia and atelectasis.", {"pneumonia": "uncertain", "atelectasis": "uncertain"}),
    ("Left basilar airspace opacity, atelectasis versus pneumonia.",
     {"airspace opacity": "present", "atelectasis": "uncertain", "pneumonia": "uncertain"}),
    ("Patchy opacity in the left base concerning for atelectasis versus pneumonitis.",
     {"opacity": "present", "atelectasis": "uncertain", "pneumonitis": "uncertain"}),
    ("Recommend evaluation for pneumothorax.", {"pneumothorax": "uncertain"}),
    ("Please correlate clinically for pneumonia.", {"pneumonia": "uncertain"}),
    ("There is raises concern for pneumonia.", {"pneumonia": "uncertain"}),
    ("Minimal perihilar opacity which could indicate an atypical pneumonia.",
     {"opacity": "present", "pneumonia": "uncertain"}),
    ("Suspicion for bilateral pleural effusions.", {"pleural effusions": "uncertain"}),
    ("Lateral view somewhat limited however small bilateral pleural effusions suspected.",
     {"pleural effusions": "uncertain"}),
    ("There may also be small bilateral pleural effusion.", {"pleural effusion": "uncertain"}),
    ("Pneumonia is in the differential.", {"pneumonia": "uncertain"}),
    ("A superimposed pneumonia would be a consideration.", {"pneumonia": "uncertain"}),
    ("It would be difficult to completely exclude a superimposed pneumonia.", {"pneumonia": "uncertain"}),
    ("Other etiologies may include viral pneumonia.", {"pneumonia": "uncertain"}),
    ("There is suggestion of subtle patchy opacities in the lower lungs.", {"opacities": "uncertain"}),
    ("There is no suggestion of pleural effusion.", {"pleural effusion": "absent"}),  # the longer negation wins
    # hypothetical: what a limited examination could not assess is not asserted at all
    ("Evaluation for pneumothorax is limited.", {}),
    ("Evaluation for pleural fluid limited but no large pleural effusion seen.", {"pleural effusion": "absent"}),
    ("The lateral view limits evaluation for an effusion.", {}),
    ("Limited evaluation of the pleural effusion due to rotation.", {}),
    ("Evaluation of the lungs is limited, small left pleural effusion is present.", {"pleural effusion": "present"}),
    ("Limited evaluation of the bases due to overlying soft tissue and atelectasis.", {"atelectasis": "present"}),
    ("Evaluation of the lungs is limited by low volumes with bibasilar atelectasis.", {"atelectasis": "present"}),
    # a parenthesis is an aside: the clause it interrupts goes on after it
    ("Pneumonia (seen on the prior CT) is not seen on this radiograph.", {"pneumonia": "absent"}),
    ("No effusion (small on the prior study) or pneumothorax.", {"effusion": "absent", "pneumothorax": "absent"}),
    ("Small left effusion (previously moderate).", {"effusion": "present"}),
    # vocabulary: haziness and an opaque lobe are opacities
    ("There is mild haziness in the right lung, which could represent infiltrate.",
     {"haziness": "present", "infiltrate": "uncertain"}),
    ("The right lower lobe is totally opaque.", {"opaque": "present"}),
    # what a finding would suggest: absent only when that finding is absent
    ("There is no focal air space opacity to suggest a pneumonia.", {"air space opacity": "absent", "pneumonia": "absent"}),
    ("Without comparisons, this may represent a focal area of infection or pneumonia.",
     {"infection": "uncertain", "pneumonia": "uncertain"}),
    ("No consolidation or large pleural effusion identified (blunting of the angles may represent small effusions).",
     {"consolidation": "absent", "pleural effusion": "absent", "blunting": "present", "effusions": "uncertain"}),
    # pseudo-negations
    ("Redemonstration without significant interval change of mild subsegmental atelectasis.", {"atelectasis": "present"}),
    ("No interval change in the right lower lobe opacity.", {"opacity": "present"}),
    ("COPD with almost completely resolved right apical pleural air collection.", {"copd": "present", "pleural air collection": "present"}),
    # resolution is negation, before or after the finding
    ("Resolved interstitial edema.", {"interstitial edema": "absent"}),
    ("There has been clearing of left base airspace opacities.", {"airspace opacities": "absent"}),
    ("The right pneumothorax has resolved.", {"pneumothorax": "absent"}),
    # vocabulary: a pericardial effusion is not a pleural one; pneumonitis is a finding
    ("Cardiomegaly versus pericardial effusion.", {"cardiomegaly": "uncertain", "pericardial effusion": "uncertain"}),
    ("Patchy infiltrate, concerning for pneumonitis.", {"infiltrate": "present", "pneumonitis": "uncertain"}),
])
def test_assertion_rule_classes(text, expected):
    found = {e.text: e.assertion for e in RULES.extract(text).entities if e.type == "finding"}
    assert found == expected, found


def test_anatomy_is_never_negated_and_location_words_join_it():
    found = assertions("No pneumothorax in the right lower lobe.")
    assert found[("right lower lobe", "anatomy")] == "present"
    assert found[("pneumothorax", "finding")] == "absent"


def test_relations_of_a_typical_positive_sentence():
    kg = RULES.extract("Focal consolidation in the right lower lobe, suggestive of pneumonia.")
    assert set(kg.triples()) == {("focal", "modifies", "consolidation"),
                                 ("consolidation", "located_at", "right lower lobe"),
                                 ("consolidation", "suggestive_of", "pneumonia")}
    types = {e.text: e.type for e in kg.entities}
    assert types == {"focal": "modifier", "consolidation": "finding", "right lower lobe": "anatomy",
                     "pneumonia": "finding"}


@pytest.mark.parametrize("text,triple", [
    ("Lungs are clear.", ("clear", "modifies", "lungs")),
    ("The lungs are clear without pneumothorax.", ("clear", "modifies", "lungs")),
    ("No acute cardiopulmonary abnormality.", ("acute", "modifies", "abnormality")),
    ("No acute cardiopulmonary abnormality.", ("abnormality", "located_at", "cardiopulmonary")),
    ("Calcified granuloma in the left upper lobe.", ("granuloma", "located_at", "left upper lobe")),
    ("Right lower lobe opacity may represent atelectasis or pneumonia.", ("opacity", "suggestive_of", "pneumonia")),
    ("Consolidation in the right middle zone and the left upper zone.", ("consolidation", "located_at", "left upper zone")),
    ("Endotracheal tube in the trachea.", ("endotracheal tube", "located_at", "trachea")),
    ("Degenerative changes of the thoracic spine.", ("degenerative changes", "located_at", "thoracic spine")),
])
def test_relation_rules(text, triple):
    assert triple in RULES.extract(text).triples()


def test_no_location_link_across_a_negation():
    kg = RULES.extract("Bibasilar opacities, without focal consolidation or effusion.")
    assert ("opacities", "located_at", "bibasilar") in kg.triples()
    assert ("consolidation", "located_at", "bibasilar") not in kg.triples()


def test_repeats_merge_and_arrays():
    kg = RULES.extract("No effusion. Small right effusion. No effusion.")
    assert [(e.text, e.assertion) for e in kg.entities if e.type == "finding"] == [("effusion", "absent"),
                                                                                 ("effusion", "present")]
    unmerged = get_extractor("rules", merge_repeats=False).extract("No effusion. No effusion.")
    assert len(unmerged) == 2
    arrays = RULES.extract("Focal consolidation in the right lower lobe, suggestive of pneumonia.").to_arrays()
    assert arrays["entity_types"].dtype == np.int16 and arrays["entity_assertions"].dtype == np.int8
    assert arrays["relations"].shape == (3, 2) and arrays["relations"].dtype == np.int32
    assert set(arrays["relation_types"].tolist()) == {0, 1, 2}
    assert arrays["entity_assertions"].tolist() == [0, 0, 0, 2]
    assert RULES.extract("").entities == [] and RULES.extract("XXXX XXXX.").relations == []


def test_entity_offsets_point_at_the_text():
    text = "İİ FINDINGS: Small left pleural effusion."  # U+0130 lower-cases to two characters
    for entity in RULES.extract(text).entities:
        assert text[entity.start:entity.end].lower() == entity.text


def test_graph_validation():
    with pytest.raises(ValueError):
        KnowledgeGraph([Entity("a", "finding")], [Relation(0, 1, "modifies")])
    with pytest.raises(ValueError):
        Entity("a", "finding", "maybe")


def test_registry_and_provenance():
    assert isinstance(RULES, KGExtractor)
    ref = extractor_ref(RULES)
    assert isinstance(ref, KGExtractorRef) and ref.name == "neural-rules" and ref.config["scope"] == "clause"
    with pytest.raises(BuildInputError) as info:
        get_extractor("no-such-extractor")
    assert info.value.code == "NB-K001"
    for name, module in (("radgraph", "radgraph"), ("spacy", "spacy")):
        if importlib.util.find_spec(module) is None:
            with pytest.raises(BuildInputError) as info:
                get_extractor(name)
            assert info.value.code == "NB-K001" and module in str(info.value)
    assert list(ENTITY_TYPES) == ["finding", "anatomy", "device", "modifier"]
    assert list(RELATION_TYPES) == ["located_at", "modifies", "suggestive_of"]


def test_real_iu_reports_negations():
    """On real IU X-ray reports, every "no <finding>" gets that finding absent."""
    from neural_builders.inputs import load_iu_xray_reports
    try:
        reports = load_iu_xray_reports(limit=400)
    except BuildInputError:
        pytest.skip("torchxrayvision not installed")
    pattern = re.compile(r"\bno (pneumothorax|pleural effusion|focal consolidation|edema|pneumonia)\b", re.I)
    checked = 0
    for report in reports:
        text = report.text_for_model
        kg = RULES.extract(text)
        for match in pattern.finditer(text):
            finding = match.group(1).lower().replace("focal ", "")
            states = {e.assertion for e in kg.entities if e.text == finding}
            assert "absent" in states, (report.report_id, text)
            checked += 1
    assert checked >= 50
    # and the extractor finds something in almost every report
    assert sum(1 for r in reports if RULES.extract(r.text_for_model).entities) >= 0.97 * len(reports)


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_WORDS = ["no", "not", "pneumothorax", "right", "lower", "lobe", "effusion", "is", "seen", ",", ".", "and", "or",
          "possible", "suggestive", "of", "pneumonia", "the", "lungs", "are", "clear", "but", "without", "XXXX",
          "cannot", "be", "excluded", "small", "heart", ";", "\n", "consistent", "with", "focal", "opacity"]


@settings(max_examples=150, deadline=None)
@given(st.one_of(st.text(max_size=200), st.lists(st.sampled_from(_WORDS), max_size=40).map(" ".join)))
def test_extractor_never_fails_and_output_is_well_formed(text):
    kg = RULES.extract(text)
    for entity in kg.entities:
        assert entity.type in ENTITY_TYPES
        assert 0 <= entity.start < entity.end <= len(text)
        # the span holds exactly the entity's words (separators between them may vary)
        assert re.findall(r"[a-z0-9]+(?:[-'][a-z0-9]+)*", text[entity.start:entity.end].lower()) == entity.text.split()
    for relation in kg.relations:
        assert relation.type in RELATION_TYPES and relation.source != relation.target
        source, target = kg.entities[relation.source], kg.entities[relation.target]
        if relation.type == "located_at":
            assert target.type == "anatomy" and source.type in ("finding", "device")
        elif relation.type == "suggestive_of":
            assert source.type == target.type == "finding"
        else:
            assert source.type == "modifier" and target.type != "modifier"
    assert RULES.extract(text).triples() == kg.triples()  # deterministic


def _bench_kg_iu():
    """benchmarks/bench_kg_iu.py as a module (benchmarks/ is not a package)."""
    from pathlib import Path
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_kg_iu.py"
    spec = importlib.util.spec_from_file_location("bench_kg_iu", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


REASON_CLASSES = {"mesh:negation-indexed", "mesh:hedge-not-indexed", "mesh:inferred-against-text", "mesh:non-lung-site",
                  "mesh:other-heading", "report:dictation", "extractor:vocabulary", "extractor:negation-scope",
                  "extractor:historical", "extractor:clause-segmentation", "extractor:exam-limitation"}
ASSERTION_OR_NONE = {"present", "uncertain", "absent", "none"}


def test_iu_adjudication_table_is_well_formed_and_matches_the_archive():
    """The adjudication table (benchmarks/data/iu_mesh_adjudication.csv): one row per (report, finding),
    a reason from the documented classes, and - where the IU archive is installed - the MeSH label
    it records is the archive's, and its deciding phrase is in that report's text."""
    import csv
    bench = _bench_kg_iu()
    rows = list(csv.DictReader(bench.ADJUDICATION.open(newline="")))
    assert len(rows) >= 40
    assert len({(r["report_id"], r["finding"]) for r in rows}) == len(rows)
    for r in rows:
        assert r["finding"] in bench.MESH and r["reason_class"] in REASON_CLASSES, r
        assert r["mesh"] in ("0", "1") and r["adjudicated"] in ("0", "1"), r
        assert r["extractor_1_1"] in ASSERTION_OR_NONE and r["extractor_1_2"] in ASSERTION_OR_NONE, r
        assert 0 < len(r["deciding_phrase"]) <= 120, r  # a phrase, not the report
        # the reason says why the label moved away from MeSH, or, where it kept MeSH's label, why the
        # extractor disagrees; a dictation error can do either
        side = "mesh:" if r["mesh"] != r["adjudicated"] else "extractor:"
        assert r["reason_class"].startswith(side) or r["reason_class"] == "report:dictation", r
    try:
        from neural_builders.inputs.reports import iu_xray_archive_path
        archive = iu_xray_archive_path()
    except BuildInputError:
        pytest.skip("torchxrayvision not installed")
    wanted = {r["report_id"] for r in rows}
    reports = {rep.report_id: rep for rep in bench.iu_reports(archive) if rep.report_id in wanted}
    assert set(reports) == wanted
    known = {rid: bench.mesh_labels(rep.mesh, rep.mesh_automatic) for rid, rep in reports.items()}
    assert len(bench.load_adjudication(bench.ADJUDICATION, known)) == len(rows)  # the bench's own check agrees
    for r in rows:
        text = reports[r["report_id"]].text_for_model.lower()
        assert all(part.lower() in text for part in r["deciding_phrase"].split(" ... ")), r


def test_iu_held_out_part_is_fixed_by_report_id():
    bench = _bench_kg_iu()
    ids = [f"CXR{i}" for i in range(1, 4000)]
    share = sum(map(bench.held_out, ids)) / len(ids)
    assert 0.17 < share < 0.23
    assert [bench.held_out(i) for i in ("CXR343", "CXR1000", "CXR1570", "CXR3103")] == [True, True, False, False]
