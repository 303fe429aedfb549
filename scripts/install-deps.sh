#!/usr/bin/env bash
# Installs the Debian 12 packages xgrad needs to build and test, and only those missing.
# Prints nothing when everything is already installed.
#
#   scripts/install-deps.sh               # compiler, CMake, xtensor, OpenBLAS, fmt, doctest, gnuplot, OpenMPI, ...
#   scripts/install-deps.sh --with-torch  # also python3-torch (fixture generators, benchmarks)
#   scripts/install-deps.sh --with-fuzz   # also clang (libFuzzer: scripts/fuzz.sh)
set -euo pipefail

# gnuplot-nox draws the examples' PNG plots (without it they write CSV only). OpenMPI builds
# the optional distributed module (data-parallel training) and runs its tests under mpirun.
# pkg-config and dpkg-dev: scripts/check-install.sh builds with xgrad.pc and makes the .deb.
# python3 runs scripts/doc_snippets.py, which turns the docs' C++ blocks into tests.
# doxygen builds the API reference (the `doxygen` target; CI fails on an undocumented symbol).
# libonnx-dev and libprotobuf-dev build the optional onnx module (export and import); nodejs
# runs ONNX Runtime (scripts/install-ort.sh, with npm) for its tests.
packages=(cmake g++ make python3 libxtensor-dev xtl-dev libxsimd-dev libopenblas-dev libfmt-dev
          doctest-dev nlohmann-json3-dev libcli11-dev gnuplot-nox libopenmpi-dev openmpi-bin
          pkg-config dpkg-dev doxygen libonnx-dev libprotobuf-dev nodejs)
# npm installs ONNX Runtime; a node from elsewhere (e.g. nodesource) may bring its own npm.
command -v npm >/dev/null 2>&1 || packages+=(npm)

usage() {
  sed -n '2,7s/^# \{0,1\}//p' "$0"
}

for arg in "$@"; do
  case "$arg" in
    --with-torch) packages+=(python3-torch) ;;
    --with-fuzz) packages+=(clang) ;;
    -h|--help) usage; exit 0 ;;
    *) echo "install-deps: unknown option '$arg'" >&2; usage >&2; exit 2 ;;
  esac
done

missing=()
for pkg in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$pkg")
done
((${#missing[@]} == 0)) && exit 0

if ((EUID == 0)); then
  as_root=(env)
elif command -v sudo >/dev/null 2>&1; then
  # Without a terminal (CI) sudo must not wait for a password prompt nobody can answer.
  if [[ -t 0 ]]; then as_root=(sudo env); else as_root=(sudo -n env); fi
else
  echo "install-deps: missing Debian packages: ${missing[*]}" >&2
  echo "install-deps: not root and no sudo; as root, run:" >&2
  echo "  apt-get update && apt-get install -y ${missing[*]}" >&2
  exit 1
fi

echo "install-deps: installing ${missing[*]}" >&2
apt_get=("${as_root[@]}" DEBIAN_FRONTEND=noninteractive apt-get -qq -o=Dpkg::Use-Pty=0
         -o DPkg::Lock::Timeout=300)
# apt's chatter goes to a log that is shown only when a step fails.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
run() {
  if ! "$@" >"$log" 2>&1; then
    cat "$log" >&2
    echo "install-deps: failed: $*" >&2
    exit 1
  fi
}
run "${apt_get[@]}" update
run "${apt_get[@]}" install -y --no-install-recommends "${missing[@]}"
