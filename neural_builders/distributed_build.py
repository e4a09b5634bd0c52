"""Distributed builds under ``torchrun``: one shard per rank, manifest by rank 0, resumable.

    torchrun --nproc_per_node=K -m neural_builders.distributed_build --out DIR [inputs...]

Each rank takes the contiguous block ``inputs[r*N//W : (r+1)*N//W]`` of the input list (``r``
its rank, ``W`` the world size; the list is split in the order given, so pass it sorted),
builds it with the build function into a hidden temporary file, stamps the shard's metadata with
the collection ID, its index and the count, and renames it to ``shard-0000r-of-0000W.h5``
(atomic). Ranks then send their shard entries (record count, ID range, ``ids_sha256``,
``file_sha256``) to rank 0 with ``torch.distributed.gather_object`` (gloo works on CPU), which
writes ``manifest.json`` atomically; a final barrier keeps every rank until it is there.

Resume: a rank whose final shard file exists skips building (a shard appears under its final
name only when complete) and only re-describes it. The collection ID is derived from the
input IDs and the world size, so a rerun (or a resume after a crash) gets the same ID and a
finished shard of another build is refused instead of mixed in.

The build function is ``build_fn(inputs, out_path) -> None`` and must write one collection file
at ``out_path`` (also for an empty ``inputs``). :func:`synthetic_build` is one (synthetic records,
record ``i`` drawn from ``default_rng([seed, i])`` so it does not depend on the sharding); the
CLI makes one from images, reports and a model with the builders' ``build_collection``, taking the
same options as ``python -m neural_builders.build`` (``--out`` names the collection directory) and
the same options -> config -> inputs path (:func:`neural_builders.build_options.job_from_args`) and
the same :func:`neural_builders.build_cli.build_job`.
Inputs are sorted by case ID before they are split, so every rank sees the same list.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
import os
import sys
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

from neural_format.cli import int_at_least, positive_seconds
from neural_format.collections.collection import resolve_shard_path, shard_name
from neural_format.errors import SchemaError
from neural_format.collections.manifest import make_manifest, manifest_path, read_manifest, shard_entry, write_manifest
from neural_format.format.metadata import ShardInfo
from . import optional_deps

BuildFn = Callable[[Sequence, Path], None]


def rank_slice(items: Sequence, rank: int, world: int) -> list:
    """The contiguous block of ``items`` that rank ``rank`` of ``world`` builds (sizes differ by <= 1)."""
    if not 0 <= rank < world:
        raise ValueError(f"rank {rank} outside world of {world}")
    n = len(items)
    return list(items[rank * n // world:(rank + 1) * n // world])


def collection_id_for(ids: Sequence[str], world: int) -> str:
    """A collection ID fixed by the input IDs and the world size (same on every rank and every rerun)."""
    digest = hashlib.sha256(b"neural-graph-build-v1\x00" + str(world).encode() + b"\x00")
    for rid in ids:
        digest.update(rid.encode("utf-8") + b"\x00")
    return digest.hexdigest()[:32]


def world_from_env() -> tuple[int, int]:
    """``(rank, world_size)`` as set by torchrun (``(0, 1)`` when not launched by it)."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


class _Group:
    """The torch.distributed calls a build needs; no-ops in a single process."""

    def __init__(self, world: int, timeout_s: float):
        self.world = world
        self.owned = False
        if world > 1:
            dist = optional_deps.load("torch.distributed", needed_by="a distributed build")
            self.dist = dist
            if not dist.is_initialized():
                dist.init_process_group("gloo", timeout=dt.timedelta(seconds=timeout_s))
                self.owned = True

    def gather(self, value, rank: int) -> Optional[list]:
        if self.world == 1:
            return [value]
        out = [None] * self.world if rank == 0 else None
        self.dist.gather_object(value, out, dst=0)
        return out

    def broadcast(self, value):
        if self.world == 1:
            return value
        box = [value]
        self.dist.broadcast_object_list(box, src=0)
        return box[0]

    def barrier(self) -> None:
        if self.world > 1:
            self.dist.barrier()

    def close(self) -> None:
        if self.owned:
            self.dist.destroy_process_group()


def stamp_shard(path, collection_id: str, index: int, count: int) -> None:
    """Rewrite a fresh shard's ``/metadata`` with its place in the collection (before it is renamed)."""
    import h5py

    from neural_format.files.reader import read_metadata
    with h5py.File(path, "r+") as f:
        meta = read_metadata(f)
        meta = meta.model_copy(update={"shard": ShardInfo(collection_id=collection_id, shard_index=index,
                                                          shard_count=count)})
        attrs = dict(f["/metadata"].attrs)
        del f["/metadata"]
        ds = f.create_dataset("/metadata", data=np.frombuffer(meta.model_dump_json().encode("utf-8"), np.uint8))
        for key, value in attrs.items():
            ds.attrs[key] = value
    with open(path, "rb+") as handle:
        os.fsync(handle.fileno())


def _stamped_id(path) -> Optional[str]:
    from neural_format.files.reader import CollectionReader
    with CollectionReader(path) as reader:
        return None if reader.meta.shard is None else reader.meta.shard.collection_id


