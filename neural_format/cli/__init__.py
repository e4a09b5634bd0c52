"""The ``neural-format`` command line.

Each subcommand lives in its own module named ``*_cmd`` inside one of :data:`COMMAND_PACKAGES`,
with a ``register(subparsers)`` function that adds its parser and sets ``func``; a command returns
its exit code. Command modules import heavy dependencies inside ``run`` so that ``--help`` stays
fast, and packages that are not installed are skipped, so the core CLI works with numpy, h5py and
pydantic alone.
"""
from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from ..errors import NeuralFormatError, printable

COMMAND_PACKAGES = ("neural_format.cli", "neural_builders.cli", "neural_models.cli")


def command_modules() -> list[str]:
    names = []
    for package_name in COMMAND_PACKAGES:
        try:
            package = importlib.import_module(package_name)
        except ImportError:
            continue
        names += sorted(f"{package_name}.{m.name}" for m in pkgutil.iter_modules(package.__path__)
                        if m.name.endswith("_cmd"))
    return names


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__
    parser = argparse.ArgumentParser(prog="neural-format", description="The neural-format command line.")
    parser.add_argument("--version", action="version", version=f"neural-format {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in command_modules():
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
    except FileExistsError as exc:  # incl. the writer's coded OutputExistsError (NF-E-EXISTS)
        print(_exists_message(args, exc), file=sys.stderr)
        return 2
    except NeuralFormatError as exc:
        print(f"neural-format: error: {printable(str(exc))}", file=sys.stderr)
        return 2
    except (FileNotFoundError, PermissionError) as exc:
        print(f"neural-format: error: {exc}", file=sys.stderr)
        return 2


def _exists_message(args, exc: FileExistsError) -> str:
    """An existing output, said in the command line's terms: the API's "pass overwrite=True"
    means nothing to someone who typed a command, ``--overwrite`` does."""
    if not hasattr(args, "overwrite"):
        return f"neural-format: error: {exc}"
    code = f"[{exc.code}] " if isinstance(exc, NeuralFormatError) else ""
    return f"neural-format {args.command}: error: {code}{exc.filename or exc} exists; add --overwrite to replace it"

if __name__ == "__main__":
    sys.exit(main())
