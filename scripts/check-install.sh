#!/usr/bin/env bash
# Checks that an installed xgrad works from an outside project, as static and as shared
# libraries: each is installed into a temporary prefix, then tests/consumer is configured,
# built and run against it with find_package(xgrad) (and the dist consumer under mpirun, and the
# onnx consumer when xgrad has onnx), and
# a one-file program is built with `pkg-config --cflags --libs xgrad` and run. Also checks that
# a consumer not asking for dist configures without MPI (-DCMAKE_DISABLE_FIND_PACKAGE_MPI=ON),
# that asking for dist without MPI, or for an unknown component, fails with a message saying
# so, and that `cpack -G DEB` makes a package whose files, unpacked with dpkg -x into a scratch
# prefix, build and run the consumer.
#
#   scripts/check-install.sh [build-dir]     # default: build/release
#
# The build directory is used as configured (static unless BUILD_SHARED_LIBS=ON); the other
# kind is built, libraries only, in <build-dir>-shared (or -static), kept for the next run.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=$(realpath -m "${1:-$root/build/release}")
jobs=${XGRAD_JOBS:-$(nproc)}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1

"$root/scripts/install-deps.sh"

say() { echo "check-install: $*"; }
fail() { echo "check-install: FAILED: $*" >&2; exit 1; }

if [[ ! -f "$build/CMakeCache.txt" ]]; then
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release
fi
cache_value() { sed -n "s/^$2:[A-Z]*=//p" "$1/CMakeCache.txt"; }
case "$(cache_value "$build" BUILD_SHARED_LIBS)" in
  ON|on|1|TRUE|true|YES|yes) first=shared; other=static; other_flag=OFF ;;
  *) first=static; other=shared; other_flag=ON ;;
esac
other_build="$build-$other"
if [[ ! -f "$other_build/CMakeCache.txt" ]]; then
  cmake -S "$root" -B "$other_build" -DCMAKE_BUILD_TYPE="$(cache_value "$build" CMAKE_BUILD_TYPE)" \
    -DBUILD_SHARED_LIBS="$other_flag" -DXGRAD_BUILD_TESTS=OFF -DXGRAD_BUILD_EXAMPLES=OFF \
    -DXGRAD_BUILD_BENCH=OFF >/dev/null
fi

# The installed targets only (everything is already up to date after scripts/test.sh).
build_libraries() {
  local targets=(xgrad_core xgrad_nn xgrad_optim xgrad_train)
  [[ -d "$1/distributed/CMakeFiles/xgrad_distributed.dir" ]] && targets+=(xgrad_distributed)
  [[ -d "$1/onnx/CMakeFiles/xgrad_onnx.dir" ]] && targets+=(xgrad_onnx)
  cmake --build "$1" -j"$jobs" --target "${targets[@]}"
}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/xgrad-check-install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# The consumer project: configure, build, run app and spellings, and the dist consumer under
# mpirun -np 2 when the installed xgrad has dist (it must then be found).
#   run_consumer <label> <prefix> <has-dist: 0|1> [cmake args...]
run_consumer() {
  local label=$1 prefix=$2 has_dist=$3 dir="$tmp/consumer-$1"
  shift 3
  say "$label: building tests/consumer against $prefix"
  cmake -S "$root/tests/consumer" -B "$dir" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_PREFIX_PATH="$prefix" "$@" >"$dir.log" 2>&1 || { cat "$dir.log" >&2; fail "$label: configure"; }
  cmake --build "$dir" -j"$jobs" >>"$dir.log" 2>&1 || { cat "$dir.log" >&2; fail "$label: build"; }
  "$dir/app" >/dev/null || fail "$label: the consumer app"
  "$dir/spellings"
  if ((has_dist)); then
    [[ -x "$dir/dist_app" ]] || fail "$label: the installed xgrad has dist but the consumer did not find it"
    mpirun -np 2 "$dir/dist_app"
  fi
  # The onnx component, when the installed xgrad has it.
  if [[ -n "$(find "$prefix" -name xgrad-onnx-targets.cmake)" ]]; then
    [[ -x "$dir/onnx_app" ]] || fail "$label: the installed xgrad has onnx but the consumer did not find it"
    "$dir/onnx_app"
  fi
}

