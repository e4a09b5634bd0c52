#!/usr/bin/env bash
# Download, on this machine (which reaches PyPI), the wheels that the GPU machine's image lacks,
# for its Python 3.12 / x86-64, into .whl/ (git-ignored), plus .whl/data/: the few data files the
# builders read from packages that only ship data. benchmarks/gpu_check.sh installs them there. Versions are those of the local venv, so both machines run the same ones.
#   bash benchmarks/fetch_gpu_wheels.sh [VENV]       (default .venv)
# Missing on the H200 image (docs/gpu-check.md): pydantic and its three companions, pydicom,
# jsonschema and its three companions, and the data packages whose files the builders read
# (RG1_UNCR.dcm, the IU X-ray reports). Fails when any wheel has no cp312 manylinux build, and when
# .whl/ would not fit the device's 64 MiB carry together with the working tree.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${1:-.venv}/bin/python"
NAMES=(pydantic pydantic-core annotated-types typing-inspection pydicom
       # pydantic needs a recent typing-extensions (the image's may be older: the newer one shadows it)
       typing-extensions
       # the schema tests' independent validator (they skip without it): jsonschema and its needs
       jsonschema jsonschema-specifications referencing rpds-py)
DATA=(pydicom-data torchxrayvision)   # only the files we read are kept: the wheels (63 MB) exceed the carry limit
# what is kept of each data package (its package marker and the data file the builders read)
KEEP=("data_store/__init__.py" "data_store/data/RG1_UNCR.dcm"
      "torchxrayvision/__init__.py" "torchxrayvision/data/NLMCXR_reports.tgz")
pin() { echo "$1==$("$PY" -c "from importlib.metadata import version; print(version('$1'))")"; }
PINS=(); for name in "${NAMES[@]}"; do PINS+=("$(pin "$name")"); done
DATA_PINS=(); for name in "${DATA[@]}"; do DATA_PINS+=("$(pin "$name")"); done
rm -rf .whl && mkdir -p .whl/data
download() {
  "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d "$@"
}
download .whl "${PINS[@]}"
TMP="$(mktemp -d)"; trap 'rm -rf "$TMP"' EXIT
download "$TMP" "${DATA_PINS[@]}"
for wheel in "$TMP"/*.whl; do
  "$PY" - "$wheel" .whl/data "${KEEP[@]}" <<'PYEOF'
import sys, zipfile
wheel, target, keep = sys.argv[1], sys.argv[2], set(sys.argv[3:])
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        if name in keep:
            z.extract(name, target)
PYEOF
done
find .whl -type f | sort
for name in "${NAMES[@]}"; do   # one wheel of each, for the device's Python (pip's names use '_')
  compgen -G ".whl/${name//-/_}-*.whl" >/dev/null || compgen -G ".whl/${name}-*.whl" >/dev/null \
    || { echo "no wheel of $name in .whl/" >&2; exit 1; }
done
WHEELS_KB=$(du -sk .whl | cut -f1)
TREE_KB=$( { git ls-files -z; git ls-files -z --others --exclude-standard; } | xargs -0 du -ck 2>/dev/null | tail -1 | cut -f1)
echo ".whl: ${WHEELS_KB} KiB; working tree that travels: ${TREE_KB} KiB; together $(( (WHEELS_KB + TREE_KB) / 1024 )) MiB of 64"
[ $(( WHEELS_KB + TREE_KB )) -lt $(( 64 * 1024 )) ] || { echo "too large to carry (64 MiB)" >&2; exit 1; }
