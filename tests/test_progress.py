"""neural_format.internals.progress: tqdm when installed, a plain fallback in a core-only install."""
import io

import pytest

from neural_format.internals.progress import Progress


def test_tqdm_backend_draws_counts_and_a_late_total():
    pytest.importorskip("tqdm")
    stream = io.StringIO()
    with Progress(None, "merging", stream=stream, enabled=True) as bar:
        assert bar.backend == "tqdm"
        bar.total = 10
        for _ in range(10):
            bar.update(1)
    text = stream.getvalue()
    assert "merging" in text and "10/10" in text and bar.count == 10


def test_plain_fallback_without_tqdm(monkeypatch):
    monkeypatch.setattr("neural_format.internals.progress._tqdm", lambda: None)
    stream = io.StringIO()
    with Progress(4, "hashing", stream=stream, enabled=True) as bar:
        assert bar.backend == "plain"
        bar.update(4)
    assert "hashing" in stream.getvalue() and "4/4" in stream.getvalue()
    with pytest.raises(ImportError, match="progress"):
        Progress(1, "x", use_tqdm=True)


@pytest.mark.parametrize("use_tqdm", [None, False])
def test_silent_when_not_enabled(use_tqdm):
    stream = io.StringIO()
    with Progress(3, "quiet", stream=stream, enabled=False, use_tqdm=use_tqdm) as bar:
        bar.update(3)
    assert stream.getvalue() == "" and bar.count == 3
