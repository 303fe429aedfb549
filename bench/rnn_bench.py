#!/usr/bin/python3
"""Recurrent layers in PyTorch: the workloads of bench/rnn_bench.cpp, on the same data.

Workloads (ids as --list prints them, the same in rnn_bench.cpp):
  train_<cell>_<size>   one SGD training step: zero_grad, forward, MSE against a fixed
                        target, backward, step                                   (ms / step)
  infer_<cell>_<size>   the forward pass under torch.no_grad()                   (ms / pass)
  matmul_<cell>_<size>  the layer's GEMMs, Y (m, n) = X (m, k) @ W (n, k).T, forward and
                        forward + backward                                       (us / call)
  mem_<cell>_<size>     peak resident memory of one training step, measured in a fresh
                        child process (--peak-mem CELL SIZE)                     (MB)

The weights, the input and the target come from <inputs>/<cell>_<size>.safetensors (written by
whichever side runs first), so both frameworks start from the same numbers.

torch.set_num_threads(2); run with OMP_WAIT_POLICY=PASSIVE (bench/run.sh does): on 2 cores a
spinning OpenMP pool makes PyTorch's times swing 3-5x.

Usage: /usr/bin/python3 bench/rnn_bench.py [--filter TEXT] [--list] [--quick] [--reps N]
                                           [--warmup N] [--inputs DIR] [--json FILE]
       /usr/bin/python3 bench/rnn_bench.py --peak-mem CELL SIZE [--inputs DIR]
"""
import argparse
import gc
import json
import math
import os
import statistics
import subprocess
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures"))
from bench_common import positive  # noqa: E402
from safetensors_io import read_safetensors, write_safetensors  # noqa: E402

SIZES = {  # batch, seq, input, hidden, layers
    "S": (32, 50, 32, 64, 1),
    "M": (64, 100, 128, 256, 1),
    "L": (64, 100, 256, 512, 2),
}
CELLS = ["rnn", "lstm", "gru"]
KINDS = ["train", "infer", "matmul", "mem"]
GATES = {"rnn": 1, "lstm": 4, "gru": 3}
LEARNING_RATE = 0.01
LAYER = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}


def default_reps(opt, size):
    if opt.reps:
        return opt.reps
    if opt.quick:
        return {"S": 10, "M": 3, "L": 2}[size]
    return {"S": 30, "M": 10, "L": 5}[size]


def default_warmup(opt, size):
    if opt.warmup is not None:
        return opt.warmup
    return 1 if opt.quick else (5 if size == "S" else 2)


def time_calls(warmup, reps, inner, f):
    """Median and minimum wall seconds per call and median process CPU seconds per call:
    `warmup` untimed calls, then `reps` timed ones of `inner` calls each. No cyclic garbage
    collection inside a timed repetition, as timeit."""
    for _ in range(warmup):
        f()
    wall, cpu = [], []
    for _ in range(reps):
        gc.collect()
        gc.disable()
        try:
            c0 = time.process_time()
            t0 = time.perf_counter()
            for _ in range(inner):
                f()
            wall.append((time.perf_counter() - t0) / inner)
            cpu.append((time.process_time() - c0) / inner)
        finally:
            gc.enable()
    return statistics.median(wall), min(wall), statistics.median(cpu)


def calibrate(f):
    """Calls per timed repetition so that one repetition lasts about 5 ms."""
    f()
    t0 = time.perf_counter()
    f()
    t = time.perf_counter() - t0
    return max(1, min(20000, math.ceil(0.005 / max(t, 1e-9))))


def make_model(cell, size):
    batch, seq, inp, hidden, layers = SIZES[size] if isinstance(size, str) else size
    torch.manual_seed(1234)  # so that the inputs file a run writes is the same every time
    return LAYER[cell](inp, hidden, num_layers=layers)


