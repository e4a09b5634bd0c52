"""CI+GT: reports generated from the STORED (pruned) patch features, scored, and turned into graphs.

1. **Generate.** The stage-1 decoder (:class:`neural_builders.vlm.model.ReportGenerator`) reads
   only what the collection keeps: for record ``r`` with retained patch features ``f_i`` at grid
   positions ``(row_i, col_i)`` of a ``grid_shape = (G_r, G_c)`` grid, the decoder's memory is

       m_i = Linear(LayerNorm(f_i)) + W_pos · code((row_i + 0.5) / G_r, (col_i + 0.5) / G_c),

   the generator's own projection and 2-D sine/cosine position code (the same terms it applies
   to the full Swin grid), with every retained patch a real token (attention mask 1) and
   padding only to batch records of different sizes. Greedy decoding (``num_beams=1``), so
   the text is deterministic.
2. **Score.** BLEU-2 (Papineni et al. 2002, N = 2, uniform weights) against the stored
   ground-truth report, computed by **sacrebleu** (``sacrebleu.metrics.BLEU(max_ngram_order=2,
   lowercase=True, tokenize="13a", smooth_method="none", effective_order=False)``, reported on a
   0-1 scale; :func:`bleu_signature` gives sacrebleu's signature, e.g.
   ``nrefs:1|case:lc|eff:no|tok:13a|smooth:none|version:2.6.0``):

       p_n = sum_{g in n-grams(c)} min(count_c(g), count_r(g)) / sum_g count_c(g)
       BP  = 1 if len(c) >= len(r) else exp(1 - len(r) / len(c))
       BLEU-2 = BP · exp(½ log p_1 + ½ log p_2)

   The corpus score sums clipped counts and lengths over all records first (no smoothing; a
   sentence with no matching bigram scores 0). Sentence scores use the same variant (no
   effective order), so a one-word candidate scores 0.
3. **Rebuild.** The generated report goes through the collection's KG extractor (builders-A's
   :func:`neural_builders.kg.get_extractor`, the one named in the file's provenance), entity
   features are re-embedded when the file has them, and the bridge is recomputed with
   :func:`neural_format.graphs.fusion.betweenness_bridge`. Patches, labels and geometry are kept. The
   records are written to a NEW collection (``report_source = "generated"``; the writer never
   updates in place) whose provenance history says what was done.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from neural_format.format.record import Record
from . import optional_deps

# how many records are decoded at once and how long a generated report may be (the command's flags read these)
GENERATION_BATCH_SIZE = 16
MAX_NEW_TOKENS = 64


# -- BLEU-2 (sacrebleu) ---------------------------------------------------------------------------
def _bleu():
    BLEU = optional_deps.load("sacrebleu.metrics", needed_by="BLEU-2").BLEU
    return BLEU(max_ngram_order=2, lowercase=True, tokenize="13a", smooth_method="none", effective_order=False)


def bleu_signature() -> str:
    """sacrebleu's signature of the exact BLEU variant (order, case, tokenizer, smoothing, version)."""
    bleu = _bleu()
    bleu.corpus_score(["a"], [["a"]])  # sacrebleu knows the reference count only after scoring
    return str(bleu.get_signature())


def bleu2(candidate: str, reference: str) -> float:
    """Sentence BLEU-2 (module docstring), 0-1."""
    import logging
    logger = logging.getLogger("sacrebleu")
    level = logger.level
    logger.setLevel(logging.ERROR)  # its advice to use effective order: this variant is chosen on purpose
    try:
        return _bleu().sentence_score(candidate or "", [reference or ""]).score / 100.0
    finally:
        logger.setLevel(level)


def corpus_bleu2(candidates: Sequence[str], references: Sequence[str]) -> float:
    """Corpus BLEU-2: clipped counts and lengths summed over all pairs before the ratio, 0-1."""
    if len(candidates) != len(references):
        raise ValueError(f"{len(candidates)} candidates but {len(references)} references")
    return _bleu().corpus_score([c or "" for c in candidates], [[r or "" for r in references]]).score / 100.0


