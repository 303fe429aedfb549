#!/usr/bin/python3
"""Puts an xgrad and a PyTorch result of one benchmark side by side, as ratios.

Usage: bench/compare.py XGRAD_JSON PYTORCH_JSON [--out COMBINED_JSON]

ratio = PyTorch µs/op / xgrad µs/op: above 1, xgrad is faster. Only the standard library is
used, so any python3 runs it.
"""
import argparse
import datetime
import json
import os
import sys

from bench_common import machine

PHASES = [("forward", "forward_us_per_op"), ("backward", "backward_us_per_op"),
          ("total", "total_us_per_op"), ("total CPU", "total_cpu_us_per_op")]
CHECKS = ["loss", "grad_a_sum", "grad_b_sum"]
CHECK_RTOL = 1e-3  # float32 sums over thousands of terms, in different orders


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("xgrad")
    parser.add_argument("pytorch")
    parser.add_argument("--out", help="also write both results and the ratios to this JSON file")
    opt = parser.parse_args()
    with open(opt.xgrad) as f:
        xg = json.load(f)
    with open(opt.pytorch) as f:
        pt = json.load(f)
    if (xg["benchmark"], xg["ops"]) != (pt["benchmark"], pt["ops"]):
        sys.exit("compare.py: the two results are not of the same benchmark and size")
    pt_cases = {c["case"]: c for c in pt["cases"]}

    print(f"{xg['benchmark']}: chain of {xg['ops']} ops, median µs per op over {xg['reps']} reps "
          f"(xgrad) / {pt['reps']} reps (PyTorch {pt['version']}, {pt.get('threads', '?')} threads)")
    print("ratio = PyTorch / xgrad: above 1, xgrad is faster")
    print(f"{'case':<6} {'phase':<10} {'xgrad':>9} {'PyTorch':>9} {'ratio':>7}")
    ratios, mismatches = [], []
    for xc in xg["cases"]:
        pc = pt_cases.get(xc["case"])
        if pc is None:
            continue
        for phase, key in PHASES:
            ratio = pc[key] / xc[key] if xc[key] > 0 else float("inf")
            ratios.append({"case": xc["case"], "phase": phase, "xgrad_us_per_op": xc[key],
                           "pytorch_us_per_op": pc[key], "ratio": round(ratio, 3)})
            print(f"{xc['case']:<6} {phase:<10} {xc[key]:>9.3f} {pc[key]:>9.3f} {ratio:>7.2f}")
        for k in CHECKS:
            if abs(xc[k] - pc[k]) > CHECK_RTOL * max(abs(xc[k]), abs(pc[k])):
                mismatches.append(f"case {xc['case']}: {k} is {xc[k]:.7g} in xgrad, {pc[k]:.7g} in PyTorch")
    if mismatches:
        print("WARNING: the two frameworks did not compute the same chain:")
        for m in mismatches:
            print("  " + m)
    else:
        print(f"check: loss and gradients agree (relative difference <= {CHECK_RTOL:g})")

    if opt.out:
        doc = {
            "benchmark": xg["benchmark"],
            "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
            "machine": machine(loadavg=[round(x, 2) for x in os.getloadavg()]),
            "ratios": ratios,
            "checks_agree": not mismatches,
            "xgrad": xg,
            "pytorch": pt,
        }
        with open(opt.out, "w") as f:
            json.dump(doc, f, indent=2)
            f.write("\n")


if __name__ == "__main__":
    main()
