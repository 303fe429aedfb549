#!/usr/bin/env bash
# Weak scaling of data-parallel training on this machine, xgrad beside PyTorch: LSTM M (batch
# 64 per rank, seq 100, input 128, hidden 256) by default, one BLAS thread per rank, each rank
# its own fixed batch, at np = 1 and np = 2. xgrad runs under mpirun (distributed::DataParallel,
# allreduces overlapping backward, and once more started only after backward); PyTorch runs
# DistributedDataParallel with gloo (bench/dist_scaling.py). Prints the JSON lines and:
#   efficiency = step time at np 1 / step time at np 2   (1.0 is perfect weak scaling)
#   hidden     = 1 - wait with overlap / wait without    (share of allreduce time hidden)
#   speedup    = PyTorch's step time / xgrad's, at each np
# and the time of one blocking allreduce of all gradients (the communication itself).
#
# Usage: bench/dist_scaling.sh [arguments for both sides, e.g. --layers 2 --input 256 --hidden 512 --bucket-kb 4096]
# Environment: BUILD_DIR (default build/release), PYTHON (default /usr/bin/python3, Debian's torch)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build/release}
PYTHON=${PYTHON:-/usr/bin/python3}
if [[ ! -f "$BUILD_DIR/CMakeCache.txt" ]]; then
  cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release
fi
cmake --build "$BUILD_DIR" --target bench_dist_scaling >/dev/null
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
xgrad() { mpirun -np "$1" --bind-to core "$BUILD_DIR/bench/bench_dist_scaling" --overlap "$2" "${@:3}"; }
torch() { "$PYTHON" bench/dist_scaling.py --ranks "$1" "${@:2}"; }
echo "load before: $(uptime)"
x1=$(xgrad 1 1 "$@"); echo "$x1"
t1=$(torch 1 "$@"); echo "$t1"
x2=$(xgrad 2 1 "$@"); echo "$x2"
t2=$(torch 2 "$@"); echo "$t2"
xb=$(xgrad 2 0 "$@"); echo "$xb"
echo "load after: $(uptime)"
python3 - "$x1" "$x2" "$xb" "$t1" "$t2" <<'PY'
import json, sys
x1, x2, xb, t1, t2 = (json.loads(a) for a in sys.argv[1:])
print(f"xgrad:   np 1 {x1['step_ms']:.1f} ms/step, np 2 {x2['step_ms']:.1f} ms/step: efficiency {x1['step_ms'] / x2['step_ms']:.3f}")
print(f"PyTorch: np 1 {t1['step_ms']:.1f} ms/step, np 2 {t2['step_ms']:.1f} ms/step: efficiency {t1['step_ms'] / t2['step_ms']:.3f}")
print(f"speedup (PyTorch / xgrad): np 1 {t1['step_ms'] / x1['step_ms']:.2f}x, np 2 {t2['step_ms'] / x2['step_ms']:.2f}x")
hidden = 1 - x2['wait_ms'] / xb['wait_ms'] if xb['wait_ms'] > 0 else float('nan')
print(f"xgrad's allreduce of all {x2['parameters']} gradients alone: {x2['allreduce_ms']:.2f} ms; wait after backward "
      f"(with the ranks' skew): {x2['wait_ms']:.2f} ms overlapped ({x2['early_buckets']} of {x2['buckets']} buckets "
      f"started during backward), {xb['wait_ms']:.2f} ms not; hidden share {hidden:.2f}")
PY
