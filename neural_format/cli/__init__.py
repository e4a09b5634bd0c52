"""The ``neural-format`` command line. Each subcommand lives in its own module with a
``register(subparsers)`` function that adds its parser and sets ``func``; a command returns its
exit code. Modules whose optional dependencies are missing are skipped, so the core CLI works
with numpy, h5py and pydantic alone.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from ..errors import NeuralFormatError

SUBCOMMAND_MODULES = (
    "neural_format.cli.inspect_cmd",
    "neural_format.cli.demo_cmd",
)


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__
    parser = argparse.ArgumentParser(prog="neural-format", description=__doc__.split("\n")[0])
    parser.add_argument("--version", action="version", version=f"neural-format {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in SUBCOMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ImportError as exc:  # an optional extra is not installed
            if getattr(exc, "name", "") and not str(exc.name).startswith("neural_"):
                continue
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except NeuralFormatError as exc:
        print(f"neural-format: error: {exc}", file=sys.stderr)
        return 2
    except (FileNotFoundError, FileExistsError, PermissionError) as exc:
        print(f"neural-format: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
