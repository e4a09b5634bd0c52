"""spec/conformance/run: the stand-alone runner of the conformance contract (spec section 9).

The SDK's validator passes every clause, in process (the runner's ``run`` with an invoker built on
:func:`neural_format.validate`) and as a command (the CLI on a few clauses: the whole corpus through
subprocesses takes a minute on two cores). A validator that breaks the contract fails.
"""
import importlib.machinery
import importlib.util
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

import neural_format as nf
from neural_format.validation import CLAUSES

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "spec" / "conformance"


def _runner():
    loader = importlib.machinery.SourceFileLoader("conformance_run", str(CORPUS / "run"))
    spec = importlib.util.spec_from_loader("conformance_run", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


run = _runner()


def _in_process(path):
    report = nf.validate(path)
    return report.exit_code, set(run.CLAUSE_ID.findall(report.to_text())), ""


def test_clauses_json_is_the_clause_list():
    listed = json.loads((CORPUS / "clauses.json").read_text(encoding="utf-8"))
    assert listed == {code: {"severity": c.severity, "scope": c.scope, "since": c.since, "summary": c.summary}
                      for code, c in CLAUSES.items()}


def test_sdk_validator_passes_every_clause_in_process():
    out = io.StringIO()
    verdicts = run.run(_in_process, run.load_corpus(CORPUS), jobs=2, out=out)
    assert set(verdicts) == set(CLAUSES)
    assert all(verdicts.values()), out.getvalue()
    assert out.getvalue().strip().endswith(f"{len(CLAUSES)} of {len(CLAUSES)} clauses pass")


def test_sdk_cli_passes_through_the_runner_script():
    only = "NF-R003,NF-C007,NF-R018"
    done = subprocess.run([sys.executable, str(CORPUS / "run"), "--jobs", "2", "--only", only, "--",
                           sys.executable, "-m", "neural_format", "validate"],
                          capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("PASS") == 3 and "3 of 3 clauses pass" in done.stdout


def test_version_selects_the_clauses_of_that_version():
    corpus = run.load_corpus(CORPUS)
    older = run.select(corpus, "1.0")
    assert "NF-R018" not in older and "NF-R003" in older
    assert set(run.select(corpus, "1.1")) == set(CLAUSES)


@pytest.mark.parametrize("broken, failing", [
    # a validator that reports nothing: every invalid fixture fails
    (lambda path: (0, set(), ""), set(CLAUSES)),
    # one that reports errors as exit status 1: the error clauses fail, the others pass
    (lambda path: (min(_in_process(path)[0], 1), _in_process(path)[1], ""),
     {c for c, clause in CLAUSES.items() if clause.severity == "error"}),
])
def test_a_validator_that_breaks_the_contract_fails(broken, failing):
    corpus = run.select(run.load_corpus(CORPUS), only=["NF-R003", "NF-R006", "NF-C007", "NF-S004"])
    verdicts = run.run(broken, corpus, out=io.StringIO())
    assert {c for c, ok in verdicts.items() if not ok} == failing & set(corpus)


def test_fixture_names_do_not_count_as_reports():
    assert run.CLAUSE_ID.findall("spec/conformance/NF-R003.valid.h5: OK") == []
    assert run.CLAUSE_ID.findall("NF-C007.invalid/manifest.json: ERROR NF-C007 digest") == ["NF-C007"]
