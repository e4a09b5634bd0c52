"""The writer's background fdatasync: an I/O error fails the close (never a silent half-durable
file); a descriptor the file system cannot sync through is not an error."""
import errno
import os

import pytest

import neural_format as nf
from neural_format.collections.synthetic import synthetic_meta, synthetic_records

pytestmark = pytest.mark.skipif(not hasattr(os, "fdatasync"), reason="background sync is Linux-only")


def _write(path, **kwargs):
    meta = synthetic_meta()
    with nf.CollectionWriter(path, meta, batch_records=4, **kwargs) as writer:
        writer.extend(synthetic_records(10, meta, seed=1))


def test_an_io_error_in_the_background_sync_fails_the_close(tmp_path, monkeypatch):
    calls = []

    def failing(fd):
        calls.append(fd)
        raise OSError(errno.EIO, "simulated I/O error")

    monkeypatch.setattr(os, "fdatasync", failing)
    with pytest.raises(OSError) as caught:
        _write(tmp_path / "c.h5")
    assert caught.value.errno == errno.EIO and calls
    assert not (tmp_path / "c.h5").exists()
    assert not list(tmp_path.glob(".*.partial"))  # the temporary file was removed


def test_an_unsupported_sync_is_not_an_error(tmp_path, monkeypatch):
    def unsupported(fd):
        raise OSError(errno.EINVAL, "not supported here")

    monkeypatch.setattr(os, "fdatasync", unsupported)
    _write(tmp_path / "c.h5")
    assert nf.validate(tmp_path / "c.h5").ok
