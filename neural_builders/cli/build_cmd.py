"""``neural-format build``: images + reports + a fine-tuned model -> one collection file."""
from __future__ import annotations


def run(args) -> int:
    from ..build_cli import run_from_args
    return run_from_args(args)


def register(sub) -> None:
    from ..build_options import add_arguments
    p = sub.add_parser("build", help="build a collection from images, reports and a fine-tuned report generator")
    add_arguments(p)
    p.set_defaults(func=run)