def load_inputs(opt, cell, size, model):
    """Loads the weights into `model` and returns (input, target) from the workload's file,
    writing it first (from this model's default initialisation) when it does not exist."""
    path = os.path.join(opt.inputs, f"{cell}_{size}.safetensors")
    if not os.path.exists(path):
        os.makedirs(opt.inputs, exist_ok=True)
        batch, seq, inp, hidden, _ = SIZES[size]
        tensors = [(k, v.numpy()) for k, v in model.state_dict().items()]
        tensors.append(("input", torch.randn(seq, batch, inp).numpy()))
        tensors.append(("target", (torch.randn(seq, batch, hidden) * 0.5).numpy()))
        tmp = path + ".tmp"
        write_safetensors(tmp, tensors, {"written_by": "bench/rnn_bench.py"})
        os.replace(tmp, path)
    arrays = read_safetensors(path)
    state = {k: torch.from_numpy(np.array(v)) for k, v in arrays.items() if k not in ("input", "target")}
    model.load_state_dict(state)
    return torch.from_numpy(np.array(arrays["input"])), torch.from_numpy(np.array(arrays["target"]))


def train_step(model, opt, x, target):
    opt.zero_grad(set_to_none=True)
    loss = torch.nn.functional.mse_loss(model(x)[0], target)
    loss.backward()
    opt.step()
    return loss


def grad_norm(model):
    return math.sqrt(sum(float((p.grad.double() ** 2).sum()) for p in model.parameters() if p.grad is not None))


def run_train(opt, cell, size):
    model = make_model(cell, size)
    x, target = load_inputs(opt, cell, size, model)
    sgd = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE)
    # The first step is a check, not timed: its loss and gradients come from the shared weights.
    sgd.zero_grad(set_to_none=True)
    first = torch.nn.functional.mse_loss(model(x)[0], target)
    first.backward()
    first_loss, first_grad_norm = first.item(), grad_norm(model)
    sgd.step()
    last = []
    reps, warmup = default_reps(opt, size), default_warmup(opt, size)
    med, low, cpu = time_calls(warmup, reps, 1, lambda: last.append(train_step(model, sgd, x, target).detach()))
    return [{"id": f"train_{cell}_{size}", "kind": "train", "cell": cell, "size": size,
             "median_ms": med * 1e3, "min_ms": low * 1e3, "cpu_ms": cpu * 1e3, "reps": reps, "warmup": warmup,
             "first_loss": first_loss, "first_grad_norm": first_grad_norm, "last_loss": last[-1].item()}]


def run_infer(opt, cell, size):
    model = make_model(cell, size)
    x, _ = load_inputs(opt, cell, size, model)
    model.eval()
    with torch.no_grad():
        checksum = model(x)[0].abs().mean().item()
        reps, warmup = default_reps(opt, size), default_warmup(opt, size)
        med, low, cpu = time_calls(warmup, reps, 1, lambda: model(x))
    return [{"id": f"infer_{cell}_{size}", "kind": "infer", "cell": cell, "size": size,
             "median_ms": med * 1e3, "min_ms": low * 1e3, "cpu_ms": cpu * 1e3, "reps": reps, "warmup": warmup,
             "output_mean_abs": checksum}]


def layer_gemms(cell, size):
    """(name, m, n, k) of Y (m, n) = X (m, k) @ W (n, k).T: input projections and recurrent."""
    batch, seq, inp, hidden, layers = SIZES[size]
    g = GATES[cell] * hidden
    gemms = [("proj_l0", seq * batch, g, inp)]
    if layers > 1:
        gemms.append(("proj_l1", seq * batch, g, hidden))
    gemms.append(("recurrent", batch, g, hidden))
    return gemms


def run_matmul(opt, cell, size):
    rows = []
    reps = opt.reps or (3 if opt.quick else 7)
    for name, m, n, k in layer_gemms(cell, size):
        torch.manual_seed(7)
        x, w, dy = torch.randn(m, k), torch.randn(n, k) * 0.1, torch.randn(m, n)
        xg, wg = x.clone().requires_grad_(), w.clone().requires_grad_()

        def fwd():
            with torch.no_grad():
                torch.matmul(x, w.t())

        def fwd_bwd():
            xg.grad = None
            wg.grad = None
            torch.matmul(xg, wg.t()).backward(dy)

        flops = 2.0 * m * n * k
        for pass_name, f, pass_flops in (("fwd", fwd, flops), ("fwd_bwd", fwd_bwd, 3 * flops)):
            med, _, cpu = time_calls(1, reps, calibrate(f), f)
            rows.append({"id": f"matmul_{cell}_{size}", "kind": "matmul", "cell": cell, "size": size,
                         "gemm": f"{name}_{pass_name}", "m": m, "n": n, "k": k, "median_us": med * 1e6,
                         "cpu_us": cpu * 1e6, "gflops": pass_flops / med * 1e-9})
    return rows


