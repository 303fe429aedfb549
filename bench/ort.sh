#!/usr/bin/env bash
# Inference of the recurrent workloads (bench_rnn's infer_<cell>_<size>) in ONNX Runtime 1.30,
# from the model xgrad exports, beside xgrad and PyTorch: same machine, same run, same weights
# and input (the shared <cell>_<size>.safetensors of bench/run.sh), interleaved workload by
# workload. Prints the medians and the ratios (above 1: the first is slower than ORT).
#
# Usage: bench/ort.sh [--quick] [--filter TEXT] [--reps N] [--warmup N]
# Environment: BUILD_DIR (default build/release), RESULTS_DIR (default build/bench-results),
#   PYTHON (default /usr/bin/python3, with torch), XGRAD_ORT_DIR (scripts/install-ort.sh's folder).
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD_DIR=${BUILD_DIR:-build/release}
RESULTS_DIR=${RESULTS_DIR:-build/bench-results}
PYTHON=${PYTHON:-/usr/bin/python3}
ORT_DIR=${XGRAD_ORT_DIR:-$HOME/.cache/xgrad/ort}
filter="" common=()
while (($#)); do
  case "$1" in
    --quick) common+=(--quick); shift ;;
    --filter) filter=${2:?--filter needs a text}; shift 2 ;;
    --reps|--warmup) common+=("$1" "${2:?$1 needs a value}"); shift 2 ;;
    -h|--help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "ort.sh: unknown argument '$1' (try --help)" >&2; exit 1 ;;
  esac
done
export OMP_WAIT_POLICY=PASSIVE  # PyTorch's OpenMP pool must not spin against OpenBLAS (docs/design.md)

scripts/install-ort.sh
cmake --build "$BUILD_DIR" --target bench_rnn bench_ort_export ${JOBS:+--parallel "$JOBS"}
out="$RESULTS_DIR/ort"
inputs="$RESULTS_DIR/rnn-inputs"
rm -rf "$out" && mkdir -p "$out" "$inputs"
have_torch=0
"$PYTHON" -c 'import torch' 2>/dev/null && have_torch=1

echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
mapfile -t ids < <("$BUILD_DIR/bench/bench_rnn" --list --filter infer_ | grep -F -- "$filter")
for id in "${ids[@]}"; do
  echo
  echo "== $id (load $(cut -d' ' -f1 /proc/loadavg))"
  "$BUILD_DIR/bench/bench_rnn" --filter "$id" --inputs "$inputs" "${common[@]}" --json "$out/$id.xgrad.json" |
    sed 's/^/xgrad    /'
  if ((have_torch)); then
    "$PYTHON" bench/rnn_bench.py --filter "$id" --inputs "$inputs" "${common[@]}" --json "$out/$id.pytorch.json" |
      sed 's/^/PyTorch  /'
  fi
  "$BUILD_DIR/bench/bench_ort_export" --filter "$id" --inputs "$inputs" | sed 's/^/export   /'
  # ORT gets the repetitions xgrad used.
  read -r reps warmup < <("$PYTHON" -c 'import json,sys; r=json.load(open(sys.argv[1]))["results"][0]; print(int(r["reps"]), int(r["warmup"]))' "$out/$id.xgrad.json")
  node bench/ort_bench.js "$ORT_DIR" "$inputs" "$id" "$reps" "$warmup" "$out/$id.ort.json" | sed 's/^/ORT      /'
done

echo
"$PYTHON" - "$out" "${ids[@]}" <<'PY'
import json, os, sys
out, ids = sys.argv[1], sys.argv[2:]
def load(id, who):
    path = os.path.join(out, f"{id}.{who}.json")
    return json.load(open(path))["results"][0] if os.path.exists(path) else None
print(f"{'workload':<16} {'xgrad ms':>10} {'PyTorch ms':>11} {'ORT ms':>9} {'xgrad/ORT':>10} {'PyTorch/ORT':>12}  checksums (mean |y|)")
for id in ids:
    x, p, o = load(id, "xgrad"), load(id, "pytorch"), load(id, "ort")
    pm = f"{p['median_ms']:11.3f}" if p else f"{'-':>11}"
    pr = f"{p['median_ms'] / o['median_ms']:12.2f}" if p else f"{'-':>12}"
    sums = " ".join(f"{r['output_mean_abs']:.6g}" for r in (x, p, o) if r)
    print(f"{id:<16} {x['median_ms']:10.3f} {pm} {o['median_ms']:9.3f} {x['median_ms'] / o['median_ms']:10.2f} {pr}  {sums}")
PY
echo "Raw results: $out/"
