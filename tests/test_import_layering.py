"""The import structure the architecture promises (docs/architecture.md), read from the source
with ``ast`` so that imports inside functions count as much as module-level ones:

* the core (``neural_format``) imports nothing from ``neural_builders`` or ``neural_models``,
  and the builders import nothing from the models;
* no import circle among our own modules (a lazy import that only hides a circle is one);
* no private name (``_x``) imported from another module;
* inside the core, each subpackage imports only the layers below it (``CORE_LAYERS``: foundation <
  internals < format < graphs, files < collections < validation, convert < adapters < cli), with
  the few exceptions of ``LAYER_EXCEPTIONS`` named and explained.

Not counted: imports under ``if TYPE_CHECKING:`` (types only, never run) and in an
``if __name__ == "__main__":`` block (a script's entry point runs as ``__main__``, not as the
module others import). Lazy imports of optional third-party libraries are fine.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("neural_format", "neural_builders", "neural_models")
# a package may import the ones before it, never the ones after it
LAYERS = {"neural_format": 0, "neural_builders": 1, "neural_models": 2}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for package in PACKAGES for p in sorted((ROOT / package).rglob("*.py"))}


def _skipped_block(node: ast.If) -> bool:
    test = node.test
    if isinstance(test, ast.Name) and test.id == "TYPE_CHECKING":
        return True
    if isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING":
        return True
    return (isinstance(test, ast.Compare) and isinstance(test.left, ast.Name) and test.left.id == "__name__"
            and any(isinstance(c, ast.Constant) and c.value == "__main__" for c in test.comparators))


def import_nodes(tree: ast.AST):
    """Every Import/ImportFrom, at any depth, outside the skipped blocks."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _skipped_block(node):
            stack.extend(node.orelse)
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        stack.extend(ast.iter_child_nodes(node))


def imports_of(module: str) -> list[tuple[str, str | None, int]]:
    """``(imported module, imported name or None, line)`` for each import of ``module``."""
    path = MODULES[module]
    out = []
    for node in import_nodes(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(alias.name, None, node.lineno) for alias in node.names]
            continue
        if node.level:
            base = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
            if node.level - 1 >= len(base):  # beyond the top-level package: fails when run
                out.append(("<beyond the top-level package>", None, node.lineno))
                continue
            base = base[:len(base) - (node.level - 1)]
            target = ".".join(base + ([node.module] if node.module else []))
        else:
            target = node.module or ""
        out += [(target, alias.name, node.lineno) for alias in node.names]
    return out


def graph() -> dict[str, set[str]]:
    """Our module -> our modules it imports (``from pkg import sub`` is an import of ``pkg.sub``)."""
    edges: dict[str, set[str]] = {m: set() for m in MODULES}
    for module in MODULES:
        for target, name, _ in imports_of(module):
            if name and f"{target}.{name}" in MODULES:
                target = f"{target}.{name}"
            if target in MODULES and target != module:
                edges[module].add(target)
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index, low, on_stack, stack, found, counter = {}, {}, set(), [], [], [0]
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter[0]
                    counter[0] += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_analysis_sees_function_level_imports_and_circles():
    """The checker itself: a function-level import is an edge, and a two-module circle is found."""
    tree = ast.parse("def f():\n    from .b import g\nif TYPE_CHECKING:\n    import c\n")
    assert [n.module for n in import_nodes(tree) if isinstance(n, ast.ImportFrom)] == ["b"]
    assert not [n for n in import_nodes(tree) if isinstance(n, ast.Import)]
    assert cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
    assert "neural_format.format.record" in MODULES and len(MODULES) > 100


def test_lower_packages_import_no_higher_package():
    upward = [f"{MODULES[m].relative_to(ROOT)}:{line} imports {target}"
              for m in MODULES for target, _, line in imports_of(m)
              if target.split(".")[0] in LAYERS and LAYERS[target.split(".")[0]] > LAYERS[m.split(".")[0]]]
    assert not upward, "\n".join(upward)


def test_no_import_circles_among_our_modules():
    found = cycles(graph())
    assert not found, "import circles (function-level imports included):\n" + "\n".join(" <-> ".join(c) for c in found)