def status_kb(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def peak_mem_child(opt):
    """Sets everything up, then measures how far one training step raises the resident set
    above what the setup left (clear_refs 5 resets the high-water mark VmHWM to the current
    RSS, so peaks of the setup do not count)."""
    cell, size = opt.peak_mem
    layers = SIZES[size][4]
    # One step of a tiny model of the same kind first: one-time costs (BLAS buffers, thread
    # pools, lazy initialisation) belong to the baseline, not to the step.
    tiny = make_model(cell, (2, 3, 4, 4, layers))
    train_step(tiny, torch.optim.SGD(tiny.parameters(), lr=LEARNING_RATE), torch.randn(3, 2, 4), torch.randn(3, 2, 4))
    del tiny
    model = make_model(cell, size)
    x, target = load_inputs(opt, cell, size, model)
    sgd = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE)
    gc.collect()
    gc.disable()
    baseline = status_kb("VmRSS")
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    loss = train_step(model, sgd, x, target).item()
    peak = status_kb("VmHWM")
    print(json.dumps({"baseline_kb": baseline, "peak_kb": peak, "growth_kb": peak - baseline, "loss": loss}))


def run_mem(opt, cell, size):
    out = subprocess.run([sys.executable, os.path.abspath(__file__), "--peak-mem", cell, size, "--inputs", opt.inputs],
                         check=True, capture_output=True, text=True).stdout
    r = json.loads(out.strip().splitlines()[-1])
    return [{"id": f"mem_{cell}_{size}", "kind": "mem", "cell": cell, "size": size,
             "baseline_mb": r["baseline_kb"] / 1024, "peak_mb": r["peak_kb"] / 1024,
             "growth_mb": r["growth_kb"] / 1024, "first_loss": r["loss"]}]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--filter", default="", help="run the workloads whose id contains this text")
    parser.add_argument("--list", action="store_true", help="print the selected workload ids and exit")
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    parser.add_argument("--reps", type=positive(1))
    parser.add_argument("--warmup", type=positive(0))
    parser.add_argument("--inputs", default="bench-inputs", help="directory of the shared safetensors inputs")
    parser.add_argument("--json", metavar="FILE")
    parser.add_argument("--peak-mem", nargs=2, metavar=("CELL", "SIZE"))
    opt = parser.parse_args()

    torch.set_num_threads(2)
    if opt.peak_mem:
        peak_mem_child(opt)
        return
    runners = {"train": run_train, "infer": run_infer, "matmul": run_matmul, "mem": run_mem}
    rows = []
    for kind in KINDS:
        for size in SIZES:
            for cell in CELLS:
                wid = f"{kind}_{cell}_{size}"
                if opt.filter not in wid:
                    continue
                if opt.list:
                    print(wid)
                    continue
                for r in runners[kind](opt, cell, size):
                    values = " ".join(f"{k}={v:.6g}" for k, v in r.items()
                                      if isinstance(v, float) or (isinstance(v, int) and k not in ("reps", "warmup")))
                    print(f"{r['id']:<16} {r.get('gemm', ''):<14} {values}", flush=True)
                    rows.append(r)
    if opt.json:
        doc = {"benchmark": "rnn", "framework": "pytorch", "version": torch.__version__,
               "threads": torch.get_num_threads(), "quick": opt.quick, "results": rows}
        with open(opt.json, "w") as f:
            json.dump(doc, f, indent=2)
            f.write("\n")


if __name__ == "__main__":
    main()
