"""``neural-format validate``: text and JSON output, exit code by highest severity."""
import json
from pathlib import Path

from neural_format.cli import main

CONFORMANCE = Path(__file__).resolve().parents[1] / "spec" / "conformance"


def test_exit_codes_follow_the_highest_severity(capsys):
    assert main(["validate", str(CONFORMANCE / "NF-R003.valid.h5")]) == 0
    assert "OK" in capsys.readouterr().out
    assert main(["validate", str(CONFORMANCE / "NF-R006.invalid.h5")]) == 1  # a warning
    assert main(["validate", str(CONFORMANCE / "NF-S004.invalid.h5")]) == 0  # best practice: never fails...
    assert "--strict fails on them" in capsys.readouterr().out
    assert main(["validate", "--strict", str(CONFORMANCE / "NF-S004.invalid.h5")]) == 1  # ...unless --strict
    assert main(["validate", "--strict", str(CONFORMANCE / "NF-R003.valid.h5")]) == 0
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


def _cases():
    import neural_format as nf
    return {name: nf.validate(CONFORMANCE / name) for name in
            ("NF-R003.valid.h5", "NF-S004.invalid.h5", "NF-R006.invalid.h5", "NF-R003.invalid.h5")}


def test_api_and_cli_agree_on_every_severity(capsys):
    """report.passed(strict) is True exactly when the CLI exits 0; exit_code_for is the CLI's status."""
    expected = {"NF-R003.valid.h5": (0, 0), "NF-S004.invalid.h5": (0, 1),
                "NF-R006.invalid.h5": (1, 1), "NF-R003.invalid.h5": (2, 2)}
    for name, report in _cases().items():
        for strict, want in zip((False, True), expected[name]):
            argv = ["validate", str(CONFORMANCE / name), "--json"] + (["--strict"] if strict else [])
            code = main(argv)
            data = json.loads(capsys.readouterr().out)
            assert code == want == report.exit_code_for(strict) == data["exit_code"], (name, strict)
            assert report.passed(strict) is (code == 0) is data["passed"], (name, strict)
        assert report.exit_code == report.exit_code_for(False)
        assert report.ok is (name != "NF-R003.invalid.h5")  # ok: no error (warnings allowed)


def test_readme_example_file_exits_zero(tmp_path, capsys):
    """The README's example (synthetic provenance has no encoder hash: NF-P001) must not fail set -e."""
    import neural_format as nf
    from neural_format.collections.synthetic import synthetic_meta, synthetic_records
    meta = synthetic_meta(feature_dim=8)
    with nf.CollectionWriter(tmp_path / "example.h5", meta) as writer:
        writer.extend(synthetic_records(5, meta))
    report = nf.validate(tmp_path / "example.h5")
    assert main(["validate", str(tmp_path / "example.h5")]) == 0
    assert report.ok and report.passed()
