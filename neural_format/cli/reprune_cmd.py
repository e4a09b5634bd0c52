"""``neural-format reprune IN OUT --top-k-percent K | --nucleus P | --threshold TAU``: prune further, no model."""
from __future__ import annotations

from ..format.metadata import PruningPolicy
from . import int_at_least


def run(args) -> int:
    from pydantic import ValidationError

    from ..graphs.pruning import policy_from_args
    from ..collections.reprune import reprune_collection
    try:
        policy = policy_from_args(args, applied_to="re-prune")
    except ValidationError as exc:
        print(f"neural-format reprune: error: invalid policy: {exc.errors()[0]['msg']}")
        return 2
    summary = reprune_collection(args.input, args.output, policy, overwrite=args.overwrite,
                                 compression=args.compression, compression_level=args.compression_level,
                                 chunk_bytes=args.chunk_bytes, dtype=args.dtype, progress=None)
    print("\n".join(summary.lines()))
    return 0


def add_storage_arguments(p) -> None:
    """The storage overrides shared by ``reprune`` and ``merge``: by default the output keeps the
    input's compression, gzip level, chunk size and feature dtype."""
    g = p.add_argument_group("storage (default: as the input)")
    g.add_argument("--compression", choices=["none", "gzip", "lzf"], default=None,
                   help="output filter (default: the input's)")
    g.add_argument("--compression-level", type=int, choices=range(10), metavar="0-9", default=None,
                   help="gzip level (default: the input's)")
    g.add_argument("--chunk-bytes", type=int_at_least(1), default=None, help="target bytes per chunk (default: the input's)")
    g.add_argument("--dtype", choices=["float16", "float32"], default=None,
                   help="stored feature dtype (default: the input's)")


def register(sub) -> None:
    p = sub.add_parser("reprune", help="prune an existing collection further using its stored patch scores",
                       description="Keep a subset of each record's stored patches, chosen from the stored scores. "
                                   "Percentages and nucleus mass are relative to the STORED patches of each "
                                   "record. Patch edges are rebuilt per the declared adjacency and the bridge "
                                   "recomputed per the declared fusion rule; provenance records the operation.")
    p.add_argument("input")
    p.add_argument("output")
    rule = p.add_mutually_exclusive_group(required=True)
    rule.add_argument("--top-k-percent", type=float, metavar="K", help="keep ceil(K%% of the stored patches)")
    rule.add_argument("--nucleus", type=float, metavar="P", help="keep the smallest set holding P of the score mass")
    rule.add_argument("--threshold", type=float, metavar="TAU", help="keep patches with score >= TAU")
    p.add_argument("--min-nodes", type=int, default=PruningPolicy.model_fields["min_nodes"].default)
    p.add_argument("--max-nodes", type=int, default=None)
    add_storage_arguments(p)
    p.add_argument("--overwrite", action="store_true", help="replace OUTPUT if it exists")
    p.set_defaults(func=run)