# <xgrad/xgrad.hpp> program built with pkg-config only, then run (and xgrad-distributed.pc's,
# with dist, and xgrad-onnx.pc's, with onnx).
run_pkg_config() {
  local label=$1 prefix=$2 has_dist=$3 has_onnx=$4 libdir
  libdir=$(dirname "$(find "$prefix" -name xgrad.pc -path '*/pkgconfig/*' | head -n 1)")/..
  libdir=$(realpath "$libdir")
  export PKG_CONFIG_PATH="$libdir/pkgconfig"
  say "$label: pkg-config --libs xgrad: $(pkg-config --libs xgrad)"
  # -std=c++20: the headers need it (xgrad.pc says so); the rpath only spares LD_LIBRARY_PATH.
  # shellcheck disable=SC2046
  c++ -std=c++20 -O1 "$root/tests/consumer/main.cpp" -o "$tmp/pc-$label" \
    $(pkg-config --cflags --libs xgrad) -Wl,-rpath,"$libdir" || fail "$label: pkg-config build"
  "$tmp/pc-$label" >/dev/null || fail "$label: the pkg-config program"
  say "$label: pkg-config program OK"
  if ((has_dist)); then
    # shellcheck disable=SC2046
    c++ -std=c++20 -O1 "$root/tests/consumer/distributed_main.cpp" -o "$tmp/pc-dist-$label" \
      $(pkg-config --cflags --libs xgrad-distributed xgrad) -Wl,-rpath,"$libdir" || fail "$label: pkg-config dist build"
    mpirun -np 2 "$tmp/pc-dist-$label" || fail "$label: the pkg-config dist program"
  fi
  if ((has_onnx)); then
    # shellcheck disable=SC2046
    c++ -std=c++20 -O1 "$root/tests/consumer/onnx_main.cpp" -o "$tmp/pc-onnx-$label" \
      $(pkg-config --cflags --libs xgrad-onnx xgrad) -Wl,-rpath,"$libdir" || fail "$label: pkg-config onnx build"
    "$tmp/pc-onnx-$label" || fail "$label: the pkg-config onnx program"
  fi
  unset PKG_CONFIG_PATH
}

# A configure of the consumer that must fail with a message matching a pattern.
expect_configure_failure() {
  local label=$1 pattern=$2 dir="$tmp/fail-$1"
  shift 2
  if cmake -S "$root/tests/consumer" -B "$dir" "$@" >"$dir.log" 2>&1; then
    fail "$label: configuring should have failed"
  fi
  # CMake wraps the message: match it with the lines joined.
  local text
  text=$(tr -s ' \n' '  ' <"$dir.log")
  [[ "$text" == *"$pattern"* ]] || { cat "$dir.log" >&2; fail "$label: no \"$pattern\" in the error"; }
  say "$label: fails as it should: $(grep -o -- "Reason given by package: .*" <<<"$text" | sed "s/ -- Configuring incomplete.*//")"
}

for kind in "$first" "$other"; do
  dir=$build
  [[ "$kind" == "$other" ]] && dir=$other_build
  say "$kind libraries ($dir), xgrad_core compiled with:" \
    "$(grep -o -- '-march=[^ ]*' "$dir/core/CMakeFiles/xgrad_core.dir/flags.make" | sort -u | tr '\n' ' ')"
  build_libraries "$dir"
  prefix="$tmp/prefix-$kind"
  cmake --install "$dir" --prefix "$prefix" >"$tmp/install-$kind.log" ||
    { cat "$tmp/install-$kind.log" >&2; fail "$kind: install"; }
  has_dist=0
  [[ -n "$(find "$prefix" -name xgrad-distributed-targets.cmake)" ]] && has_dist=1
  run_consumer "$kind" "$prefix" "$has_dist"
  has_onnx=0
  [[ -n "$(find "$prefix" -name xgrad-onnx-targets.cmake)" ]] && has_onnx=1
  run_pkg_config "$kind" "$prefix" "$has_dist" "$has_onnx"
  if [[ "$kind" == "$first" ]]; then
    # MPI is needed by the dist component only.
    run_consumer "$kind-without-mpi" "$prefix" 0 -DCMAKE_DISABLE_FIND_PACKAGE_MPI=ON
    [[ ! -e "$tmp/consumer-$kind-without-mpi/dist_app" ]] || fail "dist found with MPI disabled"
    if ((has_dist)); then
      expect_configure_failure dist-without-mpi "component 'distributed' needs MPI" \
        -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_DISABLE_FIND_PACKAGE_MPI=ON -DXGRAD_CONSUMER_COMPONENTS=distributed
    else
      expect_configure_failure dist-not-built "built without the 'distributed' component" \
        -DCMAKE_PREFIX_PATH="$prefix" -DXGRAD_CONSUMER_COMPONENTS=distributed
    fi
    expect_configure_failure unknown-component "'nonesuch' is not an xgrad component" \
      -DCMAKE_PREFIX_PATH="$prefix" -DXGRAD_CONSUMER_COMPONENTS=nonesuch
  fi
  if [[ "$kind" == shared ]]; then
    say "shared: cpack -G DEB"
    (cd "$tmp" && cpack -G DEB --config "$dir/CPackConfig.cmake" -B "$tmp/deb" >"$tmp/cpack.log" 2>&1) ||
      { cat "$tmp/cpack.log" >&2; fail "cpack -G DEB"; }
    deb=$(find "$tmp/deb" -maxdepth 1 -name '*.deb' | head -n 1)
    [[ -n "$deb" ]] || fail "cpack made no .deb"
    say "$(basename "$deb"): $(dpkg-deb -f "$deb" Package Version Architecture Depends | tr '\n' ' ')"
    outside=$(dpkg-deb -c "$deb" | awk '{print $6}' | grep -v '^\./usr/' | grep -v '^\./$' || true)
    [[ -z "$outside" ]] || fail "files outside /usr in the package: $outside"
    dpkg -x "$deb" "$tmp/deb-root"
    run_consumer deb "$tmp/deb-root/usr" "$has_dist"
  fi
done
say "OK"
