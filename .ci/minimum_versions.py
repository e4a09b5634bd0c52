"""The declared lower bounds of chosen dependencies, as exact pins (``name==version``).

    python .ci/minimum_versions.py transformers tokenizers ...      # print the pins
    python .ci/minimum_versions.py --check transformers ...        # the versions Python now imports match
    python .ci/minimum_versions.py --core numpy h5py pydantic      # the bounds of the core install alone

The bounds are read from pyproject.toml (every dependency list and extra; with ``--core``, only
``[project] dependencies``, which is what ``pip install neural-format`` promises: the ``dev`` extra
asks for a newer pydantic than the core does), so the minimum that CI tests is the one the project
declares: raising a bound in pyproject.toml raises what is tested.
"""
from __future__ import annotations

import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9_.\-]+)\s*>=\s*([0-9][0-9A-Za-z.]*)\s*(?:,.*)?$")


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def lower_bounds(core_only: bool = False) -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = list(project.get("dependencies", []))
    for extra in ([] if core_only else project.get("optional-dependencies", {}).values()):
        requirements += extra
    bounds: dict[str, str] = {}
    for requirement in requirements:
        match = REQUIREMENT.match(requirement.split(";")[0])
        if match:
            name, version = _canonical(match.group(1)), match.group(2)
            # the same package in several extras: the highest bound is the one that holds
            if name not in bounds or _key(version) > _key(bounds[name]):
                bounds[name] = version
    return bounds


def _key(version: str) -> tuple:
    """Release numbers compared as PEP 440 does: 4.40 == 4.40.0."""
    parts = [int(p) if p.isdigit() else 0 for p in version.split(".")]
    while len(parts) > 1 and parts[-1] == 0:
        parts.pop()
    return tuple(parts)


def main(argv: list[str]) -> int:
    check = "--check" in argv
    core_only = "--core" in argv
    names = [a for a in argv if a not in ("--check", "--core")]
    bounds = lower_bounds(core_only)
    missing = [n for n in names if _canonical(n) not in bounds]
    if missing:
        print(f"no '>=' lower bound in pyproject.toml for {missing}", file=sys.stderr)
        return 2
    if not check:
        for name in names:
            print(f"{name}=={bounds[_canonical(name)]}")
        return 0
    wrong = []
    for name in names:
        found = metadata.version(name)
        want = bounds[_canonical(name)]
        if _key(found) != _key(want):
            wrong.append(f"{name} {found} (declared minimum {want})")
        else:
            print(f"{name} {found} = declared minimum")
    if wrong:
        print("not the declared minimum: " + "; ".join(wrong), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