# -- generation from stored patches ----------------------------------------------------------------
def encode_stored_patches(generator, records: Sequence[Record]):
    """The decoder memory (``Encoded``) for a batch of records, from their stored patches only."""
    torch = optional_deps.load("torch", needed_by="generate_reports")
    from neural_builders.vlm.model import Encoded, position_code

    projection = generator.projection
    width = max(max(r.num_patches for r in records), 1)
    device = next(generator.parameters()).device
    projected = torch.zeros((len(records), width, generator.t5.config.d_model), device=device)
    mask = torch.zeros((len(records), width), dtype=torch.long, device=device)
    features = torch.zeros((len(records), width, generator.swin_dim), device=device)
    for b, record in enumerate(records):
        if record.patch_positions is None or record.geometry is None:
            raise ValueError(f"record {record.record_id!r} has no patch positions/geometry; "
                             "the decoder needs each patch's place in the grid")
        k = record.num_patches
        if k == 0:
            continue
        f = torch.as_tensor(np.asarray(record.patch_features, np.float32), device=device)
        if f.shape[1] != generator.swin_dim:
            raise ValueError(f"stored patch features have width {f.shape[1]}; the generator's encoder gives "
                             f"{generator.swin_dim}")
        grid_rows, grid_cols = (int(v) for v in record.geometry.grid_shape[-2:])
        grid = (grid_rows, grid_cols)
        rows_cols = np.asarray(record.patch_positions, np.int64)[:, -2:]
        table = position_code(grid, grid, projection.frequencies).to(device)
        codes = table[torch.as_tensor(rows_cols[:, 0] * grid[1] + rows_cols[:, 1], device=device)]
        projected[b, :k] = projection.linear(projection.norm(f)) + projection.position(codes)
        features[b, :k] = f
        mask[b, :k] = 1
    return Encoded(features, projected, mask, [])


def generate_reports(generator, records: Sequence[Record], *, batch_size: int = GENERATION_BATCH_SIZE,
                     max_new_tokens: int = MAX_NEW_TOKENS, tokenizer=None, progress=None) -> list[str]:
    """One greedy report per record, from its stored patch features."""
    torch = optional_deps.load("torch", needed_by="generate_reports")
    tokenizer = tokenizer if tokenizer is not None else generator.tokenizer
    if tokenizer is None:
        raise ValueError("the report generator has no tokenizer; pass tokenizer=")
    generator.eval()
    out: list[str] = []
    with torch.no_grad():
        for start in range(0, len(records), batch_size):
            batch = records[start:start + batch_size]
            encoded = encode_stored_patches(generator, batch)
            texts = generator.generate_reports(encoded, tokenizer, max_new_tokens=max_new_tokens)
            out.extend(t.strip() for t in texts)
            if progress is not None:
                progress.update(len(batch))
    return out


# -- KG from generated reports -----------------------------------------------------------------------
class KGRebuilder:
    """Re-extract a record's KG from new report text, as the collection's builder did."""

    def __init__(self, meta, *, extractor: Optional[str] = None, embedder=None):
        from neural_builders.kg import available_extractors, get_extractor
        name = extractor or (meta.provenance.kg_extractor.name if meta.provenance.kg_extractor else "rules")
        known = available_extractors()
        # provenance names the extractor as built (e.g. "neural-rules"); the registry by its key ("rules")
        key = name if name in known else next((k for k in known if name.endswith(k)), "rules")
        self.extractor = get_extractor(key)
        self.meta = meta
        self.embedder = embedder
        if meta.entity_feature_dim and self.embedder is None:
            from neural_builders.text_embedding import SentenceEmbedder
            self.embedder = SentenceEmbedder(device="cpu")

    def rebuild(self, record: Record, report: str) -> Record:
        from neural_format.graphs.fusion import record_bridge
        kg = self.extractor.extract(report).to_arrays(self.meta.entity_types, self.meta.relation_types)
        features = None
        if self.meta.entity_feature_dim:
            features = self.embedder.encode(kg["entity_text"]).astype(self.meta.entity_feature_dtype)
        fusion = self.meta.provenance.fusion
        bridge = record_bridge(record.num_patches, record.patch_edges, record.patch_scores, kg["relations"],
                               kg["entity_types"], kg["entity_assertions"], self.meta.entity_types,
                               fusion.tie_break if fusion is not None else "lowest-index")
        return dataclasses.replace(
            record, entity_types=kg["entity_types"], entity_assertions=kg["entity_assertions"],
            entity_text=kg["entity_text"] if self.meta.has_entity_text else None, entity_features=features,
            relations=kg["relations"], relation_types=kg["relation_types"], bridge=bridge,
            report=report, report_source="generated")


