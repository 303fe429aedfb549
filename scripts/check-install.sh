#!/usr/bin/env bash
# Checks that an installed xgrad works from an outside project: installs the build into a
# temporary prefix, then configures, builds and runs tests/consumer against it with
# find_package(xgrad).
#
#   scripts/check-install.sh [build-dir]     # default: build/release
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=$(realpath -m "${1:-$root/build/release}")
jobs=${XGRAD_JOBS:-$(nproc)}

"$root/scripts/install-deps.sh"

# Only the library has to exist to install; everything is up to date after scripts/test.sh.
if [[ ! -f "$build/CMakeCache.txt" ]]; then
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release
fi
cmake --build "$build" -j"$jobs" --target xgrad_core

tmp=$(mktemp -d "${TMPDIR:-/tmp}/xgrad-check-install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

echo "check-install: installing to $tmp/prefix"
cmake --install "$build" --prefix "$tmp/prefix" >"$tmp/install.log" ||
  { cat "$tmp/install.log" >&2; exit 1; }

echo "check-install: building tests/consumer against it"
cmake -S "$root/tests/consumer" -B "$tmp/consumer" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$tmp/prefix"
cmake --build "$tmp/consumer" -j"$jobs"

echo "check-install: running the consumer"
"$tmp/consumer/app"
"$tmp/consumer/spellings"
if [[ -x "$tmp/consumer/dist_app" ]]; then
  echo "check-install: running the dist consumer under mpirun -np 2"
  OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 mpirun -np 2 "$tmp/consumer/dist_app"
elif [[ -f "$build/dist/libxgrad_dist.a" ]]; then
  echo "check-install: the build has the dist module but the consumer did not find it" >&2
  exit 1
fi
echo "check-install: OK"
