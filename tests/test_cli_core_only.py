"""A core-only install (numpy, h5py, pydantic) lists every verb; the verbs of the packages above
the core say which extra to install, with the coded error NF-E-EXTRA and exit 2, never a
traceback (issue 15). The core-only machine is simulated in a child Python whose imports of the
higher packages and of the optional libraries fail as they would when not installed."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest

import neural_format as nf
from neural_format.cli import ENTRY_POINT_GROUP, build_parser, plugin_commands
from neural_format.collections.synthetic import synthetic_meta, synthetic_records

ROOT = Path(__file__).resolve().parents[1]
OPTIONAL = ["torch", "torch_geometric", "transformers", "tokenizers", "safetensors", "networkx", "PIL", "pydicom",
            "scipy", "sklearn", "matplotlib", "tqdm", "sacrebleu", "fsspec"]
CORE_VERBS = {"convert", "inspect", "merge", "reprune", "split", "validate", "verify", "view"}

CHILD = r"""
import contextlib, io, json, sys, importlib.abc
blocked = set(sys.argv[1].split(","))
class NotInstalled(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in blocked:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, NotInstalled())
from neural_format.cli import main
results = {}
for argv in json.loads(sys.argv[2]):
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main(argv)
        except SystemExit as exc:
            code = exc.code
        except BaseException as exc:
            code = "raised " + type(exc).__name__ + ": " + str(exc)
    results[argv[0]] = [code, err.getvalue()]
help_out = io.StringIO()
with contextlib.redirect_stdout(help_out):
    try:
        main(["--help"])
    except SystemExit:
        pass
print(json.dumps({"results": results, "help": help_out.getvalue()}))
"""


@pytest.fixture(scope="module")
def collection(tmp_path_factory):
    path = tmp_path_factory.mktemp("core_only") / "c.h5"
    meta = synthetic_meta(feature_dim=8)
    nf.write_collection(path, meta, synthetic_records(4, meta, seed=0), fsync=False)
    return path


def plugin_argvs(collection: Path, out: Path) -> list[list[str]]:
    c, o = str(collection), str(out)
    return [["ablate", c, "--out", o], ["build", "--images", o, "--reports", o, "--model", o, "--out", o],
            ["demo", "--quick", "--out", o], ["evaluate", o, c], ["finetune", "--images", o, "--reports", o, "--out", o],
            ["generate-reports", c, "--generator", o, "--out", o], ["render", c, "--index", "0", "--out", o],
            ["train", c, "--out", o]]


def run_child(blocked: list[str], argvs: list[list[str]]) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-c", CHILD, ",".join(blocked), json.dumps(argvs)], capture_output=True,
                          text=True, timeout=300, env=env, cwd=str(ROOT))
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_every_plugin_verb_is_declared_and_seen_by_this_python():
    """pyproject.toml's entry points are what importlib.metadata reports: a stale editable install
    (entry points changed, not reinstalled) fails here, by name, instead of losing verbs."""
    import tomllib
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"][ENTRY_POINT_GROUP]
    seen = {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}
    assert seen == declared, "reinstall the package (pip install --no-deps -e .): its entry points are stale"
    verbs = set(build_parser()._subparsers._group_actions[0].choices)
    assert verbs == CORE_VERBS | set(declared)
    assert all(ep.extras for ep in plugin_commands())


@pytest.mark.parametrize("blocked", [["neural_builders", "neural_models", *OPTIONAL], OPTIONAL],
                         ids=["packages-absent", "libraries-absent"])
def test_core_only_install_names_the_extra_without_a_traceback(blocked, collection, tmp_path):
    extras = {ep.name: ep.extras for ep in plugin_commands()}
    argvs = plugin_argvs(collection, tmp_path / "nothing")
    # a new plugin verb is run here too: give it an argv in plugin_argvs (docs/architecture.md, "A command")
    assert sorted(argv[0] for argv in argvs) == sorted(extras)
    out = run_child(blocked, argvs)
    for verb in CORE_VERBS | set(extras):
        assert f"    {verb}" in out["help"], verb
    for verb, (code, err) in out["results"].items():
        assert code == 2, (verb, code, err)
        assert "Traceback" not in err, (verb, err)
        assert "[NF-E-EXTRA]" in err, (verb, err)
        assert f"pip install 'neural-format[{','.join(extras[verb])}]'" in err, (verb, err)
    if "neural_builders" in blocked:
        assert "(not installed: pip install 'neural-format[torch,builders]')" in " ".join(out["help"].split()) \
            .replace("neural- format", "neural-format")


def test_core_verbs_work_in_a_core_only_install(collection):
    out = run_child(["neural_builders", "neural_models", *OPTIONAL], [["validate", str(collection), "--in-process"]])
    assert out["results"]["validate"][0] == 0, out["results"]


def test_a_missing_optional_library_is_a_coded_error_naming_the_extra():
    code = ("import sys, importlib.abc\n"
            "class NotInstalled(importlib.abc.MetaPathFinder):\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name.split('.')[0] == 'networkx':\n"
            "            raise ModuleNotFoundError(name, name=name)\n"
            "sys.meta_path.insert(0, NotInstalled())\n"
            "from neural_format.errors import MissingExtraError\n"
            "from neural_format.graphs.fusion import centralities\n"
            "try:\n"
            "    centralities(2, [[0], [1]])\n"
            "except MissingExtraError as exc:\n"
            "    print(exc.code, exc.name, isinstance(exc, ImportError), exc)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)), cwd=str(ROOT))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("NF-E-EXTRA networkx True"), proc.stdout
    assert "pip install 'neural-format[torch]'" in proc.stdout, proc.stdout

