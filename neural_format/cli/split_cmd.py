"""``neural-format split SRC OUTDIR --shards K``: cut a file or collection into a sharded collection.

Shard ``k`` of ``K`` gets the contiguous records ``[k*N//K, (k+1)*N//K)`` (sizes differ by at most
one), is named ``shard-0000k-of-0000K.h5``, is stamped with the new collection ID and its index,
and is written crash-safely under a hidden ``.partial`` name; only when every shard is complete are
they renamed to their final names, and ``manifest.json`` is written last, atomically. A split
killed mid-way leaves ``.partial`` files (removed by ``neural_format.collections.resume.remove_stale_partials``)
or, killed during the renames, shards without a manifest: rerun with ``--overwrite``. ``--records-per-shard``
fixes the shard size instead of the count. Records are streamed in batches.
"""
from __future__ import annotations

from pathlib import Path

from ..files.writer import BATCH_RECORDS
from . import int_at_least


def shard_bounds(n: int, shards: int) -> list[tuple[int, int]]:
    """``shards`` contiguous ranges covering ``range(n)``, sizes differing by at most one."""
    return [(k * n // shards, (k + 1) * n // shards) for k in range(shards)]


def split(source, out_dir, *, shards: int | None = None, records_per_shard: int | None = None,
          compression=None, batch_records: int = BATCH_RECORDS, progress=None, compression_level=None,
          chunk_bytes=None, dtype=None, overwrite: bool = False):
    """Split ``source`` into a new sharded collection in ``out_dir``; returns the manifest.

    The shards keep the source's storage settings unless overridden (as ``merge``)."""
    from ..collections.reprune import with_feature_dtype
    from ..collections.collection import open_collection, shard_meta, shard_name, write_manifest_for
    from ..collections.manifest import manifest_path, new_collection_id
    from ..files.writer import CollectionWriter

    if batch_records < 1:
        raise ValueError(f"batch_records must be at least 1, not {batch_records!r}")
    out_dir = Path(out_dir)
    if manifest_path(out_dir).exists() and not overwrite:
        raise _exists(manifest_path(out_dir), "split writes a new collection")
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
        names = [shard_name(k, len(bounds)) for k in range(len(bounds))]
        if not overwrite:
            taken = [name for name in names if (out_dir / name).exists()]
            if taken:
                raise _exists(out_dir / taken[0], "shards of an earlier split are in the way")
        import uuid  # staged names match neural_format.collections.resume.PARTIAL, so remove_stale_partials cleans them
        staged = [out_dir / f".{name}.{uuid.uuid4().hex[:12]}.partial" for name in names]
        try:
            for k, (a, b) in enumerate(bounds):
                with CollectionWriter(staged[k], shard_meta(base, collection_id, k, len(bounds)), overwrite=True,
                                      batch_records=batch_records, **storage.writer_kwargs()) as writer:
                    for start in range(a, b, batch_records):
                        batch = coll.read_range(start, min(b, start + batch_records))
                        writer.extend(batch)
                        if progress is not None:
                            progress.update(len(batch))
            _publish(staged, [out_dir / name for name in names], overwrite)
        finally:
            for path in staged:
                path.unlink(missing_ok=True)
    return write_manifest_for(out_dir, names, collection_id=collection_id)


def _publish(staged, targets, overwrite: bool) -> None:
    """Every shard is complete: only now do the final names appear (the manifest follows)."""
    import os

    from ..files.writer import rename_exclusive
    for stage, target in zip(staged, targets):
        if overwrite:
            os.replace(stage, target)
        else:
            try:
                rename_exclusive(stage, target)
            except FileExistsError:
                raise _exists(target, "it appeared while splitting") from None


def _exists(path, why: str):
    from ..errors import OutputExistsError
    return OutputExistsError("NF-E-EXISTS", f"{path} exists ({why}); pass --overwrite (overwrite=True) to replace it",
                             location=str(path), expected="no file under the final name", found="a file")


def run(args) -> int:
    from ..internals.progress import Progress
    with Progress(None, "splitting") as bar:
        manifest = split(args.source, args.out_dir, shards=args.shards, records_per_shard=args.records_per_shard,
                         compression=args.compression, batch_records=args.batch_records, progress=bar,
                         compression_level=args.compression_level, chunk_bytes=args.chunk_bytes, dtype=args.dtype,
                         overwrite=args.overwrite)
    total = sum(e.records for e in manifest.shards)
    print(f"wrote {len(manifest.shards)} shards, {total:,} records, to {args.out_dir} "
          f"(collection {manifest.collection_id}, sha256 {manifest.collection_sha256[:16]}...)")
    return 0


def register(sub) -> None:
    p = sub.add_parser("split", help="split a collection file or collection into a sharded collection")
    p.add_argument("source", help="a collection file, collection directory or manifest.json")
    p.add_argument("out_dir", help="directory for the new collection (must not hold a manifest)")
    size = p.add_mutually_exclusive_group(required=True)
    size.add_argument("--shards", type=int_at_least(1), help="number of shards")
    size.add_argument("--records-per-shard", type=int_at_least(1), help="records per shard (the last may hold fewer)")
    from .reprune_cmd import add_storage_arguments
    add_storage_arguments(p)
    p.add_argument("--batch-records", type=int_at_least(1), default=BATCH_RECORDS)
    p.add_argument("--overwrite", action="store_true",
                   help="replace a collection (or the shards of an interrupted split) already in OUT_DIR")
    p.set_defaults(func=run)
