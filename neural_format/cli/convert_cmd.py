"""``neural-format convert IN.pt OUT.h5``: legacy PyG pickles -> a verified collection file, safely."""
from __future__ import annotations

import json


def _patch_nodes(args):
    given = [v is not None for v in (args.patch_nodes, args.patch_nodes_attr, args.patch_nodes_file)]
    if sum(given) > 1:
        raise SystemExit("neural-format convert: give at most one of --patch-nodes, --patch-nodes-attr, "
                         "--patch-nodes-file")
    if args.patch_nodes is not None:
        return args.patch_nodes
    if args.patch_nodes_attr is not None:
        return args.patch_nodes_attr
    if args.patch_nodes_file is not None:
        with open(args.patch_nodes_file, encoding="utf-8") as handle:
            values = json.load(handle)
        if not isinstance(values, list) or not all(v is None or isinstance(v, int) for v in values):
            raise SystemExit("neural-format convert: --patch-nodes-file must hold a JSON list of integers or null")
        return values
    return None


def run(args) -> int:
    from ..convert import convert_pickle
    report = convert_pickle(
        args.source, args.target, patch_nodes=_patch_nodes(args), unfused=args.unfused,
        label_names=args.label_names, dtype=args.dtype, adjacency=args.adjacency,
        skip_invalid=args.skip_invalid, overwrite=args.overwrite, compression=args.compression,
        progress=None if not args.no_progress else False,
        check_bridge=True if args.check_bridge else False if args.no_check_bridge else None)
    print(json.dumps(report.to_dict(), indent=2) if args.json else report)
    return 0


def register(sub) -> None:
    p = sub.add_parser(
        "convert", help="convert a torch.save pickle of PyG graphs (never unpickled unsafely)",
        description="Convert a legacy torch.save file (a list of PyG Data, or an InMemoryDataset file) to a "
                    "collection file. The pickle is read with an allow-list unpickler; anything else in it is "
                    "refused (NF-U001). The patch/entity split of each graph is decided from the evidence the file holds "
                    "(docs/convert.md: files of the NEURAL reference need no option) or declared with the --patch-nodes "
                    "options; every record is re-read and "
                    "compared with the source before OUT appears.")
    p.add_argument("source", help="IN.pt")
    p.add_argument("target", help="OUT.h5")
    p.add_argument("--patch-nodes", type=int, help="every graph has this many patch rows")
    p.add_argument("--patch-nodes-attr", metavar="NAME", help="a Data attribute holding each graph's patch count")
    p.add_argument("--patch-nodes-file", metavar="JSON", help="a JSON list with each graph's patch count (null: infer)")
    p.add_argument("--unfused", choices=["visual", "kg"],
                   help="what a graph without fusion edge is: all patches (empty KG) or all entities (no patch)")
    p.add_argument("--label-names", nargs="+", default=["label"], metavar="NAME",
                   help="names of the values of y, in order (default: label)")
    p.add_argument("--dtype", choices=["float32", "float16"], default="float32", help="stored feature dtype")
    p.add_argument("--adjacency", default="4-neighbour",
                   choices=["4-neighbour", "8-neighbour", "custom", "unknown"],
                   help="the patch adjacency rule of the source pipeline (reference: 4-neighbour)")
    p.add_argument("--skip-invalid", action="store_true", help="skip graphs that cannot be converted, and report them")
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--compression", choices=["gzip", "lzf"])
    bridge = p.add_mutually_exclusive_group()
    bridge.add_argument("--check-bridge", action="store_true",
                        help="require the fusion-edge check (needs networkx; by default it runs when networkx is "
                             "installed): every fused graph's bridge is recomputed by the reference rule; if all "
                             "match, the fusion rule is recorded as betweenness, else unknown and the graphs listed")
    bridge.add_argument("--no-check-bridge", action="store_true", help="skip the fusion-edge check (fusion rule unknown)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)
