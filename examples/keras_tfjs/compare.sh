#!/usr/bin/env bash
# Keras itself (TensorFlow.js 4.22.0) side by side with examples/keras_tutorial.cpp; see
# README.md here for what each mode shows and the committed results.
#
#     examples/keras_tfjs/compare.sh steps [KERAS_TUTORIAL]   # writes tfjs_steps.json
#     examples/keras_tfjs/compare.sh train [KERAS_TUTORIAL]   # writes tfjs_train.json, xgrad_train.json
#     examples/keras_tfjs/compare.sh embedding [KERAS_TUTORIAL]   # tfjs's Embedding vs one-hot × kernel
#
# KERAS_TUTORIAL: the built example (default build/release/examples/keras_tutorial). Needs
# node (>= 18) and npm with access to the npm registry; tfjs is installed into a temporary
# folder removed on exit: nothing of npm's lands in the repository.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
mode="${1:-}"
exe="${2:-$here/../../build/release/examples/keras_tutorial}"
lr=1e-3 steps=50 epochs=10
[[ "$mode" == steps || "$mode" == train || "$mode" == embedding ]] || { echo "usage: $0 steps|train|embedding [KERAS_TUTORIAL]" >&2; exit 2; }
[[ -x "$exe" ]] || { echo "$0: $exe is not built" >&2; exit 2; }

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm install --prefix "$tmp" @tensorflow/tfjs@4.22.0 \
   --no-audit --no-fund --ignore-scripts --no-save --loglevel=error)
export NODE_PATH="$tmp/node_modules"

if [[ "$mode" == embedding ]]; then
  "$exe" --export "$tmp/export" --lr $lr --steps 3 --epochs 1 --models 3
  node "$here/compare.js" embedding "$tmp/export" 3
elif [[ "$mode" == steps ]]; then
  "$exe" --export "$tmp/export" --lr $lr --steps $steps --epochs 2
  node "$here/compare.js" steps "$tmp/export" "$here/tfjs_steps.json"
else
  # xgrad first, then TF.js, one after the other so neither slows the other down.
  "$exe" --lr $lr --epochs $epochs --patience $epochs --out "$tmp/xgrad" --json "$here/xgrad_train.json"
  "$exe" --export "$tmp/export" --lr $lr --steps $steps --epochs $epochs
  node "$here/compare.js" train "$tmp/export" "$here/tfjs_train.json" $epochs
  node "$here/compare.js" table "$here/tfjs_train.json" "$here/xgrad_train.json"
fi
