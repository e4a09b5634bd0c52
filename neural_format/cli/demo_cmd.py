"""``neural-format demo``: the end-to-end demo.

Until the builders are installed this writes, validates and inspects a small generated collection.
"""
from __future__ import annotations

from pathlib import Path

from ..progress import Progress
from ..synthetic import synthetic_meta, synthetic_records
from ..writer import CollectionWriter
from .inspect_cmd import format_table, summarise


def run(args) -> int:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "synthetic.h5"
    meta = synthetic_meta(feature_dim=64)
    with CollectionWriter(path, meta, overwrite=True) as writer, Progress(args.records, "writing", enabled=True) as bar:
        for record in synthetic_records(args.records, meta, seed=args.seed):
            writer.append(record)
            bar.update(1)
    print(format_table(summarise(path)))
    return 0


def register(sub) -> None:
    p = sub.add_parser("demo", help="run the end-to-end demo into --out")
    p.add_argument("--out", default="demo_out")
    p.add_argument("--records", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=run)