def build_sharded(inputs: Sequence, build_fn: BuildFn, out_dir, *, ids: Optional[Sequence[str]] = None,
                  rank: Optional[int] = None, world: Optional[int] = None, timeout_s: float = 1800,
                  log=None, group=None) -> Optional[dict]:
    """Build this rank's shard and, on rank 0, the manifest. Returns a summary (all ranks).

    ``group`` replaces the torch.distributed calls (``gather(value, rank)``, ``barrier()``,
    ``close()``); by default they go through gloo when ``world > 1``.
    """
    env_rank, env_world = world_from_env()
    rank = env_rank if rank is None else rank
    world = env_world if world is None else world
    log = log or (lambda text: print(f"[rank {rank}/{world}] {text}", file=sys.stderr, flush=True))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ids = [str(i) for i in (ids if ids is not None else inputs)]
    if len(ids) != len(inputs):
        raise ValueError("ids and inputs differ in length")
    collection_id = collection_id_for(ids, world)
    name = shard_name(rank, world)
    target = resolve_shard_path(out_dir, name)
    group = group if group is not None else _Group(world, timeout_s)
    try:
        mine = rank_slice(inputs, rank, world)
        skipped = target.exists()
        if skipped:
            found = _stamped_id(target)
            if found != collection_id:
                raise SchemaError("NF-C004", "a finished shard of another build is in the way", location=str(target),
                                  expected=collection_id, found=found)
            log(f"{name} already finished; skipped")
        else:
            building = out_dir / f".{name}.building.h5"
            building.unlink(missing_ok=True)  # left by an interrupted run
            log(f"building {len(mine)} inputs into {name}")
            build_fn(mine, building)
            stamp_shard(building, collection_id, rank, world)
            os.replace(building, target)
            with contextlib.suppress(OSError):
                fd = os.open(out_dir, os.O_RDONLY)
                os.fsync(fd)
                os.close(fd)
        entry = shard_entry(target, name)
        entries = group.gather(entry.model_dump(mode="json"), rank)
        written = False
        if rank == 0:
            from neural_format.format.metadata import ShardEntry
            shards = [ShardEntry.model_validate(e) for e in entries]
            old = read_manifest(out_dir) if manifest_path(out_dir).exists() else None
            if old is None or old.shards != shards or old.collection_id != collection_id:
                write_manifest(out_dir, make_manifest(shards, collection_id=collection_id))
                written = True
            log(f"manifest {'written' if written else 'unchanged'}: {len(shards)} shards, "
                f"{sum(s.records for s in shards)} records")
        group.barrier()  # nobody leaves before the manifest is in place
        return {"rank": rank, "world": world, "shard": name, "records": entry.records, "skipped": skipped,
                "collection_id": collection_id, "manifest_written": written}
    finally:
        group.close()


# -- build functions ---------------------------------------------------------------------------------
def synthetic_build(seed: int = 0, feature_dim: int = 16) -> BuildFn:
    """A build function over integer case indices writing synthetic records (for tests and demos)."""
    def build(indices: Sequence, out_path: Path) -> None:
        from neural_format.collections.synthetic import synthetic_meta, synthetic_record
        from neural_format.files.writer import write_collection
        meta = synthetic_meta(feature_dim=feature_dim)
        meta = meta.model_copy(update={"provenance": meta.provenance.model_copy(
            update={"created": dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)})})
        records = (synthetic_record(np.random.default_rng([seed, int(i)]), int(i), meta, patches=(1, 12),
                                    entities=(0, 6)) for i in indices)
        write_collection(out_path, meta, records)
    return build


def config_from_args(args):
    """The builders' BuildConfig for this rank: its GPU (shared when ranks outnumber the GPUs, see
    :mod:`neural_builders.devices`) or the CPU, and no per-rank progress bar."""
    from .build_options import config_from_args as build_config
    return build_config(args, **_rank_overrides(args))


def _rank_overrides(args) -> dict:
    from .devices import resolve_device
    return {"device": str(resolve_device(args.device)), "overwrite": True, "progress": False}


def builder_inputs(args):
    """``(inputs sorted by case ID, ids, build_fn)`` for images + reports + model, as the builders pair them."""
    from . import build_cli
    # the single-file build's options -> job path and its build_job, with this rank's device
    job = build_cli.job_from_args(args, **_rank_overrides(args))
    inputs = sorted(job.inputs, key=lambda item: item.case_id)

    def build(items: Sequence, out_path: Path) -> None:
        build_cli.build_job(job, out_path, items)
    return inputs, [item.case_id for item in inputs], build


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(
        prog="python -m neural_builders.distributed_build",
        description="Build a sharded collection, one shard per torchrun rank (gloo backend); "
                    "--out is the collection DIRECTORY.")
    parser.add_argument("--timeout", type=positive_seconds, default=1800, help="seconds a rank waits for the others")
    if "--synthetic" in argv:
        parser.add_argument("--out", required=True, help="collection directory")
        parser.add_argument("--synthetic", type=int_at_least(1), metavar="N", help="build N synthetic cases (no model needed)")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--feature-dim", type=int_at_least(1), default=16)
        args = parser.parse_args(argv)
        inputs = list(range(args.synthetic))
        ids, build_fn = [f"rec-{i:06d}" for i in inputs], synthetic_build(args.seed, args.feature_dim)
    else:
        from .build_options import add_arguments
        add_arguments(parser)  # the single-process build's options: --images --reports --model --out ...
        args = parser.parse_args(argv)
        inputs, ids, build_fn = builder_inputs(args)
    summary = build_sharded(inputs, build_fn, args.out, ids=ids, timeout_s=args.timeout)
    print(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
