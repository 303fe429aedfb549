#!/usr/bin/env bash
# Builds xgrad and runs the test suite; installs the Debian packages it needs on first run.
#
#   scripts/test.sh                # Release build in build/release
#   scripts/test.sh --sanitize     # Debug + AddressSanitizer/UBSan build in build/asan
#   scripts/test.sh --tsan         # ThreadSanitizer build in build/tsan; runs test_threads
#   scripts/test.sh -R autograd    # any other argument goes to ctest
#
# XGRAD_JOBS sets the number of parallel compile jobs (default: nproc).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
jobs=${XGRAD_JOBS:-$(nproc)}

sanitize=0
tsan=0
ctest_args=()
targets=()
for arg in "$@"; do
  case "$arg" in
    --sanitize) sanitize=1 ;;
    --tsan) tsan=1 ;;
    -h|--help) sed -n '2,9s/^# \{0,1\}//p' "$0"; exit 0 ;;
    *) ctest_args+=("$arg") ;;
  esac
done

"$root/scripts/install-deps.sh"

if ((tsan)); then
  # Optimised (ThreadSanitizer is slow enough); the test that runs models on several threads.
  build="$root/build/tsan"
  config=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DXGRAD_SANITIZE_THREAD=ON
          -DXGRAD_BUILD_BENCH=OFF -DXGRAD_BUILD_EXAMPLES=OFF)
  export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1
  ((${#ctest_args[@]})) || ctest_args=(-R '^test_threads$')
  targets=(--target xgrad_tests)
elif ((sanitize)); then
  build="$root/build/asan"
  config=(-DCMAKE_BUILD_TYPE=Debug -DXGRAD_SANITIZE=ON
          -DXGRAD_BUILD_BENCH=OFF -DXGRAD_BUILD_EXAMPLES=OFF)
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
else
  build="$root/build/release"
  config=(-DCMAKE_BUILD_TYPE=Release)
fi

# CI tests what ships: the portable default instruction set (cmake/XgradArch.cmake), also in
# a build directory whose cache still holds XGRAD_NATIVE=ON from before it was opt-in.
config+=(-DXGRAD_NATIVE=OFF)
cmake -S "$root" -B "$build" "${config[@]}"
cmake --build "$build" -j"$jobs" "${targets[@]}"
ctest --test-dir "$build" --output-on-failure --no-tests=error "${ctest_args[@]}"
