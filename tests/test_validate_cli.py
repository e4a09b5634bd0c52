"""``neural-format validate``: text and JSON output, exit code by highest severity."""
import json
from pathlib import Path

from neural_format.cli import main

CONFORMANCE = Path(__file__).resolve().parents[1] / "spec" / "conformance"


def test_exit_codes_follow_the_highest_severity(capsys):
    assert main(["validate", str(CONFORMANCE / "NF-R003.valid.h5")]) == 0
    assert "OK" in capsys.readouterr().out
    assert main(["validate", str(CONFORMANCE / "NF-R006.invalid.h5")]) == 1  # a warning
    assert main(["validate", str(CONFORMANCE / "NF-S004.invalid.h5")]) == 1  # best practice
    assert main(["validate", str(CONFORMANCE / "NF-R003.invalid.h5")]) == 2
    out = capsys.readouterr().out
    assert "NF-R003" in out and "FAILED" in out


def test_json_output(capsys):
    assert main(["validate", str(CONFORMANCE / "NF-H003.invalid.h5"), "--json"]) == 2
    report = json.loads(capsys.readouterr().out)
    assert report["exit_code"] == 2
    assert any(f["code"] == "NF-H003" and f["location"] == "/patches/alias" for f in report["findings"])


def test_sharded_collection_directory(capsys):
    assert main(["validate", str(CONFORMANCE / "NF-C005.valid")]) == 0
    assert main(["validate", str(CONFORMANCE / "NF-C005.invalid" / "manifest.json")]) == 2
    assert "NF-C005" in capsys.readouterr().out
