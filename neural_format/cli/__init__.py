"""The ``neural-format`` command line.

The core's own subcommands are the modules named ``*_cmd`` in this package. Commands of the
packages above the core (builders, models) reach it through the entry-point group
:data:`ENTRY_POINT_GROUP`, which each package fills in ``pyproject.toml``
(``[project.entry-points."neural_format.commands"]``, ``verb = "package.cli.verb_cmd:register
[extra,...]"``): the core never names a package above it. Every command module has a
``register(subparsers)`` function that adds its parser and sets ``func``; a command returns its
exit code. Command modules import heavy dependencies inside ``run`` so that ``--help`` stays fast.

A command whose package or third-party libraries are not installed stays listed: it says which
extra to install and ends with the coded error ``NF-E-EXTRA`` (exit 2), never a traceback.
"""
from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from importlib.metadata import EntryPoint, entry_points

from ..errors import MissingExtraError, NeuralFormatError, printable

ENTRY_POINT_GROUP = "neural_format.commands"
_EXTRAS_DEFAULT = "_nf_extras"  # the argparse default naming the extras a plugin command needs


def int_at_least(minimum: int):
    """An argparse ``type``: an integer of at least ``minimum`` (a count, a size, a limit). Anything
    else is a usage error (exit 2) rather than a traceback, or a run that quietly does nothing
    (``merge --batch-records -3`` wrote an empty file) or blames the input (``verify --workers -2``
    reported a valid file as a mismatch)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, not {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, not {value}")
        return value
    parse.__name__ = f"int_at_least_{minimum}"
    return parse


def positive_seconds(text: str) -> float:
    """An argparse ``type``: a finite number of seconds above 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, not {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number above 0, not {text}")
    return value


def command_modules() -> list[str]:
    """The core's own command modules (``neural_format.cli.*_cmd``)."""
    return sorted(f"{__name__}.{m.name}" for m in pkgutil.iter_modules(__path__) if m.name.endswith("_cmd"))


def plugin_commands() -> list[EntryPoint]:
    """The commands that installed packages add through :data:`ENTRY_POINT_GROUP`, by verb
    (the first distribution on ``sys.path`` wins when one is installed twice)."""
    seen: dict[str, EntryPoint] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        seen.setdefault(ep.name, ep)
    return [seen[name] for name in sorted(seen)]


def install_hint(extras) -> str:
    extras = ",".join(extras) if extras else ""
    return f"pip install 'neural-format[{extras}]'" if extras else "pip install neural-format"


def missing_module(exc: ImportError, own_package: str) -> str | None:
    """The name of the module an installation lacks, or None when ``exc`` is a defect of ours:
    a missing third-party module or a wholly absent ``own_package`` is an extra not installed; a
    missing submodule of ``own_package`` or of the core is a bug and must surface."""
    name = getattr(exc, "name", None)
    if not isinstance(exc, ModuleNotFoundError) or not name:
        return None
    top = name.split(".")[0]
    if top == "neural_format" or (top == own_package and name != own_package):
        return None
    return name


def _unavailable(sub, ep: EntryPoint, missing: str) -> None:
    """A verb whose package or libraries are absent: listed, and a coded error when run."""
    hint = install_hint(ep.extras)
    p = sub.add_parser(ep.name, help=f"(not installed: {hint})",
                       description=f"`neural-format {ep.name}` needs the {', '.join(ep.extras) or 'full'} "
                                   f"extra: {hint} (missing module: {missing}).")

    def run(args) -> int:
        raise MissingExtraError(f"`neural-format {ep.name}`", ep.extras, missing)
    p.set_defaults(func=run, _nf_unavailable=True)


def build_parser() -> argparse.ArgumentParser:
    from ..version import SDK_VERSION as __version__
    parser = argparse.ArgumentParser(prog="neural-format", description="The neural-format command line.")
    parser.add_argument("--version", action="version", version=f"neural-format {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in command_modules():
        importlib.import_module(name).register(sub)
    for ep in plugin_commands():
        if ep.name in sub.choices:
            continue  # a core verb is never replaced by a plugin
        try:
            register = ep.load()
        except ImportError as exc:
            missing = missing_module(exc, ep.module.split(".")[0])
            if missing is None:
                raise
            _unavailable(sub, ep, missing)
            continue
        before = set(sub.choices)
        register(sub)
        for verb in set(sub.choices) - before:
            sub.choices[verb].set_defaults(**{_EXTRAS_DEFAULT: (ep.module.split(".")[0], tuple(ep.extras))})
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown and not getattr(args, "_nf_unavailable", False):
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")  # as parse_args would
    try:
        return int(args.func(args) or 0)
    except FileExistsError as exc:  # incl. the writer's coded OutputExistsError (NF-E-EXISTS)
        print(_exists_message(args, exc), file=sys.stderr)
        return 2
    except MissingExtraError as exc:
        # a plugin's library table names the library's own extra; the command's extras (its entry
        # point's) are what installs the whole command, so those are the advice
        package, extras = getattr(args, _EXTRAS_DEFAULT, (None, ()))
        if package:
            exc = MissingExtraError(f"`neural-format {args.command}`", extras, exc.name or "?")
        print(f"neural-format: error: {printable(str(exc))}", file=sys.stderr)
        return 2
    except NeuralFormatError as exc:
        print(f"neural-format: error: {printable(str(exc))}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as exc:
        # a plugin command whose libraries are absent (it imports them inside ``run``)
        package, extras = getattr(args, _EXTRAS_DEFAULT, (None, ()))
        missing = missing_module(exc, package) if package else None
        if missing is None:
            raise
        error = MissingExtraError(f"`neural-format {args.command}`", extras, missing)
        print(f"neural-format: error: {error}", file=sys.stderr)
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
