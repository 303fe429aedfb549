#!/bin/sh
# Installs ONNX Runtime 1.30 for node (npm's onnxruntime-node, CPU build for linux-x64, which
# ships inside the package) into a cache folder outside the repository: $XGRAD_ORT_DIR, or
# ~/.cache/xgrad/ort. The ONNX export tests (tests/onnx) run exported models in it and compare
# with xgrad; without it they are skipped, saying why.
# --ignore-scripts: the package's install script fetches GPU pieces from outside the registry.
set -eu
dir="${XGRAD_ORT_DIR:-$HOME/.cache/xgrad/ort}"
version=1.30.0
if ! command -v npm >/dev/null 2>&1; then
  echo "install-ort: npm not found (Debian: apt-get install npm); the ONNX Runtime tests will be skipped" >&2
  exit 0
fi
mkdir -p "$dir"
cd "$dir"
if [ -f node_modules/onnxruntime-node/package.json ] &&
   grep -q "\"version\": \"$version\"" node_modules/onnxruntime-node/package.json; then
  echo "install-ort: onnxruntime-node $version already in $dir"
  exit 0
fi
[ -f package.json ] || echo '{"private": true}' > package.json
npm install --ignore-scripts --no-audit --no-fund --loglevel=error "onnxruntime-node@$version"
echo "install-ort: onnxruntime-node $version installed in $dir"
