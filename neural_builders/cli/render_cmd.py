"""``neural-format render FILE --record ID [--image PATH] --out x.png``: draw one record."""
from __future__ import annotations

from neural_format.cli import int_at_least

from ..render import KG_WIDTH, PANEL_HEIGHT


def run(args) -> int:
    import sys

    from neural_format.files.reader import CollectionReader

    from ..render import render_to_png
    with CollectionReader(args.file) as reader:
        try:
            record = reader.get(args.record) if args.record is not None else reader[args.index]
        except (KeyError, IndexError) as exc:
            print(f"neural-format render: error: {exc.args[0] if exc.args else exc}", file=sys.stderr)
            return 2
        meta = reader.meta
        size = render_to_png(record, args.out, entity_types=meta.entity_types, relation_types=meta.relation_types,
                             label_names=meta.label_names, image=args.image, panel_height=args.height,
                             kg_width=args.kg_width, slice_index=args.slice)
    print(f"wrote {args.out} ({size[0]}x{size[1]})")
    return 0


def register(sub) -> None:
    p = sub.add_parser("render", help="PNG of one record: kept patches over the image, the KG and the bridge")
    p.add_argument("file")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--record", help="record ID")
    which.add_argument("--index", type=int, help="record index")
    p.add_argument("--image", help="the source image (DICOM/PNG/JPEG); default: rebuild from stored tiles")
    p.add_argument("--out", required=True, help="output PNG path")
    p.add_argument("--height", type=int_at_least(1), default=PANEL_HEIGHT, help=f"image panel height in pixels (default {PANEL_HEIGHT})")
    p.add_argument("--kg-width", type=int_at_least(1), default=KG_WIDTH, help=f"graph panel width in pixels (default {KG_WIDTH})")
    p.add_argument("--slice", type=int_at_least(0), default=None,
                   help="3-D records: slice to draw (default: the bridged patch's, else the fullest)")
    p.set_defaults(func=run)
