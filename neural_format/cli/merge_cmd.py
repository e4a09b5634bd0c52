"""``neural-format merge OUT SRC [SRC ...]``: stream files and collections into one collection file.

Sources are collection files, collection directories or manifests, read in the order given.
Refused before anything is written: record IDs present in more than one source (NF-C006) and
metadata that cannot share a file (NF-C009: feature dimensions or dtypes, vocabularies, spatial
axes, adjacency, tiles; and, unless ``--allow-mixed-provenance``, different encoder, decoder,
score aggregation, pruning, KG extractor or fusion rule). When any source's entity text is
partial (``entity_text_partial``, format 1.1.0), so is the output's, and the records of the other
sources are marked known. The output is written in batches through
the crash-safe writer, so it appears under its name only when complete. It keeps the first
source's storage settings (compression, gzip level, chunk size, feature dtype) unless
``--compression``/``--compression-level``/``--chunk-bytes``/``--dtype`` say otherwise.
"""
from __future__ import annotations

from pathlib import Path

from ..files.writer import BATCH_RECORDS
from . import int_at_least


def with_partial_text(meta, partial: bool):
    """``meta`` whose entity text is partial (format 1.1.0) when ``partial``: a collection whose
    text is known for every record merges with one whose text is unknown for some."""
    return meta.model_copy(update={"entity_text_partial": True}) if partial and meta.has_entity_text else meta


def merged_meta(metas, counts, sources):
    """The first source's metadata, without shard info, with the merge in its history; its entity
    text is partial when any source's is."""
    first = with_partial_text(metas[0], any(m.entity_text_partial for m in metas))
    sizes = [m.provenance.source_bytes for m in metas]
    note = f"merge: {len(metas)} sources, {sum(counts)} records ({', '.join(Path(str(s)).name for s in sources)})"
    provenance = first.provenance.model_copy(update={
        "history": list(first.provenance.history) + [note[:256]],
        "source_bytes": sum(sizes) if all(s is not None for s in sizes) else None})
    return first.model_copy(update={"shard": None, "provenance": provenance})


def merge(out, sources, *, allow_mixed_provenance: bool = False, compression=None, batch_records: int = BATCH_RECORDS,
          overwrite: bool = False, progress=None, compression_level=None, chunk_bytes=None, dtype=None) -> int:
    """Merge ``sources`` into the collection file ``out``; returns the number of records written.

    Storage follows the first source (its first shard) unless overridden: ``compression`` None
    keeps it, ``"none"``/``"gzip"``/``"lzf"`` set it; ``compression_level``, ``chunk_bytes`` and
    ``dtype`` (feature dtype) likewise."""
    from ..collections.reprune import with_feature_dtype
    from ..collections.collection import open_collection
    from ..errors import SchemaError
    from ..collections.manifest import check_compatible_meta
    from ..files.writer import CollectionWriter

    colls = [open_collection(s) for s in sources]
    try:
        metas = [c.meta for c in colls]
        partial = any(m.entity_text_partial for m in metas)
        for source, coll in zip(sources, colls):
            for k, meta in [(None, coll.meta)] + [(k, coll.shard(k).meta) for k in range(coll.shard_count)]:
                # every shard of a source, not only its first
                check_compatible_meta(with_partial_text(metas[0], partial), with_partial_text(meta, partial),
                                      location=str(source) if k is None else f"{source}:{k}",
                                      provenance=not allow_mixed_provenance)
        owner: dict[str, str] = {}
        for source, coll in zip(sources, colls):
            for rid in coll.record_ids():
                if rid in owner:
                    raise SchemaError("NF-C006", "record ID occurs in more than one source", location=str(source),
                                      expected="IDs unique across the merged sources",
                                      found=f"{rid!r} (also in {owner[rid]})")
                owner[rid] = str(source)
        counts = [len(c) for c in colls]
        if progress is not None and getattr(progress, "total", 0) is None:
            progress.total = sum(counts)
        storage = colls[0].shard(0).storage.overridden(compression, compression_level, chunk_bytes)
        meta = with_feature_dtype(merged_meta(metas, counts, sources), dtype)
        with CollectionWriter(out, meta, overwrite=overwrite, batch_records=batch_records,
                              **storage.writer_kwargs()) as writer:
            for coll in colls:
                for batch in coll.iter_batches(batch_records):
                    writer.extend(batch)
                    if progress is not None:
                        progress.update(len(batch))
            return len(writer)
    finally:
        for c in colls:
            c.close()


def run(args) -> int:
    from ..internals.progress import Progress
    with Progress(None, "merging") as bar:
        n = merge(args.out, args.sources, allow_mixed_provenance=args.allow_mixed_provenance,
                  compression=args.compression, batch_records=args.batch_records, overwrite=args.overwrite,
                  progress=bar, compression_level=args.compression_level, chunk_bytes=args.chunk_bytes,
                  dtype=args.dtype)
    print(f"merged {n:,} records from {len(args.sources)} sources into {args.out}")
    return 0


def register(sub) -> None:
    p = sub.add_parser("merge", help="merge collection files and/or sharded collections into one file")
    p.add_argument("out", help="the collection file to write")
    p.add_argument("sources", nargs="+", help="collection files, collection directories or manifest.json files")
    p.add_argument("--allow-mixed-provenance", action="store_true",
                   help="merge sources made with different models/pruning (recorded in the history)")
    from .reprune_cmd import add_storage_arguments
    add_storage_arguments(p)
    p.add_argument("--batch-records", type=int_at_least(1), default=BATCH_RECORDS)
    p.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    p.set_defaults(func=run)
