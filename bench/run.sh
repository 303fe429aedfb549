#!/usr/bin/env bash
# Builds the benchmarks in Release and runs each one against PyTorch, on this machine, in
# this run, and prints the ratios PyTorch / xgrad (above 1: xgrad is faster).
#
# Usage: bench/run.sh [--reps N] [--warmup N] [--ops N]     (passed to both sides)
# Environment:
#   BUILD_DIR    build directory (default build/release; configured here if missing)
#   RESULTS_DIR  where the JSON results go (default build/bench-results; not committed)
#   JOBS         parallel build jobs (default: the build tool's default)
#   PYTHON       the Python that has torch (default /usr/bin/python3, Debian's python3-torch)
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD_DIR=${BUILD_DIR:-build/release}
RESULTS_DIR=${RESULTS_DIR:-build/bench-results}
PYTHON=${PYTHON:-/usr/bin/python3}

# PyTorch's OpenMP pool must not spin against OpenBLAS's threads on 2 cores (DESIGN.md).
export OMP_WAIT_POLICY=PASSIVE

if [[ ! -f "$BUILD_DIR/CMakeCache.txt" ]]; then
  cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release
fi
build_type=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$BUILD_DIR/CMakeCache.txt")
if [[ "$build_type" != Release ]]; then
  echo "run.sh: $BUILD_DIR is a '$build_type' build; benchmarks need Release" >&2
  echo "        (use another BUILD_DIR, or reconfigure with -DCMAKE_BUILD_TYPE=Release)" >&2
  exit 1
fi
cmake --build "$BUILD_DIR" --target bench_op_overhead ${JOBS:+--parallel "$JOBS"}
mkdir -p "$RESULTS_DIR"

have_torch=0
if "$PYTHON" -c 'import torch' 2>/dev/null; then
  have_torch=1
else
  echo "PyTorch is missing ($PYTHON cannot import torch): running xgrad alone."
  echo "Install it with 'apt-get install python3-torch' or 'scripts/install-deps.sh --with-torch'."
fi

echo
echo "machine: $(nproc) cores, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== op_overhead: per-op cost of recording, differentiating and freeing tiny ops"
"$BUILD_DIR/bench/bench_op_overhead" "$@" --json "$RESULTS_DIR/op_overhead.xgrad.json"
if ((have_torch)); then
  echo
  "$PYTHON" bench/op_overhead.py "$@" --json "$RESULTS_DIR/op_overhead.pytorch.json"
  echo
  "$PYTHON" bench/compare.py "$RESULTS_DIR/op_overhead.xgrad.json" "$RESULTS_DIR/op_overhead.pytorch.json" \
    --out "$RESULTS_DIR/op_overhead.json"
fi
echo
echo "Results: $RESULTS_DIR/"
