#!/usr/bin/env bash
# Builds and runs xgrad's training example; installs the Debian packages it needs on first run.
# Arguments go to the example: scripts/train.sh --help
set -euo pipefail

example=temperature_forecast   # the example this command runs

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build="$root/build/release"
jobs=${XGRAD_JOBS:-$(nproc)}
log="$build/train-build.log"

"$root/scripts/install-deps.sh"

# Same configuration as scripts/test.sh, so the two commands share one build.
mkdir -p "$build"
echo "train: building $example in ${build#"$root"/} (log: ${log#"$root"/})" >&2
if ! { cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release &&
       cmake --build "$build" -j"$jobs" --target "$example"; } >"$log" 2>&1; then
  tail -n 40 "$log" >&2
  echo "train: build failed; full log in $log" >&2
  exit 1
fi

exec "$build/examples/$example" "$@"
