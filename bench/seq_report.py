#!/usr/bin/python3
"""The table of bench/seq.sh: xgrad beside PyTorch for the attention, Transformer-encoder and
Conv1d workloads, over one or more runs (each a directory with xgrad.json and pytorch.json).

Each cell is the median over the runs of that run's value; the speedup and the step-memory
ratio also show their range over the runs (min-max). Speedup = PyTorch ms / xgrad ms; memory
ratio = PyTorch MB / xgrad MB (above 1: xgrad is faster / needs less). Targets: training
speedup >= 1.3, step memory <= PyTorch's.

Usage: bench/seq_report.py RUN_DIR [RUN_DIR ...] [--markdown]
"""
import argparse
import json
import os
import statistics

TRAIN_TARGET = 1.3


def load(run, side):
    with open(os.path.join(run, f"{side}.json")) as f:
        return {r["id"]: r for r in json.load(f)["results"]}


def agree(a, b, tol):
    # The encoder's loss (mean of a LayerNorm output) is 0 up to rounding: an absolute floor.
    return abs(a - b) <= tol * max(abs(a), abs(b), 1e-3)


def fmt_range(values):
    return f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})" if len(values) > 1 \
        else f"{values[0]:.2f}"


def table(headers, rows, markdown):
    if markdown:
        print("| " + " | ".join(headers) + " |")
        print("|" + "---|" * len(headers))
        for r in rows:
            print("| " + " | ".join(r) + " |")
        return
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)] if rows else []
    for r in [headers] + rows:
        print("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--markdown", action="store_true")
    opt = parser.parse_args()
    runs = [(load(r, "xgrad"), load(r, "pytorch")) for r in opt.runs]
    order = ["train_enc_S", "train_enc_M", "infer_mha_S", "infer_mha_M", "train_conv", "mem_enc_S", "mem_enc_M", "mem_conv"]
    ids = sorted((i for i in runs[0][0] if all(i in x and i in p for x, p in runs)),
                 key=lambda i: order.index(i) if i in order else len(order))
    med = statistics.median
    timed, mem, missed = [], [], []
    for wid in ids:
        xs, ps = [x[wid] for x, _ in runs], [p[wid] for _, p in runs]
        if wid.startswith("mem_"):
            ratio = [p["growth_mb"] / x["growth_mb"] for x, p in zip(xs, ps)]
            ok = all(agree(x["first_loss"], p["first_loss"], 1e-4) for x, p in zip(xs, ps))
            mem.append([wid, f"{med(x['growth_mb'] for x in xs):.1f}", f"{med(p['growth_mb'] for p in ps):.1f}",
                        fmt_range(ratio), f"{med(x['peak_mb'] for x in xs):.1f}", f"{med(p['peak_mb'] for p in ps):.1f}",
                        "ok" if ok else "MISMATCH"])
            if min(ratio) < 1:
                missed.append(f"{wid}: step memory above PyTorch's in {sum(r < 1 for r in ratio)} of {len(ratio)} runs")
            continue
        speed = [p["median_ms"] / x["median_ms"] for x, p in zip(xs, ps)]
        if wid.startswith("train_"):
            ok = all(agree(x["first_loss"], p["first_loss"], 1e-4) and agree(x["first_grad_norm"], p["first_grad_norm"], 1e-3)
                     for x, p in zip(xs, ps))
            check_value = f"{xs[0]['first_loss']:.6g}"
            if min(speed) < TRAIN_TARGET:
                missed.append(f"{wid}: speedup below {TRAIN_TARGET} in {sum(s < TRAIN_TARGET for s in speed)} of {len(speed)} runs")
        else:
            ok = all(agree(x["output_mean_abs"], p["output_mean_abs"], 1e-4) for x, p in zip(xs, ps))
            check_value = f"{xs[0]['output_mean_abs']:.6g}"
        timed.append([wid, f"{med(x['median_ms'] for x in xs):.2f}", f"{med(p['median_ms'] for p in ps):.2f}",
                      fmt_range(speed), f"{med(x['cpu_ms'] for x in xs):.2f}", f"{med(p['cpu_ms'] for p in ps):.2f}",
                      f"{med(x['floor_ms'] for x in xs):.2f}", f"{med(x['floor_1thread_ms'] for x in xs):.2f}",
                      f"{med(x['step_per_floor'] for x in xs):.2f}",
                      f"{med(p['median_ms'] / x['floor_ms'] for x, p in zip(xs, ps)):.2f}", str(int(xs[0]["gemm_calls"])),
                      check_value, "ok" if ok else "MISMATCH"])
    n = len(runs)
    print(f"step / pass: median ms over {n} run(s); speedup = PyTorch / xgrad, median (min-max over runs); "
          "floor: xgrad's recorded GEMMs replayed through cblas_sgemm; "
          "1-thread part: those of them xgrad runs on one OpenBLAS thread, timed alone")
    table(["workload", "xgrad", "PyTorch", "speedup", "xgrad CPU", "PyTorch CPU", "floor", "1-thread part", "xgrad/floor",
           "PyTorch/floor", "GEMMs", "loss / mean abs", "check"], timed, opt.markdown)
    if mem:
        print()
        print("peak memory of one training step: MB above the set-up process; ratio = PyTorch / xgrad (above 1: xgrad needs less)")
        table(["workload", "xgrad", "PyTorch", "ratio", "xgrad peak RSS", "PyTorch peak RSS", "check"], mem, opt.markdown)
    print()
    print("targets (training speedup >= 1.3, step memory <= PyTorch's): " +
          ("all met" if not missed else "missed: " + "; ".join(missed)))


if __name__ == "__main__":
    main()
