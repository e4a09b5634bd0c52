"""``neural-format inspect PATH [--json] [--ids]``: counts, sizes, provenance and label balance.

PATH is a collection file, a sharded collection directory or its ``manifest.json`` (as for
``validate`` and ``verify``); a collection is summarised over all its shards. ``--ids`` lists the
record IDs instead (the IDs ``render --record`` takes), one per line.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from ..errors import printable  # IDs and provenance come from the file: no raw escape sequences


def _is_collection(path) -> bool:
    path = Path(path)
    return path.is_dir() or path.name == "manifest.json"


def _shard_columns(reader) -> dict:
    """The per-record counts, labels, bridges and stored bytes of one file."""
    n = len(reader)
    return {"per": {t: np.diff(o) for t, o in reader.offsets.items()},
            "labels": reader.cols["/records/labels"][()] if n else np.zeros((0, len(reader.meta.label_names))),
            "bridges": reader.cols["/records/bridge"][()] if n else np.zeros((0, 2)),
            "sizes": {path: int(ds.id.get_storage_size()) for path, ds in reader.cols.items()}}


def _stats(a: np.ndarray) -> dict:
    """Per-record counts: the real min and max (0 only when a record has none), or zeros when empty."""
    if not a.size:
        return {"total": 0, "min": 0, "mean": 0.0, "max": 0}
    return {"total": int(a.sum()), "min": int(a.min()), "mean": float(a.mean()), "max": int(a.max())}


def _open(path):
    """(readers, total bytes, shard count or None) of a file or a sharded collection."""
    if _is_collection(path):
        from ..collections.collection import open_collection
        coll = open_collection(path)
        directory = Path(path) if Path(path).is_dir() else Path(path).parent
        total = sum(f.stat().st_size for f in directory.iterdir() if f.is_file())
        return coll, [coll.shard(k) for k in range(coll.shard_count)], total, coll.shard_count
    from ..files.reader import CollectionReader
    reader = CollectionReader(path)
    return reader, [reader], os.path.getsize(path), None


def record_ids(path) -> list[str]:
    owner, readers, _, _ = _open(path)
    try:
        return [rid for reader in readers for rid in reader.record_ids()]
    finally:
        owner.close()


def summarise(path) -> dict:
    owner, readers, total_bytes, shards = _open(path)
    try:
        meta = owner.meta
        parts = [_shard_columns(reader) for reader in readers]
        n = sum(len(reader) for reader in readers)
        per = {t: np.concatenate([p["per"][t] for p in parts]) for t in parts[0]["per"]}
        labels = np.concatenate([p["labels"] for p in parts])
        bridges = np.concatenate([p["bridges"] for p in parts])
        balance = {}
        for k, name in enumerate(meta.label_names):
            column = labels[:, k]
            known = column[~np.isnan(column)]
            values, counts = np.unique(known, return_counts=True)
            balance[name] = {"unknown": int(np.isnan(column).sum()),
                             **{f"{v:g}": int(c) for v, c in zip(values, counts)}}
        sizes: dict[str, int] = {}
        for part in parts:
            for key, size in part["sizes"].items():
                sizes[key] = sizes.get(key, 0) + size
        ids: list[str] = next((reader.record_ids()[:1] for reader in readers if len(reader)), [])
        return {
            "file": str(path), "bytes": total_bytes, "format_version": str(readers[0].version),
            "shards": shards, "records": n,
            "patches": _stats(per["patches"]), "patch_edges": _stats(per["patch_edges"]),
            "entities": _stats(per["entities"]), "relations": _stats(per["relations"]),
            "bridges": int((bridges[:, 0] >= 0).sum()),
            "empty_visual": int((per["patches"] == 0).sum()), "empty_kg": int((per["entities"] == 0).sum()),
            "patch_features": f"{meta.patch_feature_dim} x {meta.patch_feature_dtype}",
            "entity_features": f"{meta.entity_feature_dim} x {meta.entity_feature_dtype}" if meta.entity_feature_dim else "none",
            "spatial_axes": meta.spatial_axes, "adjacency": meta.adjacency,
            "label_balance": balance, "dataset_bytes": sizes,
            "provenance": json.loads(meta.provenance.model_dump_json(exclude_none=True)),
            "first_record_id": ids[0] if ids else None,
        }
    finally:
        owner.close()


def format_table(summary: dict) -> str:
    shards = f", {summary['shards']} shards" if summary.get("shards") else ""
    lines = [f"{summary['file']}  ({summary['bytes']:,} bytes{shards}, format {summary['format_version']})", ""]
    lines.append(f"{'records':<16}{summary['records']:>12,}"
                 + (f"   first ID {summary['first_record_id']!r} (all: --ids)" if summary["first_record_id"] else ""))
    for key in ("patches", "patch_edges", "entities", "relations"):
        s = summary[key]
        lines.append(f"{key:<16}{s['total']:>12,}   per record min {s['min']}, mean {s['mean']:.1f}, max {s['max']}")
    lines.append(f"{'bridges':<16}{summary['bridges']:>12,}")
    lines.append(f"{'empty visual':<16}{summary['empty_visual']:>12,}")
    lines.append(f"{'empty KG':<16}{summary['empty_kg']:>12,}")
    lines.append(f"{'patch features':<16}{summary['patch_features']:>12}")
    lines.append(f"{'entity features':<16}{summary['entity_features']:>12}")
    lines.append("")
    lines.append("label balance:")
    for name, counts in summary["label_balance"].items():
        lines.append(f"  {name:<20}" + ", ".join(f"{k}: {v}" for k, v in counts.items()))
    lines.append("")
    lines.append("stored bytes by dataset:")
    for path, size in sorted(summary["dataset_bytes"].items(), key=lambda kv: -kv[1]):
        lines.append(f"  {path:<28}{size:>14,}")
    lines.append("")
    lines.append("provenance:")
    for key, value in summary["provenance"].items():
        lines.append(f"  {key:<18}{json.dumps(value)[:100]}")
    return "\n".join(lines)


def run(args) -> int:
    if not Path(args.file).exists():
        raise FileNotFoundError(f"{args.file}: no such file or directory")
    if args.ids:
        ids = record_ids(args.file)
        print(json.dumps(ids, indent=2) if args.json else printable("\n".join(ids)))
        return 0
    summary = summarise(args.file)
    print(json.dumps(summary, indent=2) if args.json else printable(format_table(summary)))
    return 0


def register(sub) -> None:
    p = sub.add_parser("inspect", help="summary table of counts, sizes, provenance and label balance",
                       description=__doc__)
    p.add_argument("file", help="a collection .h5 file, a collection directory or its manifest.json")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--ids", action="store_true", help="list the record IDs, one per line (JSON list with --json)")
    p.set_defaults(func=run)