def generated_meta(meta, generator_name: str, source_name: str):
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    line = f"{stamp} reports generated from stored patch features by {generator_name} of {source_name}; KG rebuilt"
    provenance = meta.provenance.model_copy(update={"history": [*meta.provenance.history, line[:256]]})
    return meta.model_copy(update={"provenance": provenance, "shard": None})


def generate_collection(source, destination, generator, *, batch_size: int = GENERATION_BATCH_SIZE,
                        max_new_tokens: int = MAX_NEW_TOKENS,
                        limit: Optional[int] = None, overwrite: bool = False, progress: Optional[bool] = None,
                        embedder=None, compression: Optional[str] = None, compression_level: Optional[int] = None,
                        chunk_bytes: Optional[int] = None, dtype: Optional[str] = None) -> dict:
    """Write ``destination``: ``source``'s records with generated reports and rebuilt KGs.

    Storage follows the source (its first shard), as ``reprune`` and ``merge`` do, unless
    overridden: ``compression`` None keeps the source's filter, ``"none"``/``"gzip"``/``"lzf"`` set
    it; ``compression_level``, ``chunk_bytes`` and ``dtype`` (stored feature dtype) likewise. A
    gzip collection must not come back unfiltered and several times larger.

    Returns the BLEU-2 summary against the stored ground-truth reports.
    """
    from neural_format.collections.collection import open_collection
    from neural_format.internals.progress import Progress
    from neural_format.collections.reprune import with_feature_dtype
    from neural_format.files.writer import CollectionWriter

    with open_collection(source) as collection:
        meta = collection.meta
        records = collection.read_all()
        storage = collection.shard(0).storage.overridden(compression, compression_level, chunk_bytes)
    if limit is not None:
        records = records[:limit]
    name = getattr(generator, "source_dir", None)
    meta_out = with_feature_dtype(
        generated_meta(meta, Path(name).name if name else type(generator).__name__, Path(str(source)).name), dtype)
    rebuilder = KGRebuilder(meta_out, embedder=embedder)
    with Progress(len(records), "generating reports", enabled=progress) as bar:
        texts = generate_reports(generator, records, batch_size=batch_size, max_new_tokens=max_new_tokens,
                                 progress=bar)
    references = [r.report if r.report_source == "ground_truth" else None for r in records]
    with CollectionWriter(destination, meta_out, overwrite=overwrite, **storage.writer_kwargs()) as writer:
        for record, text in zip(records, texts):
            writer.append(rebuilder.rebuild(record, text))
    pairs = [(t, ref) for t, ref in zip(texts, references) if ref]
    sentence = [bleu2(t, ref) for t, ref in pairs]
    return {"records": len(records), "with_ground_truth": len(pairs),
            "corpus_bleu2": corpus_bleu2([t for t, _ in pairs], [r for _, r in pairs]) if pairs else float("nan"),
            "mean_sentence_bleu2": float(np.mean(sentence)) if sentence else float("nan"),
            "bleu_signature": bleu_signature(),
            "examples": [{"record_id": r.record_id, "generated": t, "ground_truth": ref}
                         for r, t, ref in list(zip(records, texts, references))[:5]]}