def test_every_relative_import_resolves():
    """A relative import above the top-level package only fails when its function runs."""
    beyond = [f"{MODULES[m].relative_to(ROOT)}:{line}" for m in MODULES for target, _, line in imports_of(m)
              if target.startswith("<beyond")]
    assert not beyond, "\n".join(beyond)


def test_no_private_names_imported_across_modules():
    private = [f"{MODULES[m].relative_to(ROOT)}:{line} imports {name} from {target}"
               for m in MODULES for target, name, line in imports_of(m)
               if target.split(".")[0] in PACKAGES and name and name.startswith("_") and not name.startswith("__")
               and f"{target}.{name}" not in MODULES]
    assert not private, "\n".join(private)


def module_aliases(module: str) -> dict[str, str]:
    """Names bound to one of our modules by an import in ``module`` (``import a.b as m``,
    ``from a import b`` where ``a.b`` is a module), with the module each names."""
    out = {}
    path = MODULES[module]
    for node in import_nodes(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.update({alias.asname: alias.name for alias in node.names if alias.asname and alias.name in MODULES})
    for target, name, _ in imports_of(module):
        if name and f"{target}.{name}" in MODULES:
            out[name] = f"{target}.{name}"
    return out


def test_no_private_attribute_of_another_module_is_used():
    """``reader._helper`` through a module alias is a private name crossing modules too."""
    used = []
    for m in MODULES:
        aliases = module_aliases(m)
        for node in ast.walk(ast.parse(MODULES[m].read_text())):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases
                    and node.attr.startswith("_") and not node.attr.startswith("__")
                    and aliases[node.value.id] != m):
                used.append(f"{MODULES[m].relative_to(ROOT)}:{node.lineno} uses {aliases[node.value.id]}.{node.attr}")
    assert not used, "\n".join(used)


OPTIONAL_LIBRARIES = ("torch", "torch_geometric", "networkx", "fsspec", "tqdm")


def test_the_core_imports_its_optional_libraries_in_one_place():
    """torch, torch_geometric, networkx, fsspec and tqdm are imported by
    ``neural_format.internals.optional_deps`` alone (lazily, with a coded error naming the extra)."""
    from neural_format.internals import optional_deps
    assert set(OPTIONAL_LIBRARIES) == set(optional_deps.EXTRAS)
    elsewhere = [f"{MODULES[m].relative_to(ROOT)}:{line} imports {target}"
                 for m in MODULES if m.startswith("neural_format") and m != "neural_format.internals.optional_deps"
                 for target, _, line in imports_of(m) if target.split(".")[0] in OPTIONAL_LIBRARIES]
    assert not elsewhere, "\n".join(elsewhere)



CORE_DEPENDENCIES = ("numpy", "h5py", "pydantic")  # pyproject.toml [project] dependencies


def test_the_core_imports_no_other_third_party_library():
    """Beside the standard library and its three dependencies, the core imports only the optional
    libraries of ``optional_deps.EXTRAS``, and those only there: a new adapter's library cannot be
    imported directly, even lazily, without a coded error naming its extra."""
    import sys
    from neural_format.internals import optional_deps
    allowed = set(sys.stdlib_module_names) | set(CORE_DEPENDENCIES) | set(PACKAGES)
    foreign = [f"{MODULES[m].relative_to(ROOT)}:{line} imports {target}"
               for m in MODULES if m.startswith("neural_format")
               for target, _, line in imports_of(m)
               if target and target.split(".")[0] not in allowed
               and not (m == "neural_format.internals.optional_deps" and target.split(".")[0] in optional_deps.EXTRAS)]
    assert not foreign, "\n".join(foreign)


