#!/usr/bin/env bash
# Builds the loaders' fuzz targets with clang's libFuzzer under AddressSanitizer and UBSan
# (build/fuzz) and runs each for a bounded time, starting from its seed corpus and its
# regression inputs. A finding stops the script with the fuzzer's report; the input that
# caused it is left in build/fuzz/findings/ — copy it to tests/fuzz/regressions/<target>/
# once it is fixed.
#
#   scripts/fuzz.sh                      # every target, 30 s each
#   scripts/fuzz.sh --seconds 600 npy    # one target, 10 minutes
#
# Needs Debian's clang (scripts/install-deps.sh --with-fuzz installs it).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
jobs=${XGRAD_JOBS:-$(nproc)}
seconds=30
targets=()
while (($#)); do
  case "$1" in
    --seconds) seconds=$2; shift ;;
    -h|--help) sed -n '2,12s/^# \{0,1\}//p' "$0"; exit 0 ;;
    -*) echo "fuzz: unknown option '$1'" >&2; exit 2 ;;
    *) targets+=("$1") ;;
  esac
  shift
done
default_targets=0
if ((${#targets[@]} == 0)); then
  default_targets=1
  targets=(safetensors npy checkpoint optimizer_state scheduler_state csv json_records vocabulary padding strided)
fi

"$root/scripts/install-deps.sh" --with-fuzz

build="$root/build/fuzz"
CC=clang CXX=clang++ cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DXGRAD_FUZZ=ON \
  -DXGRAD_BUILD_TESTS=OFF -DXGRAD_BUILD_EXAMPLES=OFF -DXGRAD_BUILD_BENCH=OFF >/dev/null
# The ONNX importer's target exists when the onnx module is built (ONNX and protobuf found).
if ((default_targets)) && [[ -d "$build/onnx" ]]; then
  targets+=(onnx_import)
fi
cmake --build "$build" -j"$jobs" --target "${targets[@]/#/fuzz_}"

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
mkdir -p "$build/findings"
for target in "${targets[@]}"; do
  # New inputs the fuzzer finds go to a scratch corpus, never into the repository.
  work=$(mktemp -d)
  inputs=("$work" "$root/tests/fuzz/corpus/$target")
  [[ -d "$root/tests/fuzz/regressions/$target" ]] && inputs+=("$root/tests/fuzz/regressions/$target")
  echo "=== fuzz_$target for $seconds s"
  status=0
  "$build/tests/fuzz/fuzz_$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=4096 \
    -max_len=65536 -print_final_stats=1 -artifact_prefix="$build/findings/$target-" "${inputs[@]}" \
    2>"$work.log" || status=$?
  grep -E '^(stat::number_of_executed_units|stat::new_units_added|Done)' "$work.log" || true
  rm -rf "$work"
  if ((status != 0)); then
    tail -n 60 "$work.log" >&2
    rm -f "$work.log"
    echo "fuzz: fuzz_$target found a failing input (in $build/findings/)" >&2
    exit 1
  fi
  rm -f "$work.log"
done
echo "fuzz: no finding in ${#targets[@]} target(s), $seconds s each"
