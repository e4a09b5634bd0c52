"""The spec, the check registry and the conformance fixtures agree clause by clause."""
import json
import re
from pathlib import Path

import pytest

import neural_format as nf
from neural_format.validation import CLAUSES, REGISTRY

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "spec" / "neural-format-1.0.md"
CONFORMANCE = ROOT / "spec" / "conformance"
EXPECTED = json.loads((CONFORMANCE / "expected.json").read_text())
# a clause is stated in the spec as a bold ID at the start of a list item: "- **NF-R003** (error) ..."
STATED = re.compile(r"^- \*\*(NF-[A-Z]\d{3})\*\* \((error|warning|best-practice)\)", re.M)


def _fixture(code: str, kind: str) -> Path:
    suffix = "" if CLAUSES[code].scope == "manifest" else ".h5"
    return CONFORMANCE / f"{code}.{kind}{suffix}"


def test_spec_states_exactly_the_clause_list_with_its_severities():
    stated = dict(STATED.findall(SPEC.read_text()))
    assert stated == {code: clause.severity for code, clause in CLAUSES.items()}


def test_every_clause_has_one_registered_check_of_its_severity():
    assert set(REGISTRY) == set(CLAUSES)
    assert all(REGISTRY[code].severity == CLAUSES[code].severity for code in CLAUSES)


def test_every_clause_has_fixtures_and_an_expected_code():
    assert EXPECTED == {_fixture(code, "invalid").name: code for code in CLAUSES}
    for code in CLAUSES:
        assert _fixture(code, "valid").exists() and _fixture(code, "invalid").exists(), code


def test_corpus_is_small():
    """Below 2 MB of distinct files (many valid fixtures are the same bytes; git stores them once)."""
    import hashlib
    sizes = {hashlib.sha256(p.read_bytes()).digest(): p.stat().st_size
             for p in CONFORMANCE.rglob("*") if p.is_file() and p.suffix != ".py" and p.name != "run"}
    assert sum(sizes.values()) < 2_000_000


@pytest.mark.parametrize("code", sorted(CLAUSES))
def test_valid_fixture_has_no_error(code):
    report = nf.validate(_fixture(code, "valid"))
    assert report.ok, report.to_text()
    assert report.exit_code == 0, report.to_text()  # the valid fixtures are clean, not just error-free


@pytest.mark.parametrize("code", sorted(CLAUSES))
def test_invalid_fixture_reports_its_clause(code):
    report = nf.validate(_fixture(code, "invalid"))
    assert code in report.codes, report.to_text()
    # --strict fails on every finding; without it best-practice findings alone exit 0
    assert report.exit_code_for(strict=True) == (2 if CLAUSES[code].severity == "error" else
                                                 max(1, report.exit_code))


def _generator():
    import importlib.util
    spec = importlib.util.spec_from_file_location("conformance_generate", CONFORMANCE / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("code", ["NF-R003", "NF-H004", "NF-I001"])
def test_fixtures_are_what_the_generator_makes(tmp_path, code):
    generate = _generator()
    valid, invalid = generate.cases()[code]
    generate.build_case(tmp_path / "fixture.h5", invalid)
    assert (tmp_path / "fixture.h5").read_bytes() == _fixture(code, "invalid").read_bytes()
