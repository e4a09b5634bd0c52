"""``neural-format validate FILE [--json] [--strict]``: check a collection file (or a sharded collection).

Exit codes (the same contract as ``Report.exit_code_for`` / ``Report.passed``): 0 clean or
best-practice findings only; 1 at least one warning (or, with ``--strict``, a best-practice
finding); 2 at least one error.
"""
from __future__ import annotations


def run(args) -> int:
    from ..validation import validate
    report = validate(args.file, hashes=not args.no_hashes, progress=None if args.progress is None else args.progress)
    print(report.to_json(args.strict) if args.json else report.to_text(args.strict))
    return report.exit_code_for(args.strict)


def register(sub) -> None:
    p = sub.add_parser("validate", help="check a file against the format spec (exit 0 clean, 1 warnings, 2 errors)",
                       description=__doc__)
    p.add_argument("file", help="a collection .h5 file, a collection directory or its manifest.json")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--strict", action="store_true",
                   help="also fail (exit 1) on best-practice findings such as NF-P001 and NF-S004")
    p.add_argument("--no-hashes", action="store_true", help="skip the record hash check NF-I001 (faster)")
    p.add_argument("--progress", action="store_true", default=None, help="show a progress bar even when not a TTY")
    p.set_defaults(func=run)
