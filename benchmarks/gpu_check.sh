#!/usr/bin/env bash
# The GPU check in one script, for a machine with an NVIDIA GPU, CuPy and torch (CUDA), on which
# the six plait distributions are installed (wheels or editable). Run from the repository root:
#
#     bash benchmarks/gpu_check.sh OUTDIR [SECONDS]
#
# 1. the `gpu`-marked tests under PLAIT_DEVICE=cuda (real CuPy, no stand-in);
# 2. every test file written with plait.core.testing.on_test_device (the torch-parity and
#    layer tests) under PLAIT_DEVICE=cuda: the CPU references, tolerances no looser than
#    float32 on the CPU; and the tests of the fused CUDA kernels (tests/*/test_*_cuda_kernels.py);
# 3. benchmarks/bench_gpu.py, fp32 and tf32 (rows 2-5 and 8), and its --sync-study.
#
# Every phase has its own time limit (a share of SECONDS, default 480), writes its log and a
# JUnit XML or JSON file under OUTDIR, and a failing phase does not stop the later ones.
set -uo pipefail
out="${1:?usage: gpu_check.sh OUTDIR [SECONDS]}"
budget="${2:-480}"
mkdir -p "$out"
export PLAIT_DEVICE=cuda PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1

workers=$(python3 -c "import os; print(max(1, min(8, (os.cpu_count() or 2) // 2)))")
xdist=()
if python3 -c "import xdist" 2>/dev/null; then xdist=(-n "$workers"); fi

phase() {  # phase NAME SECONDS COMMAND...
  local name=$1 seconds=$2
  shift 2
  local start=$SECONDS
  timeout --kill-after=10 "$seconds" "$@" >"$out/$name.log" 2>&1
  local rc=$?
  echo "$name: exit $rc in $((SECONDS - start)) s (limit $seconds s)" | tee -a "$out/summary.txt"
  tail -n 3 "$out/$name.log" | sed 's/^/    /' | tee -a "$out/summary.txt"
}

{
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
  python3 -c "import cupy, torch, numpy; print('cupy', cupy.__version__, 'cuda runtime', cupy.cuda.runtime.runtimeGetVersion(), '| torch', torch.__version__, torch.version.cuda, '| numpy', numpy.__version__)"
  python3 -c "import plait.core.backend as b; print('plait sees cupy:', b.cupy_available())"
} >"$out/summary.txt" 2>&1
cat "$out/summary.txt"

parity_files=$( (grep -rl "on_test_device" tests --include='test_*.py'; ls tests/*/test_*_cuda_kernels.py) | sort -u)
phase gpu_marker $((budget * 20 / 100)) \
  python3 -m pytest -q -m gpu -p no:cacheprovider -p no:randomly "${xdist[@]}" --junitxml="$out/gpu_marker.xml" tests
# shellcheck disable=SC2086  # one argument per file
phase parity $((budget * 25 / 100)) \
  python3 -m pytest -q -p no:cacheprovider -p no:randomly "${xdist[@]}" --junitxml="$out/parity.xml" $parity_files
phase bench_gpu $((budget * 30 / 100)) \
  python3 benchmarks/bench_gpu.py --repeats 10 --out "$out/results_gpu.json"
phase sync_study $((budget * 25 / 100)) \
  python3 benchmarks/bench_gpu.py --sync-study --repeats 10
