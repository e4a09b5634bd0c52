"""``neural-format validate FILE [--json]``: check a collection file (or a sharded collection).

Exit codes: 0 clean; 1 warnings or best-practice findings only; 2 at least one error.
"""
from __future__ import annotations


def run(args) -> int:
    from ..validation import validate
    report = validate(args.file, hashes=not args.no_hashes, progress=None if args.progress is None else args.progress)
    print(report.to_json() if args.json else report.to_text())
    return report.exit_code


def register(sub) -> None:
    p = sub.add_parser("validate", help="check a file against the format spec (exit 0 clean, 1 warnings, 2 errors)",
                       description=__doc__)
    p.add_argument("file", help="a collection .h5 file, a collection directory or its manifest.json")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--no-hashes", action="store_true", help="skip the record hash check NF-I001 (faster)")
    p.add_argument("--progress", action="store_true", default=None, help="show a progress bar even when not a TTY")
    p.set_defaults(func=run)
