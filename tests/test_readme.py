"""Every README Python example runs, in order, from the install it names and nothing else.

Each ``python`` block in README.md starts with ``# needs: pip install .`` or
``# needs: pip install '.[extra,...]'``. For each such install this test builds what a fresh
``pip install`` would give: a directory of links to the installed top-level modules of the
project's requirements for those extras (read from pyproject.toml) and, recursively, of their own
requirements (read from the installed distributions' metadata). The block then runs in a child
``python -S`` (no site-packages) whose path is that directory plus this checkout, so a module
the named install does not bring in is simply absent, as on a fresh machine (this caught the
adapters needing torch_geometric while ``.[torch]`` did not install it).
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)
NEEDS = re.compile(r"^# needs: pip install (?:\.|'\.\[([\w,-]+)\]')[ \t]*$")


def needed_extras(block: str) -> tuple[str, ...]:
    first = block.splitlines()[0] if block.strip() else ""
    match = NEEDS.match(first)
    if match is None:
        raise AssertionError(f"README python block does not start with '# needs: pip install ...': {first!r}")
    return tuple(sorted(match.group(1).split(","))) if match.group(1) else ()


def project_requirements(extras: tuple[str, ...]) -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    optional = project.get("optional-dependencies", {})
    unknown = [e for e in extras if e not in optional]
    assert not unknown, f"README names extras that pyproject.toml does not define: {unknown}"
    return list(project["dependencies"]) + [r for e in extras for r in optional[e]]


def distribution_closure(requirements: list[str]) -> tuple[dict[str, metadata.Distribution], list[str]]:
    """Installed distributions a fresh install of ``requirements`` would hold; and the names
    required but not installed here (platform-specific ones a CPU wheel does not pull)."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    found: dict[str, metadata.Distribution] = {}
    missing: list[str] = []
    stack = [(Requirement(r), "") for r in requirements]
    while stack:
        requirement, extra = stack.pop()
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": extra}):
            continue
        name = canonicalize_name(requirement.name)
        key = name + "[" + ",".join(sorted(requirement.extras)) + "]"
        if key in found or name in missing:
            continue
        try:
            dist = metadata.distribution(requirement.name)
        except metadata.PackageNotFoundError:
            missing.append(name)
            continue
        found[key] = dist
        for line in dist.requires or []:
            for wanted in ("", *sorted(requirement.extras)):
                stack.append((Requirement(line), wanted))
    return {canonicalize_name(d.metadata["Name"]): d for d in found.values()}, missing


def link_install(dists: dict[str, metadata.Distribution], target: Path) -> Path:
    """Links to every top-level file and directory the distributions installed (their RECORD)."""
    target.mkdir(parents=True, exist_ok=True)
    for name, dist in dists.items():
        if name == "neural-format":
            continue  # the checkout itself goes on the path
        for entry in {Path(str(f)).parts[0] for f in (dist.files or [])}:
            if entry.startswith("..") or entry.endswith(".pth") or entry == "__pycache__":
                continue
            source = Path(dist.locate_file(entry))
            if source.exists() and not (target / entry).exists():
                (target / entry).symlink_to(source)
    return target


@pytest.fixture(scope="module")
def installs(tmp_path_factory):
    """extras -> a directory holding what ``pip install .[extras]`` brings (made on first use)."""
    made: dict[tuple[str, ...], Path] = {}

    def get(extras: tuple[str, ...]) -> Path:
        if extras not in made:
            requirements = project_requirements(extras)
            dists, missing = distribution_closure(requirements)
            from packaging.requirements import Requirement
            from packaging.utils import canonicalize_name
            absent = sorted({canonicalize_name(Requirement(r).name) for r in requirements} & set(missing))
            if absent:  # a direct requirement: this environment cannot show what that install brings
                pytest.skip(f"pip install .[{','.join(extras)}] needs {absent}, not installed here")
            made[extras] = link_install(dists, tmp_path_factory.mktemp("install-" + ("-".join(extras) or "core")))
        return made[extras]
    return get


def run_isolated(code: str, install: Path, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env.update(PYTHONPATH=os.pathsep.join([str(install), str(ROOT)]), OMP_NUM_THREADS="1", PYTHONNOUSERSITE="1")
    return subprocess.run([sys.executable, "-S", "-c", code], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=600)


def test_readme_has_examples_and_each_names_its_install():
    assert len(BLOCKS) >= 3
    for block in BLOCKS:
        needed_extras(block)


def test_core_install_really_lacks_the_extras(installs, tmp_path):
    """The check has teeth: with the core install, torch, torch_geometric and networkx are absent."""
    core = installs(())
    result = run_isolated("import numpy, h5py, pydantic, neural_format\n"
                          "import importlib.util as u\n"
                          "print([m for m in ('torch', 'torch_geometric', 'networkx', 'sklearn') if u.find_spec(m)])",
                          core, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
    torch_install = installs(("torch",))
    result = run_isolated("import torch, torch_geometric, networkx", torch_install, tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]


def test_readme_examples_run_in_order_from_the_install_they_name(installs, tmp_path):
    for number, block in enumerate(BLOCKS):
        extras = needed_extras(block)
        result = run_isolated(block, installs(extras), tmp_path)
        install = "pip install ." + (f"[{','.join(extras)}]" if extras else "")
        assert result.returncode == 0, (f"README python block {number} fails after `{install}` alone:\n"
                                        f"{result.stderr[-3000:]}")
