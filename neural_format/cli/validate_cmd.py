"""``neural-format validate FILE [--json] [--strict]``: check a collection file (or a sharded collection).

Exit codes (the same contract as ``Report.exit_code_for`` / ``Report.passed``): 0 clean or
best-practice findings only; 1 at least one warning (or, with ``--strict``, a best-practice
finding); 2 at least one error.
"""
from __future__ import annotations

from . import int_at_least, positive_seconds


def run(args) -> int:
    report = _validate(args)
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
    add_isolation_arguments(p)
    p.set_defaults(func=run)


def add_isolation_arguments(p) -> None:
    """Files from elsewhere are checked in a resource-limited child process by default (docs/safety.md)."""
    from ..validation.isolation import CLI_BASE_TIMEOUT_S, CLI_MEMORY_MIB, CLI_TIMEOUT_S_PER_GIB
    p.add_argument("--in-process", action="store_true",
                   help="check in this process, without the child's memory and time limits (trusted files only)")
    p.add_argument("--memory-mib", type=int_at_least(1), default=CLI_MEMORY_MIB,
                   help=f"address-space limit of the checking process (default {CLI_MEMORY_MIB})")
    p.add_argument("--timeout-s", type=positive_seconds, default=None,
                   help=f"wall-clock limit (default {CLI_BASE_TIMEOUT_S:g} s + {CLI_TIMEOUT_S_PER_GIB:g} s per GiB read)")


def _validate(args):
    """The report, from a limited child process unless ``--in-process`` was given."""
    import sys
    progress = None if args.progress is None else args.progress
    if args.in_process:
        from ..validation import validate
        return validate(args.file, hashes=not args.no_hashes, progress=progress)
    from ..validation.isolation import cli_timeout_s, validate_isolated
    if progress is None:
        progress = sys.stderr.isatty()
    return validate_isolated(args.file, hashes=not args.no_hashes, progress=bool(progress),
                             memory_mib=args.memory_mib,
                             timeout_s=args.timeout_s if args.timeout_s is not None else cli_timeout_s(args.file))
