#!/usr/bin/python3
"""Attention, Transformer encoder and Conv1d in PyTorch: the workloads of bench/seq_bench.cpp.

Workloads (ids as --list prints them, the same in seq_bench.cpp):
  train_enc_<size>   one SGD step of nn.TransformerEncoderLayer (batch_first, relu, dropout 0):
                     zero_grad, forward, loss = mean of the output, backward, step   (ms / step)
  infer_mha_<size>   nn.MultiheadAttention self-attention under torch.no_grad(), eval,
                     need_weights=False                                              (ms / pass)
  train_conv         one SGD step of Conv1d(64, 128, 5, padding="same") on (32, 64, 256)
  mem_enc_<size>, mem_conv   peak resident memory of one training step, in a fresh child
                     process (--peak-mem MODEL)                                      (MB)
with size S (d_model 128, 4 heads, T 128, B 32) or M (256, 8 heads, T 256, B 32), ff 4*d_model.

The weights and the input come from <inputs>/<model>.safetensors (written by whichever side
runs first). torch.set_num_threads(2); run with OMP_WAIT_POLICY=PASSIVE (bench/seq.sh does).

Usage: /usr/bin/python3 bench/seq_bench.py [--filter TEXT] [--list] [--quick] [--reps N]
                                           [--warmup N] [--inputs DIR] [--json FILE]
       /usr/bin/python3 bench/seq_bench.py --peak-mem MODEL [--inputs DIR]
"""
import argparse
import gc
import json
import os
import subprocess
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures"))
from bench_common import positive  # noqa: E402
from rnn_bench import grad_norm, status_kb, time_calls  # noqa: E402
from safetensors_io import read_safetensors, write_safetensors  # noqa: E402

SIZES = {"S": (128, 4, 128, 32), "M": (256, 8, 256, 32)}  # d_model, heads, seq, batch
CONV = (32, 64, 256, 128, 5)  # batch, in channels, length, out channels, kernel
IDS = ["train_enc_S", "train_enc_M", "infer_mha_S", "infer_mha_M", "train_conv", "mem_enc_S", "mem_enc_M", "mem_conv"]
LEARNING_RATE = 0.01


def make_model(name):
    """(module, forward, input shape) of a model: enc_S, enc_M, mha_S, mha_M or conv."""
    torch.manual_seed(1234)
    if name == "conv":
        b, cin, length, cout, k = CONV
        m = torch.nn.Conv1d(cin, cout, k, padding="same")
        return m, m, (b, cin, length)
    kind, size = name.split("_")
    d, h, t, b = SIZES[size]
    if kind == "enc":
        m = torch.nn.TransformerEncoderLayer(d, h, dim_feedforward=4 * d, dropout=0.0, batch_first=True)
        return m, m, (b, t, d)
    m = torch.nn.MultiheadAttention(d, h, batch_first=True)
    return m, (lambda x: m(x, x, x, need_weights=False)[0]), (b, t, d)


def load_inputs(opt, name, module, shape):
    path = os.path.join(opt.inputs, f"{name}.safetensors")
    if not os.path.exists(path):
        os.makedirs(opt.inputs, exist_ok=True)
        tensors = [(k, v.numpy()) for k, v in module.state_dict().items()]
        tensors.append(("input", torch.randn(*shape).numpy()))
        tmp = path + ".tmp"
        write_safetensors(tmp, tensors, {"written_by": "bench/seq_bench.py"})
        os.replace(tmp, path)
    arrays = read_safetensors(path)
    module.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in arrays.items() if k != "input"})
    return torch.from_numpy(np.array(arrays["input"]))


def train_step(forward, sgd, x):
    sgd.zero_grad(set_to_none=True)
    loss = forward(x).mean()
    loss.backward()
    sgd.step()
    return loss


def reps_for(opt, name):
    return opt.reps or (3 if opt.quick else 10 if name.endswith("M") else 20)


def warmup_for(opt):
    return opt.warmup if opt.warmup is not None else (1 if opt.quick else 2)


