"""`neural-format demo --quick`: every step of the demo end to end on a tiny set."""
import pytest

from neural_format.cli import main

pytest.importorskip("torch")  # the demo fine-tunes and builds: the torch and builders extras
pytest.importorskip("transformers")


def test_quick_demo_runs_end_to_end(tmp_path, capsys):
    assert main(["demo", "--quick", "--out", str(tmp_path), "--threads", "1"]) == 0
    text = capsys.readouterr().out
    for step in ("[1/6]", "[2/6]", "[3/6]", "[4/6] validation: OK", "[5/6]", "[6/6]", "lesion recall"):
        assert step in text, step
    assert "random" in text and "records written" in text
    assert (tmp_path / "phantom_collection.h5").stat().st_size > 0
    assert (tmp_path / "render.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    model_files = {p.name for p in (tmp_path / "report_generator" / "model").iterdir()}
    assert {"encoder.safetensors", "decoder.safetensors", "config.json"} <= model_files
