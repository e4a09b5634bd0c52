"""Provenance digests are the SHA-256 of the weight files' bytes, on any device and in any dtype."""
import hashlib
import os
import time
from types import SimpleNamespace

import pytest
pytest.importorskip("torch")
import torch  # noqa: E402

from neural_builders.build import model_refs  # noqa: E402
from neural_builders.vlm import weight_digests  # noqa: E402
from neural_builders.vlm.model import DECODER_FILE, ENCODER_FILE, ReportGenerator, tiny_config  # noqa: E402


def _files(directory):
    return {name: hashlib.sha256((directory / name).read_bytes()).hexdigest() for name in (ENCODER_FILE, DECODER_FILE)}


def _model():
    torch.manual_seed(0)
    return ReportGenerator(tiny_config(40)).eval()


def test_digests_are_the_files_bytes_on_the_test_device(tmp_path, device):
    model = _model().to(device)
    model.save_pretrained(tmp_path / "m")
    assert model.weights_sha256() == _files(tmp_path / "m")
    loaded = ReportGenerator.from_pretrained(tmp_path / "m", device=device)
    assert loaded.weights_sha256() == _files(tmp_path / "m")
    encoder, decoder = model_refs(loaded)  # what a build writes into the collection
    assert (encoder.weights_sha256, decoder.weights_sha256) == (_files(tmp_path / "m")[ENCODER_FILE],
                                                                _files(tmp_path / "m")[DECODER_FILE])
    # tied embeddings are stored once, whatever the device (found by shared storage before any copy)
    from safetensors import safe_open
    with safe_open(str(tmp_path / "m" / DECODER_FILE), "pt") as f:
        keys = set(f.keys())
    assert "t5.shared.weight" in keys and "t5.lm_head.weight" not in keys


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_digests_follow_the_file_when_the_model_runs_in_another_dtype(tmp_path, device, dtype):
    half = _model().to(device=device, dtype=dtype)
    half.save_pretrained(tmp_path / "half")
    assert half.weights_sha256() == _files(tmp_path / "half")
    # loaded into a float32 model: the in-memory bytes differ from the file's, the weights do not
    loaded = ReportGenerator.from_pretrained(tmp_path / "half", device=device)
    assert next(loaded.parameters()).dtype == torch.float32
    assert loaded.weights_sha256() == _files(tmp_path / "half")
    # a float32 file run in half precision: the weights are no longer the file's, so the digest is
    # that of the file the half-precision model writes
    full = _model()
    full.save_pretrained(tmp_path / "full")
    full.to(device=device, dtype=dtype)
    assert full.weights_sha256() != _files(tmp_path / "full")
    full.save_pretrained(tmp_path / "again")
    assert full.weights_sha256() == _files(tmp_path / "again")


def test_changed_weights_no_longer_claim_the_file(tmp_path, device):
    model = ReportGenerator.from_pretrained(_model().save_pretrained(tmp_path / "m"), device=device)
    with torch.no_grad():
        model.projection.linear.bias.add_(1.0)
    digests = model.weights_sha256()
    assert digests[ENCODER_FILE] != _files(tmp_path / "m")[ENCODER_FILE]
    assert digests[DECODER_FILE] == _files(tmp_path / "m")[DECODER_FILE]  # the decoder is untouched
    model.save_pretrained(tmp_path / "changed")
    assert model.weights_sha256() == _files(tmp_path / "changed")


@pytest.fixture
def hashed(monkeypatch):
    """The sizes of what the digest cache hashes, call by call; files count as old at once."""
    weight_digests.forget()
    monkeypatch.setattr(weight_digests, "RACY_NS", 0)
    sizes = []
    monkeypatch.setattr(weight_digests, "hashlib",
                        SimpleNamespace(sha256=lambda data: sizes.append(len(data)) or hashlib.sha256(data)))
    yield sizes
    weight_digests.forget()


def test_an_unchanged_file_is_hashed_once_and_a_rewritten_one_again(tmp_path, device, hashed):
    directory = _model().save_pretrained(tmp_path / "m")
    files = _files(directory)
    time.sleep(0.05)
    loaded = ReportGenerator.from_pretrained(directory, device=device)
    assert loaded.weights_sha256() == files and len(hashed) == 2
    assert loaded.weights_sha256() == files and len(hashed) == 2  # the second build hashes nothing
    # the decoder file rewritten in place with another model's weights: same size, same inode,
    # modification time set back; only the status-change time tells
    path = directory / DECODER_FILE
    before = os.stat(path)
    torch.manual_seed(1)
    blob = ReportGenerator(tiny_config(40)).weight_blobs()[DECODER_FILE]
    assert len(blob) == before.st_size and hashlib.sha256(blob).hexdigest() != files[DECODER_FILE]
    time.sleep(0.05)
    with open(path, "r+b") as f:
        f.write(blob)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = os.stat(path)
    assert (after.st_ino, after.st_size, after.st_mtime_ns) == (before.st_ino, before.st_size, before.st_mtime_ns)
    time.sleep(0.05)
    reloaded = ReportGenerator.from_pretrained(directory, device=device)
    assert reloaded.weights_sha256()[DECODER_FILE] == hashlib.sha256(blob).hexdigest()
    # the first model no longer holds its file's weights: its digest is that of its own weights
    assert loaded.weights_sha256()[DECODER_FILE] == files[DECODER_FILE]


def test_a_weight_changed_in_place_after_caching_gets_a_new_digest(tmp_path, device, hashed):
    directory = _model().save_pretrained(tmp_path / "m")
    files = _files(directory)
    time.sleep(0.05)
    model = ReportGenerator.from_pretrained(directory, device=device)
    assert model.weights_sha256() == model.weights_sha256() == files
    parameter = next(model.t5.parameters())
    version = parameter._version
    parameter.data[0, 0] += 1.0  # through .data: no version counter moves
    assert parameter._version == version
    digests = model.weights_sha256()
    assert digests[ENCODER_FILE] == files[ENCODER_FILE] and digests[DECODER_FILE] != files[DECODER_FILE]
    model.save_pretrained(tmp_path / "changed")
    assert digests == _files(tmp_path / "changed")


def test_a_file_written_just_now_is_not_remembered(tmp_path, monkeypatch):
    """A file whose times are within RACY_NS of its hashing may change again unseen in the same tick."""
    weight_digests.forget()
    sizes = []
    monkeypatch.setattr(weight_digests, "hashlib",
                        SimpleNamespace(sha256=lambda data: sizes.append(len(data)) or hashlib.sha256(data)))
    model = _model()
    model.save_pretrained(tmp_path / "m")
    assert model.weights_sha256() == model.weights_sha256() == _files(tmp_path / "m")
    assert len(sizes) == 4
