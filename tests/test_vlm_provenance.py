"""Provenance digests are the SHA-256 of the weight files' bytes, on any device and in any dtype."""
import hashlib

import pytest
pytest.importorskip("torch")
import torch  # noqa: E402

from neural_builders.build import model_refs  # noqa: E402
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
