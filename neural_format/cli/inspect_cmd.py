"""``neural-format inspect FILE``: counts, sizes, provenance and label balance."""
from __future__ import annotations

import json
import os

import numpy as np

from ..reader import CollectionReader


def summarise(path) -> dict:
    with CollectionReader(path) as reader:
        meta = reader.meta
        n = len(reader)
        per = {t: np.diff(o) for t, o in reader.offsets.items()}
        labels = reader.cols["/records/labels"][()] if n else np.zeros((0, len(meta.label_names)))
        bridges = reader.cols["/records/bridge"][()] if n else np.zeros((0, 2))
        balance = {}
        for k, name in enumerate(meta.label_names):
            column = labels[:, k]
            known = column[~np.isnan(column)]
            values, counts = np.unique(known, return_counts=True)
            balance[name] = {"unknown": int(np.isnan(column).sum()),
                             **{f"{v:g}": int(c) for v, c in zip(values, counts)}}
        sizes = {}
        for path_, ds in reader.cols.items():
            sizes[path_] = int(ds.id.get_storage_size())

        def stats(a):
            return {"total": int(a.sum()), "min": int(a.min(initial=0)), "mean": float(a.mean()) if a.size else 0.0,
                    "max": int(a.max(initial=0))}

        return {
            "file": str(path), "bytes": os.path.getsize(path), "format_version": str(reader.version),
            "records": n,
            "patches": stats(per["patches"]), "patch_edges": stats(per["patch_edges"]),
            "entities": stats(per["entities"]), "relations": stats(per["relations"]),
            "bridges": int((bridges[:, 0] >= 0).sum()),
            "empty_visual": int((per["patches"] == 0).sum()), "empty_kg": int((per["entities"] == 0).sum()),
            "patch_features": f"{meta.patch_feature_dim} x {meta.patch_feature_dtype}",
            "entity_features": f"{meta.entity_feature_dim} x {meta.entity_feature_dtype}" if meta.entity_feature_dim else "none",
            "spatial_axes": meta.spatial_axes, "adjacency": meta.adjacency,
            "label_balance": balance, "dataset_bytes": sizes,
            "provenance": json.loads(meta.provenance.model_dump_json(exclude_none=True)),
        }


def format_table(summary: dict) -> str:
    lines = [f"{summary['file']}  ({summary['bytes']:,} bytes, format {summary['format_version']})", ""]
    lines.append(f"{'records':<16}{summary['records']:>12,}")
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
    summary = summarise(args.file)
    print(json.dumps(summary, indent=2) if args.json else format_table(summary))
    return 0


def register(sub) -> None:
    p = sub.add_parser("inspect", help="summary table of counts, sizes, provenance and label balance")
    p.add_argument("file")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=run)
