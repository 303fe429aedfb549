#!/usr/bin/python3
"""Per-op overhead of PyTorch: the chain of bench/op_overhead.cpp, on the same values.

For 1-element and 4x4 tensors, a chain of --ops elementwise ops cycling through
    y = y * a;   y = y + b;   y = tanh(y)
is built from a constant x, where a and b are leaves that require grad, reduced with sum()
and differentiated; the graph is then dropped. Times are medians, in microseconds per op.

PyTorch keeps its default thread settings. Run it with OMP_WAIT_POLICY=PASSIVE (bench/run.sh
does): on 2 cores a spinning OpenMP pool makes PyTorch's times swing 3-5x.

Usage: /usr/bin/python3 bench/op_overhead.py [--reps N] [--warmup N] [--ops N] [--json FILE]
"""
import argparse
import gc
import json
import math
import statistics
import time

import torch

from bench_common import positive

CASES = [("1", (1,)), ("4x4", (4, 4))]


def make_inputs(shape):
    """The leaves x, a, b of one chain, with the formulas of op_overhead.cpp."""
    n = math.prod(shape)
    x = torch.tensor([0.1 + 0.05 * i for i in range(n)], dtype=torch.float32).reshape(shape)
    a = torch.tensor([0.999 - 0.0001 * i for i in range(n)], dtype=torch.float32).reshape(shape)
    b = torch.tensor([1e-4 + 2e-5 * i for i in range(n)], dtype=torch.float32).reshape(shape)
    return x, a.requires_grad_(), b.requires_grad_()


def build_chain(x, a, b, ops):
    """y = x, then `ops` ops cycling through y * a, y + b, tanh(y); returns the last y.

    Unrolled by three so that the Python loop adds as little as it can to PyTorch's time.
    """
    y = x
    for _ in range(ops // 3):
        y = y * a
        y = y + b
        y = torch.tanh(y)
    if ops % 3 >= 1:
        y = y * a
    if ops % 3 == 2:
        y = y + b
    return y


def time_once(x, a, b, ops):
    """Seconds for forward (chain + sum), backward, total including dropping the graph, and
    the process's CPU time for total (not inflated by other processes holding the cores)."""
    a.grad = None
    b.grad = None
    c0 = time.process_time()
    t0 = time.perf_counter()
    loss = build_chain(x, a, b, ops).sum()
    t1 = time.perf_counter()
    loss.backward()
    t2 = time.perf_counter()
    del loss  # frees the graph
    t3 = time.perf_counter()
    return t1 - t0, t2 - t1, t3 - t0, time.process_time() - c0


def run_case(case_id, shape, opt):
    x, a, b = make_inputs(shape)
    fwd, bwd, tot, cpu = [], [], [], []
    for r in range(opt.warmup + opt.reps):
        # As timeit: no cyclic garbage collection inside the timed region.
        gc.collect()
        gc.disable()
        try:
            f, bw, t, c = time_once(x, a, b, opt.ops)
        finally:
            gc.enable()
        if r >= opt.warmup:
            fwd.append(f)
            bwd.append(bw)
            tot.append(t)
            cpu.append(c)
    us_per_op = 1e6 / opt.ops

    # One more, untimed chain for the check values.
    a.grad = None
    b.grad = None
    loss = build_chain(x, a, b, opt.ops).sum()
    loss.backward()
    return {
        "case": case_id,
        "shape": list(shape),
        "forward_us_per_op": round(statistics.median(fwd) * us_per_op, 4),
        "backward_us_per_op": round(statistics.median(bwd) * us_per_op, 4),
        "total_us_per_op": round(statistics.median(tot) * us_per_op, 4),
        "total_us_per_op_min": round(min(tot) * us_per_op, 4),
        "total_cpu_us_per_op": round(statistics.median(cpu) * us_per_op, 4),
        "loss": loss.item(),
        "grad_a_sum": a.grad.sum().item(),
        "grad_b_sum": b.grad.sum().item(),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=positive(1), default=20)
    parser.add_argument("--warmup", type=positive(0), default=3)
    parser.add_argument("--ops", type=positive(1), default=10000)
    parser.add_argument("--json", metavar="FILE")
    opt = parser.parse_args()

    # Denormals as zero, as op_overhead.cpp does: a long chain must time the framework, not
    # the CPU's slow path for tiny gradients.
    torch.set_flush_denormal(True)
    results = [run_case(case_id, shape, opt) for case_id, shape in CASES]

    print(f"PyTorch {torch.__version__} op overhead: chain of {opt.ops} ops (y*a, y+b, tanh), "
          f"median of {opt.reps} reps after {opt.warmup} warm-ups, {torch.get_num_threads()} threads")
    print(f"{'case':<6} {'forward µs/op':>14} {'backward µs/op':>15} {'total µs/op':>12} {'CPU µs/op':>12}")
    for r in results:
        print(f"{r['case']:<6} {r['forward_us_per_op']:>14.3f} {r['backward_us_per_op']:>15.3f} "
              f"{r['total_us_per_op']:>12.3f} {r['total_cpu_us_per_op']:>12.3f}")

    if opt.json:
        doc = {
            "benchmark": "op_overhead",
            "framework": "pytorch",
            "version": torch.__version__,
            "threads": torch.get_num_threads(),
            "chain": "y*a, y+b, tanh(y)",
            "ops": opt.ops,
            "reps": opt.reps,
            "warmup": opt.warmup,
            "cases": results,
        }
        with open(opt.json, "w") as f:
            json.dump(doc, f, indent=2)
            f.write("\n")


if __name__ == "__main__":
    main()
