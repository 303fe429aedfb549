#!/usr/bin/env bash
# Weak scaling of data-parallel training on this machine: LSTM M (batch 64 per rank, seq 100,
# input 128, hidden 256), one OpenBLAS thread per rank, at np = 1 and np = 2, with the
# allreduces overlapping backward (the default) and, to measure the communication itself,
# started only after backward. Prints the JSON lines and the summary:
#   efficiency = step time at np 1 / step time at np 2   (1.0 is perfect weak scaling)
#   hidden     = 1 - wait with overlap / wait without    (share of allreduce time hidden)
#
# Usage: bench/dist_scaling.sh [arguments for bench_dist_scaling, e.g. --hidden 512 --steps 30]
# Environment: BUILD_DIR (default build/release)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build/release}
if [[ ! -f "$BUILD_DIR/CMakeCache.txt" ]]; then
  cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release
fi
cmake --build "$BUILD_DIR" --target bench_dist_scaling >/dev/null
export OPENBLAS_NUM_THREADS=1 OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
run() { mpirun -np "$1" --bind-to core "$BUILD_DIR/bench/bench_dist_scaling" --overlap "$2" "${@:3}"; }
one=$(run 1 1 "$@")
two=$(run 2 1 "$@")
blocking=$(run 2 0 "$@")
printf '%s\n%s\n%s\n' "$one" "$two" "$blocking"
python3 - "$one" "$two" "$blocking" <<'PY'
import json, sys
one, two, blocking = (json.loads(a) for a in sys.argv[1:])
print(f"np 1: {one['step_ms']:.1f} ms/step; np 2: {two['step_ms']:.1f} ms/step (allreduce after backward: "
      f"{blocking['step_ms']:.1f} ms/step)")
print(f"weak-scaling efficiency (np 1 / np 2): {one['step_ms'] / two['step_ms']:.3f}")
hidden = 1 - two['wait_ms'] / blocking['wait_ms'] if blocking['wait_ms'] > 0 else float('nan')
print(f"allreduce wait after backward: {two['wait_ms']:.2f} ms overlapped, {blocking['wait_ms']:.2f} ms not; "
      f"hidden share {hidden:.2f}")
PY
