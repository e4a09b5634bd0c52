#!/usr/bin/env bash
# The model-side tests once more, against the declared minimum versions (the '>=' bounds in
# pyproject.toml) of the libraries the builders and models import, with the venv's numpy 2 (the
# same numeric extras meet numpy 1.24 in .ci/test_core_minimum.sh). They are installed, without
# their dependencies, into a scratch directory put in front of the venv on PYTHONPATH, so torch,
# numpy and the rest stay the venv's. Then ruff and mypy at their bounds. About 1-2 minutes on 2 cores.
#   bash .ci/test_minimum_versions.sh [VENV]        (default .venv, as `make test` builds it)
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${1:-.venv}/bin/python"
TESTED=(transformers tokenizers safetensors pydicom Pillow networkx tqdm torch_geometric scikit-learn
        scipy sacrebleu matplotlib fsspec)
# not ours to bound, but transformers 4.x refuses huggingface_hub >= 1.0 (the venv's is newer)
COMPANIONS=("huggingface_hub>=0.23,<1.0")
SITE="$(mktemp -d "${TMPDIR:-/tmp}/nf-minimum.XXXXXX")"
LINT_SITE="$(mktemp -d "${TMPDIR:-/tmp}/nf-minimum-lint.XXXXXX")"
trap 'rm -rf "$SITE" "$LINT_SITE"' EXIT
mapfile -t PINS < <("$PY" .ci/minimum_versions.py "${TESTED[@]}")
echo "minimum versions under test: ${PINS[*]} (+ ${COMPANIONS[*]})"
"$PY" -m pip install -q --no-deps --target "$SITE" "${PINS[@]}" "${COMPANIONS[@]}"
export PYTHONPATH="$SITE:$PWD"
"$PY" .ci/minimum_versions.py --check "${TESTED[@]}"   # the pass below really imports them
"$PY" -m pytest -q -p no:cacheprovider \
  tests/test_scoring.py tests/test_vlm_model.py tests/test_vlm_train.py tests/test_vlm_window_batches.py \
  tests/test_vlm_provenance.py tests/test_build_pipeline.py tests/test_volume.py tests/test_builders_inputs.py \
  tests/test_builders_kg.py tests/test_phi.py tests/test_demo.py tests/test_models_training.py \
  tests/test_adapters_pyg.py tests/test_models_metrics.py tests/test_models_splits.py \
  tests/test_build_stages.py tests/test_typed_configs.py tests/test_adapters_batches.py \
  tests/test_models_plots.py tests/test_models_reports.py tests/test_filelike.py tests/test_hostile_sources.py \
  tests/test_progress.py
# the dev extra's lint and type-check tools at their bounds, over what .ci/run checks with the
# venv's newest (their own dependencies come along, in a directory of their own)
LINT=(ruff mypy)
mapfile -t LINT_PINS < <("$PY" .ci/minimum_versions.py "${LINT[@]}")
echo "lint tools at their minimum: ${LINT_PINS[*]}"
PYTHONPATH= "$PY" -m pip install -q --target "$LINT_SITE" "${LINT_PINS[@]}"
PYTHONPATH="$LINT_SITE:$PWD" "$PY" .ci/minimum_versions.py --check "${LINT[@]}"
"$LINT_SITE/bin/ruff" check
PYTHONPATH="$LINT_SITE:$PWD" "$PY" -m mypy
