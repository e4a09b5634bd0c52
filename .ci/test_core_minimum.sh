#!/usr/bin/env bash
# The whole suite in a fresh virtual environment holding the core's declared minimums (the '>='
# bounds of [project] dependencies in pyproject.toml: numpy, h5py, pydantic) and the test tools'
# (pytest, hypothesis, jsonschema of the dev extra), with the project installed --no-deps:
#   1. core only: what `pip install neural-format` gives. Tests that need an extra skip, each
#      naming it (importorskip, or tests/conftest.py for an extra that is truly absent);
#   2. the same environment plus, at their own declared minimums, the extras that do not need
#      torch (fsspec, tqdm, networkx, Pillow, pydicom, scipy, matplotlib, sacrebleu,
#      scikit-learn): the numeric extras against the oldest numpy the core allows.
# .ci/minimum_versions.py --check proves each pass imports exactly those versions. The model-side
# tests (torch, transformers) run against their minimums in .ci/test_minimum_versions.sh.
#   bash .ci/test_core_minimum.sh            (PYTHON=python3.11 by default; the pins need cp311 wheels)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3.11}"
CORE=(numpy h5py pydantic)
TOOLS=(pytest hypothesis jsonschema)
EXTRAS=(fsspec tqdm networkx Pillow pydicom scipy matplotlib sacrebleu scikit-learn)
VENV="$(mktemp -d "${TMPDIR:-/tmp}/nf-core-minimum.XXXXXX")"
trap 'rm -rf "$VENV"' EXIT
"$PYTHON" -m venv "$VENV"
PY="$VENV/bin/python"
mapfile -t CORE_PINS < <("$PY" .ci/minimum_versions.py --core "${CORE[@]}")
mapfile -t TOOL_PINS < <("$PY" .ci/minimum_versions.py "${TOOLS[@]}")
mapfile -t EXTRA_PINS < <("$PY" .ci/minimum_versions.py "${EXTRAS[@]}")
"$PY" -m pip install -q --disable-pip-version-check "${CORE_PINS[@]}" "${TOOL_PINS[@]}"
"$PY" -m pip install -q --disable-pip-version-check --no-deps -e .
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
check() {
  "$PY" .ci/minimum_versions.py --check --core "${CORE[@]}"
  "$PY" .ci/minimum_versions.py --check "${TOOLS[@]}" "$@"
}

echo "== core-minimum pass 1/2: ${CORE_PINS[*]} ${TOOL_PINS[*]}, no extras"
check
"$PY" -c "import importlib.util as u, sys; present = [m for m in ('torch', 'networkx', 'scipy', 'fsspec', 'tqdm') if u.find_spec(m)]; sys.exit(f'not a core-only install: {present}' if present else 0)"
"$PY" -m pytest -q -p no:cacheprovider

echo "== core-minimum pass 2/2: + ${EXTRA_PINS[*]} (numpy stays ${CORE_PINS[0]})"
"$PY" -m pip install -q --disable-pip-version-check "${CORE_PINS[@]}" "${EXTRA_PINS[@]}"
check "${EXTRAS[@]}"
"$PY" -m pytest -q -p no:cacheprovider
