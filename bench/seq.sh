#!/usr/bin/env bash
# Attention, Transformer encoder and Conv1d, xgrad (bench_seq) beside PyTorch (bench/seq_bench.py)
# on the same weights and data, workload by workload, RUNS times over; then bench/seq_report.py's
# table of medians with the speedups' range over the runs.
#
# Usage: bench/seq.sh [--runs N] [--quick] [--filter TEXT] [--reps N] [--warmup N] [--markdown]
# Environment: BUILD_DIR (default build/release), RESULTS_DIR (default build/bench-results),
#              PYTHON (default /usr/bin/python3)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build/release}
RESULTS_DIR=${RESULTS_DIR:-build/bench-results}
PYTHON=${PYTHON:-/usr/bin/python3}
runs=1 filter="" common=() report=()
while (($#)); do
  case "$1" in
    --runs) runs=${2:?--runs needs a number}; shift 2 ;;
    --quick) common+=(--quick); shift ;;
    --filter) filter=${2:?--filter needs a text}; shift 2 ;;
    --reps|--warmup) common+=("$1" "${2:?$1 needs a value}"); shift 2 ;;
    --markdown) report+=(--markdown); shift ;;
    -h|--help) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "seq.sh: unknown argument '$1' (try --help)" >&2; exit 1 ;;
  esac
done
export OMP_WAIT_POLICY=PASSIVE  # as run.sh: PyTorch's OpenMP pool must not spin on 2 cores
cmake --build "$BUILD_DIR" --target bench_seq
inputs="$RESULTS_DIR/seq-inputs"
rm -rf "$RESULTS_DIR/seq"
echo "machine: $(nproc) cores, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"
mapfile -t ids < <("$BUILD_DIR/bench/bench_seq" --list --filter "$filter")
dirs=()
for ((r = 1; r <= runs; ++r)); do
  dir="$RESULTS_DIR/seq/run$r"
  mkdir -p "$dir/xgrad" "$dir/pytorch"
  for id in "${ids[@]}"; do
    echo "== run $r: $id"
    "$BUILD_DIR/bench/bench_seq" --filter "$id" --inputs "$inputs" "${common[@]}" --json "$dir/xgrad/$id.json" | sed 's/^/xgrad    /'
    "$PYTHON" bench/seq_bench.py --filter "$id" --inputs "$inputs" "${common[@]}" --json "$dir/pytorch/$id.json" | sed 's/^/PyTorch  /'
  done
  # One file per side, as seq_report.py reads them.
  for side in xgrad pytorch; do
    "$PYTHON" -c 'import json,sys; print(json.dumps({"results": [r for f in sys.argv[1:] for r in json.load(open(f))["results"]]}))' \
      "$dir/$side"/*.json > "$dir/$side.json"
  done
  dirs+=("$dir")
done
echo
"$PYTHON" bench/seq_report.py "${dirs[@]}" "${report[@]}"