# ----------------------------------------------------------------- layers inside the core
# docs/architecture.md draws these. A unit is a subpackage of neural_format, or "foundation" (the
# top-level modules every layer may use: errors, their code table, the clause table, versions), or
# "facade" (neural_format/__init__.py: the public names; nothing inside the core imports it).
FOUNDATION = {"errors", "error_codes", "clauses", "version"}
CORE_LAYERS: dict[str, set[str]] = {
    "foundation": set(),
    "internals": {"foundation"},
    "format": {"foundation", "internals"},
    "graphs": {"foundation", "internals", "format"},
    "files": {"foundation", "internals", "format"},
    "collections": {"foundation", "internals", "format", "graphs", "files"},
    "validation": {"foundation", "internals", "format", "files", "collections"},
    "convert": {"foundation", "internals", "format", "files"},
    # convert: adapters/pyg.py offers both directions (records -> PyG here, PyG -> records from convert)
    "adapters": {"foundation", "internals", "format", "files", "collections", "convert"},
    "cli": {"foundation", "internals", "format", "graphs", "files", "collections", "validation", "convert",
            "adapters"},
    "facade": {"foundation", "internals", "format", "graphs", "files", "collections", "validation", "convert",
               "adapters"},
}
# edges against CORE_LAYERS that stay, each with its reason (keep this list short; it is reported)
LAYER_EXCEPTIONS: dict[tuple[str, str], str] = {
    ("neural_format.format.record", "neural_format.adapters.pyg_graphs"):
        "Record.to_pyg()/to_pyg_hetero() are public methods (README) that call the adapter on first use; "
        "the adapter imports Record for type hints only, so there is no circle",
    ("neural_format.format.record", "neural_format.adapters.networkx"):
        "Record.to_networkx() is a public method (README), as above",
}


def core_unit(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1:
        return "facade"
    if parts[1] in FOUNDATION:
        return "foundation"
    if parts[1] == "__main__":
        return "cli"
    return parts[1]


def layer_violations(edges: dict[str, set[str]], exceptions=LAYER_EXCEPTIONS) -> list[str]:
    out = []
    for module, targets in edges.items():
        if not module.startswith("neural_format"):
            continue
        unit = core_unit(module)
        for target in sorted(targets):
            if not target.startswith("neural_format") or core_unit(target) == unit or (module, target) in exceptions:
                continue
            if core_unit(target) not in CORE_LAYERS.get(unit, set()):
                out.append(f"{module} ({unit}) imports {target} ({core_unit(target)})")
    return out


def test_the_layer_check_catches_a_forbidden_edge():
    """Self-test: a downward edge passes, an upward one (format -> files) and one into the facade fail."""
    edges = {"neural_format.files.reader": {"neural_format.format.record", "neural_format.errors"},
             "neural_format.format.layout": {"neural_format.files.reader"},
             "neural_format.validation.runner": {"neural_format"}}
    assert layer_violations(edges) == [
        "neural_format.format.layout (format) imports neural_format.files.reader (files)",
        "neural_format.validation.runner (validation) imports neural_format (facade)"]
    assert layer_violations({"neural_format.format.record": {"neural_format.adapters.networkx"}}) == []
    assert layer_violations({"neural_format.format.record": {"neural_format.adapters.networkx"}}, exceptions={})


def test_the_layers_are_a_layering():
    """Every subpackage of the core has its row, and the allowed imports have no circle."""
    units = {core_unit(m) for m in MODULES if m.startswith("neural_format")}
    assert units == set(CORE_LAYERS), "a new subpackage of neural_format needs its row in CORE_LAYERS"
    assert cycles({u: set(allowed) for u, allowed in CORE_LAYERS.items()}) == []
    assert all("facade" not in allowed for allowed in CORE_LAYERS.values())


def test_core_subpackages_import_only_the_layers_below():
    """Function-level imports included (the graph counts them)."""
    edges = graph()
    found = layer_violations(edges)
    assert not found, "imports against docs/architecture.md's layers:\n" + "\n".join(found)
    stale = [pair for pair in LAYER_EXCEPTIONS if pair[1] not in edges.get(pair[0], set())]
    assert not stale, f"exceptions no longer needed (remove them): {stale}"


# ------------------------------------------- the builders' and models' optional libraries
# Each package imports its optional libraries through its own table (``<package>.optional_deps``,
# the core's mechanism): ``load(...)`` inside a function, or, in a module that is torch code
# throughout, ``optional_deps.require(...)`` at the module's top before its typed ``import torch``.
PACKAGE_TABLES = {"neural_builders": "neural_builders.optional_deps", "neural_models": "neural_models.optional_deps"}


def required_at_top(module: str) -> dict[str, int]:
    """Library -> line of the module-level ``optional_deps.require("lib", ...)`` that loads it."""
    out: dict[str, int] = {}
    for node in ast.parse(MODULES[module].read_text()).body:
        call = node.value if isinstance(node, ast.Expr) else None
        if (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) and call.func.attr == "require"
                and isinstance(call.func.value, ast.Name) and call.func.value.id == "optional_deps"):
            for arg in call.args:
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    out.setdefault(arg.value.split(".")[0], node.lineno)
    return out


