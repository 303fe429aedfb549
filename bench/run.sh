#!/usr/bin/env bash
# Builds the benchmarks in Release and runs every one against PyTorch, on this machine, in
# this run, the two frameworks interleaved workload by workload, then prints one table of
# medians and speedups (speedup = PyTorch time / xgrad time: above 1, xgrad is faster).
#
# Usage: bench/run.sh [--quick] [--filter TEXT] [--json FILE] [--reps N] [--warmup N] [--ops N]
#   --quick        fewer repetitions (a few minutes less; L-size steps take ~1 s each)
#   --filter TEXT  only the workloads whose id contains TEXT: lstm_S, train_, _L, mem_,
#                  matmul_gru, op_overhead, ... (bench/rnn_bench.py --list shows the ids)
#   --json FILE    also write the table as JSON
#   --reps/--warmup override the per-size defaults of both sides; --ops goes to op_overhead
# Environment:
#   BUILD_DIR    build directory (default build/release; configured here if missing)
#   RESULTS_DIR  where the raw JSON results go (default build/bench-results; not committed)
#   JOBS         parallel build jobs (default: the build tool's default)
#   PYTHON       the Python that has torch (default /usr/bin/python3, Debian's python3-torch)
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD_DIR=${BUILD_DIR:-build/release}
RESULTS_DIR=${RESULTS_DIR:-build/bench-results}
PYTHON=${PYTHON:-/usr/bin/python3}

quick=0 filter="" json="" common=() op_args=()
while (($#)); do
  case "$1" in
    --quick) quick=1; shift ;;
    --filter) filter=${2:?--filter needs a text}; shift 2 ;;
    --json) json=${2:?--json needs a file name}; shift 2 ;;
    --reps|--warmup) common+=("$1" "${2:?$1 needs a value}"); shift 2 ;;
    --ops) op_args+=("$1" "${2:?--ops needs a value}"); shift 2 ;;
    -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "run.sh: unknown argument '$1' (try --help)" >&2; exit 1 ;;
  esac
done
command="bench/run.sh"
((quick)) && command+=" --quick"
[[ -n "$filter" ]] && command+=" --filter $filter"
((${#common[@]})) && command+=" ${common[*]}"
((${#op_args[@]})) && command+=" ${op_args[*]}"
if ((quick)); then
  common+=(--quick)
  op_args=(--reps 5 "${op_args[@]}")
fi

# PyTorch's OpenMP pool must not spin against OpenBLAS's threads on 2 cores (docs/design.md).
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
cmake --build "$BUILD_DIR" --target bench_op_overhead bench_rnn ${JOBS:+--parallel "$JOBS"}
rm -rf "$RESULTS_DIR/rnn" "$RESULTS_DIR"/op_overhead*.json
mkdir -p "$RESULTS_DIR/rnn/xgrad" "$RESULTS_DIR/rnn/pytorch"
inputs="$RESULTS_DIR/rnn-inputs"  # the shared weights and data, kept between runs

have_torch=0
if "$PYTHON" -c 'import torch' 2>/dev/null; then
  have_torch=1
else
  echo "PyTorch is missing ($PYTHON cannot import torch): running xgrad alone."
  echo "Install it with 'apt-get install python3-torch' or 'scripts/install-deps.sh --with-torch'."
fi

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
echo
echo "machine: $(nproc) cores, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1), load average $load_before"
echo "command: $command"

if [[ op_overhead == *"$filter"* ]]; then
  echo
  echo "== op_overhead: per-op cost of recording, differentiating and freeing tiny ops"
  "$BUILD_DIR/bench/bench_op_overhead" "${op_args[@]}" --json "$RESULTS_DIR/op_overhead.xgrad.json"
  if ((have_torch)); then
    "$PYTHON" bench/op_overhead.py "${op_args[@]}" --json "$RESULTS_DIR/op_overhead.pytorch.json"
    "$PYTHON" bench/compare.py "$RESULTS_DIR/op_overhead.xgrad.json" "$RESULTS_DIR/op_overhead.pytorch.json" \
      --out "$RESULTS_DIR/op_overhead.json" > /dev/null
  fi
fi

# The recurrent workloads, xgrad then PyTorch for each, so that both see the same machine.
mapfile -t ids < <("$BUILD_DIR/bench/bench_rnn" --list --filter "$filter")
for id in "${ids[@]}"; do
  echo
  echo "== $id (load $(cut -d' ' -f1 /proc/loadavg))"
  "$BUILD_DIR/bench/bench_rnn" --filter "$id" --inputs "$inputs" "${common[@]}" \
    --json "$RESULTS_DIR/rnn/xgrad/$id.json" | sed 's/^/xgrad    /'
  if ((have_torch)); then
    "$PYTHON" bench/rnn_bench.py --filter "$id" --inputs "$inputs" "${common[@]}" \
      --json "$RESULTS_DIR/rnn/pytorch/$id.json" | sed 's/^/PyTorch  /'
  fi
done

echo
"$PYTHON" bench/report.py "$RESULTS_DIR" --command "$command" --load-before "$load_before" ${json:+--json "$json"}
echo
echo "Raw results: $RESULTS_DIR/"
