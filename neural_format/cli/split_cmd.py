"""``neural-format split SRC OUTDIR --shards K``: cut a file or collection into a sharded collection.

Shard ``k`` of ``K`` gets the contiguous records ``[k*N//K, (k+1)*N//K)`` (sizes differ by at most
one), is named ``shard-0000k-of-0000K.h5``, is stamped with the new collection ID and its index,
and is written crash-safely; ``manifest.json`` is written last, atomically. ``--records-per-shard``
fixes the shard size instead of the count. Records are streamed in batches.
"""
from __future__ import annotations

from pathlib import Path


def shard_bounds(n: int, shards: int) -> list[tuple[int, int]]:
    """``shards`` contiguous ranges covering ``range(n)``, sizes differing by at most one."""
    return [(k * n // shards, (k + 1) * n // shards) for k in range(shards)]


def split(source, out_dir, *, shards: int | None = None, records_per_shard: int | None = None,
          compression=None, batch_records: int = 1024, progress=None, compression_level=None,
          chunk_bytes=None, dtype=None):
    """Split ``source`` into a new sharded collection in ``out_dir``; returns the manifest.

    The shards keep the source's storage settings unless overridden (as ``merge``)."""
    from ..reprune import with_feature_dtype
    from ..collection import open_collection, shard_meta, shard_name, write_manifest_for
    from ..manifest import manifest_path, new_collection_id
    from ..writer import CollectionWriter

    out_dir = Path(out_dir)
    if manifest_path(out_dir).exists():
        raise FileExistsError(f"{manifest_path(out_dir)} exists; split writes a new collection")
    with open_collection(source) as coll:
        n = len(coll)
        if records_per_shard is not None:
            if records_per_shard < 1:
                raise ValueError("--records-per-shard must be >= 1")
            shards = max(1, -(-n // records_per_shard))
            bounds = [(a, min(n, a + records_per_shard)) for a in range(0, max(n, 1), records_per_shard)]
        else:
            if shards is None or shards < 1:
                raise ValueError("--shards must be >= 1")
            bounds = shard_bounds(n, shards)
        if progress is not None and getattr(progress, "total", 0) is None:
            progress.total = n
        out_dir.mkdir(parents=True, exist_ok=True)
        collection_id = new_collection_id()
        storage = coll.shard(0).storage.overridden(compression, compression_level, chunk_bytes)
        base = with_feature_dtype(coll.meta, dtype)
        note = f"split: {Path(str(source)).name} into {len(bounds)} shards"
        base = base.model_copy(update={"provenance": base.provenance.model_copy(
            update={"history": list(base.provenance.history) + [note[:256]]})})
        names = []
        for k, (a, b) in enumerate(bounds):
            name = shard_name(k, len(bounds))
            with CollectionWriter(out_dir / name, shard_meta(base, collection_id, k, len(bounds)),
                                  batch_records=batch_records, **storage.writer_kwargs()) as writer:
                for start in range(a, b, batch_records):
                    batch = coll.read_range(start, min(b, start + batch_records))
                    writer.extend(batch)
                    if progress is not None:
                        progress.update(len(batch))
            names.append(name)
    return write_manifest_for(out_dir, names, collection_id=collection_id)


def run(args) -> int:
    from ..progress import Progress
    with Progress(None, "splitting") as bar:
        manifest = split(args.source, args.out_dir, shards=args.shards, records_per_shard=args.records_per_shard,
                         compression=args.compression, batch_records=args.batch_records, progress=bar,
                         compression_level=args.compression_level, chunk_bytes=args.chunk_bytes, dtype=args.dtype)
    total = sum(e.records for e in manifest.shards)
    print(f"wrote {len(manifest.shards)} shards, {total:,} records, to {args.out_dir} "
          f"(collection {manifest.collection_id}, sha256 {manifest.collection_sha256[:16]}...)")
    return 0


def register(sub) -> None:
    p = sub.add_parser("split", help="split a collection file or collection into a sharded collection")
    p.add_argument("source", help="a collection file, collection directory or manifest.json")
    p.add_argument("out_dir", help="directory for the new collection (must not hold a manifest)")
    size = p.add_mutually_exclusive_group(required=True)
    size.add_argument("--shards", type=int, help="number of shards")
    size.add_argument("--records-per-shard", type=int, help="records per shard (the last may hold fewer)")
    from .reprune_cmd import add_storage_arguments
    add_storage_arguments(p)
    p.add_argument("--batch-records", type=int, default=1024)
    p.set_defaults(func=run)