def run_train(opt, name):
    module, forward, shape = make_model(name)
    x = load_inputs(opt, name, module, shape)
    sgd = torch.optim.SGD(module.parameters(), lr=LEARNING_RATE)
    sgd.zero_grad(set_to_none=True)
    first = forward(x).mean()
    first.backward()
    first_loss, first_grad_norm = first.item(), grad_norm(module)
    sgd.step()
    last = []
    reps = reps_for(opt, name)
    med, low, cpu = time_calls(warmup_for(opt), reps, 1, lambda: last.append(train_step(forward, sgd, x).detach()))
    return {"id": f"train_{name}", "kind": "train", "median_ms": med * 1e3, "min_ms": low * 1e3, "cpu_ms": cpu * 1e3,
            "reps": reps, "first_loss": first_loss, "first_grad_norm": first_grad_norm, "last_loss": last[-1].item()}


def run_infer(opt, name):
    module, forward, shape = make_model(name)
    x = load_inputs(opt, name, module, shape)
    module.eval()
    with torch.no_grad():
        checksum = forward(x).abs().mean().item()
        reps = reps_for(opt, name)
        med, low, cpu = time_calls(warmup_for(opt), reps, 1, lambda: forward(x))
    return {"id": f"infer_{name}", "kind": "infer", "median_ms": med * 1e3, "min_ms": low * 1e3, "cpu_ms": cpu * 1e3,
            "reps": reps, "output_mean_abs": checksum}


def peak_mem_child(opt):
    """One step of a tiny model first (one-time costs go to the baseline), then the set-up's
    resident set is the baseline, clear_refs 5 resets VmHWM to it, one step, VmHWM."""
    if opt.peak_mem == "conv":
        tiny = torch.nn.Conv1d(2, 3, 5, padding="same")
        xt = torch.randn(2, 2, 8)
    else:
        tiny = torch.nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, dropout=0.0, batch_first=True)
        xt = torch.randn(2, 3, 8)
    train_step(tiny, torch.optim.SGD(tiny.parameters(), lr=LEARNING_RATE), xt)
    del tiny
    module, forward, shape = make_model(opt.peak_mem)
    x = load_inputs(opt, opt.peak_mem, module, shape)
    sgd = torch.optim.SGD(module.parameters(), lr=LEARNING_RATE)
    gc.collect()
    gc.disable()
    baseline = status_kb("VmRSS")
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    loss = train_step(forward, sgd, x).item()
    peak = status_kb("VmHWM")
    print(json.dumps({"baseline_kb": baseline, "peak_kb": peak, "growth_kb": peak - baseline, "loss": loss}))


def run_mem(opt, name):
    out = subprocess.run([sys.executable, os.path.abspath(__file__), "--peak-mem", name, "--inputs", opt.inputs],
                         check=True, capture_output=True, text=True).stdout
    r = json.loads(out.strip().splitlines()[-1])
    return {"id": f"mem_{name}", "kind": "mem", "baseline_mb": r["baseline_kb"] / 1024,
            "peak_mb": r["peak_kb"] / 1024, "growth_mb": r["growth_kb"] / 1024, "first_loss": r["loss"]}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--filter", default="", help="run the workloads whose id contains this text")
    parser.add_argument("--list", action="store_true")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--reps", type=positive(1))
    parser.add_argument("--warmup", type=positive(0))
    parser.add_argument("--inputs", default="bench-inputs")
    parser.add_argument("--json", metavar="FILE")
    parser.add_argument("--peak-mem", metavar="MODEL")
    opt = parser.parse_args()
    torch.set_num_threads(2)
    if opt.peak_mem:
        peak_mem_child(opt)
        return
    runners = {"train": run_train, "infer": run_infer, "mem": run_mem}
    rows = []
    for wid in IDS:
        if opt.filter not in wid:
            continue
        if opt.list:
            print(wid)
            continue
        kind, name = wid.split("_", 1)
        r = runners[kind](opt, name)
        values = " ".join(f"{k}={v:.6g}" for k, v in r.items() if isinstance(v, (int, float)))
        print(f"{r['id']:<14} {values}", flush=True)
        rows.append(r)
    if opt.json:
        with open(opt.json, "w") as f:
            json.dump({"benchmark": "seq", "framework": "pytorch", "version": torch.__version__,
                       "threads": torch.get_num_threads(), "quick": opt.quick, "results": rows}, f, indent=2)
            f.write("\n")


if __name__ == "__main__":
    main()
