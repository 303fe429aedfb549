#!/usr/bin/env bash
# Time outside GEMM per step of one bench_rnn workload: the median and minimum, over REPS
# steps, of step wall time minus the time spent inside cblas_sgemm (bench/outside_gemm.cpp).
#
#   bench/outside_gemm.sh train_gru_M [REPS] [BENCH_RNN]
#
# BENCH_RNN defaults to build/release/bench/bench_rnn (build it and bench_outside_gemm first);
# give another binary to compare two builds, alternating runs of each. INPUTS: the shared
# weights and data (default build/bench-results/rnn-inputs, written by bench/run.sh).
set -euo pipefail
id=${1:?usage: bench/outside_gemm.sh WORKLOAD [REPS] [BENCH_RNN]}
reps=${2:-16}
bin=${3:-build/release/bench/bench_rnn}
lib=${OUTSIDE_GEMM_LIB:-build/release/bench/libbench_outside_gemm.so}
inputs=${INPUTS:-build/bench-results/rnn-inputs}
[[ -x "$bin" && -f "$lib" ]] || { echo "outside_gemm.sh: build bench_rnn and bench_outside_gemm first" >&2; exit 2; }
# One step's GEMM count, from a short run.
calls=$("$bin" --filter "$id" --inputs "$inputs" --reps 1 --warmup 0 | sed -n 's/.* gemm_calls=\([0-9]*\).*/\1/p')
[[ -n "$calls" ]] || { echo "outside_gemm.sh: no workload '$id' (bench_rnn --list)" >&2; exit 2; }
# Chunk 1 is set-up and the first step; after it xgrad's steps (even chunks) alternate with the
# floor's runs (odd ones). Three warm-up steps are skipped.
out=$(OUTSIDE_GEMM_CHUNK=$calls LD_PRELOAD=$(realpath "$lib") "$bin" --filter "$id" --inputs "$inputs" \
         --reps "$reps" --warmup 3 2>&1 >/dev/null |
       awk -v reps="$reps" '$1 == "outside_gemm" && $3 >= 4 && $3 % 2 == 0 && n < reps { n++; print $9, $7 }')
[[ -n "$out" ]] || { echo "outside_gemm.sh: the run printed no steps" >&2; exit 1; }
outside=$(cut -d' ' -f1 <<<"$out" | sort -g)
gemm=$(cut -d' ' -f2 <<<"$out" | sort -g)
n=$(wc -l <<<"$out")
m=$(( (n + 1) / 2 ))
printf '%-14s outside GEMM per step: median %s ms, min %s (GEMM median %s ms), %d steps\n' "$id" \
  "$(sed -n "${m}p" <<<"$outside")" "$(head -1 <<<"$outside")" "$(sed -n "${m}p" <<<"$gemm")" "$n"