def direct_library_imports(package: str, libraries) -> list[str]:
    import sys
    allowed = set(sys.stdlib_module_names) | set(CORE_DEPENDENCIES) | set(PACKAGES)
    found = []
    for m in MODULES:
        if m.split(".")[0] != package:
            continue
        required = required_at_top(m)
        path = MODULES[m]
        shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path.name
        for target, _, line in sorted(imports_of(m), key=lambda found: found[2]):
            top = target.split(".")[0]
            if not target or top in allowed:
                continue
            if top not in libraries:
                found.append(f"{shown}:{line} imports {target}: not in {PACKAGE_TABLES[package]}.LIBRARIES "
                             "(add it with its extra)")
            elif top not in required or required[top] > line:
                found.append(f"{shown}:{line} imports {target} directly: use optional_deps.load() "
                             "(or require() it at the module's top)")
    return found


def test_the_library_rule_catches_a_direct_import(tmp_path, monkeypatch):
    """Self-test: a lazy ``from PIL import Image`` fails, torch required at the top passes (at the
    top and in a function), an unlisted library fails, an import before the require fails."""
    path = tmp_path / "probe.py"
    path.write_text("import torch.nn\nfrom . import optional_deps\n\noptional_deps.require('torch', needed_by='x')\n"
                    "import torch\n\ndef f():\n    from PIL import Image\n    import torch.fft\n    import yaml\n")
    import sys
    monkeypatch.setattr(sys.modules[__name__], "MODULES", {"neural_builders.probe": path})
    assert direct_library_imports("neural_builders", {"torch", "PIL"}) == [
        "probe.py:1 imports torch.nn directly: use optional_deps.load() (or require() it at the module's top)",
        "probe.py:8 imports PIL directly: use optional_deps.load() (or require() it at the module's top)",
        "probe.py:10 imports yaml: not in neural_builders.optional_deps.LIBRARIES (add it with its extra)"]


def test_builders_and_models_import_their_optional_libraries_through_their_table():
    import importlib
    found = []
    for package, table in PACKAGE_TABLES.items():
        found += direct_library_imports(package, importlib.import_module(table).LIBRARIES.extras)
    assert not found, "\n".join(found)


def test_each_table_names_an_extra_that_installs_the_library():
    """``PIL -> builders`` holds only if pyproject's ``builders`` extra lists Pillow (the
    distribution importlib.metadata says provides ``PIL``)."""
    import importlib
    import importlib.metadata
    import re
    import tomllib
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["optional-dependencies"]

    def norm(name: str) -> str:
        return re.sub(r"[-_.]+", "-", name).lower()

    listed = {extra: {norm(re.match(r"[A-Za-z0-9_.-]+", r).group(0)) for r in reqs} for extra, reqs in extras.items()}
    providers = importlib.metadata.packages_distributions()
    wrong: list[str] = []
    unchecked: list[str] = []
    for table in ("neural_format.internals.optional_deps", *PACKAGE_TABLES.values()):
        module = importlib.import_module(table)
        libraries = module.CORE if table.startswith("neural_format") else module.LIBRARIES
        for library, names in libraries.extras.items():
            dists = {norm(d) for d in providers.get(library, [])}
            if not dists:  # not installed here (the core-minimum passes): nothing says which distribution
                unchecked.append(library)
                continue
            wrong += [f"{table}: {library} -> [{extra}], which does not list {sorted(dists)}"
                      for extra in names if not dists & listed.get(extra, set())]
    assert not wrong, "\n".join(wrong)
    if unchecked:  # the full environment (make test) has them all, and checks them all
        pytest.skip(f"not installed here, so their extras are unchecked: {sorted(set(unchecked))}")
