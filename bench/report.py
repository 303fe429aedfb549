#!/usr/bin/python3
"""The table of one bench/run.sh run: xgrad and PyTorch side by side, with speedups.

Usage: bench/report.py RESULTS_DIR [--json FILE] [--markdown] [--command TEXT] [--load-before "a b c"]

Reads RESULTS_DIR/rnn/{xgrad,pytorch}/*.json (bench_rnn and rnn_bench.py) and, when present,
RESULTS_DIR/op_overhead.{xgrad,pytorch}.json. speedup = PyTorch time / xgrad time: above 1,
xgrad is faster (for memory: PyTorch MB / xgrad MB, above 1 xgrad needs less). It also checks
that both sides computed the same thing (first-step loss and gradient norm, inference output)
and whether the targets below (TRAIN_TARGET, ...) are met. The GEMM floor of a
train / infer workload (bench_rnn times it, see bench/README.md) is the same work for both
frameworks, so each side's step time is divided by it. Only the standard library is used.
"""
import argparse
import datetime
import glob
import json
import os

from bench_common import machine

# Relative tolerances of the checks: float32 sums over up to 6.5 million terms, summed in
# different orders by the two frameworks.
CHECKS = {"first_loss": 1e-4, "first_grad_norm": 1e-3, "output_mean_abs": 1e-4}
# The targets: minimum speedup of a training step per size and of inference; per-op overhead in
# µs; the largest xgrad step time ÷ GEMM floor per size (none at S); xgrad's CPU time per
# step at most PyTorch's.
TRAIN_TARGET = {"S": 3.0, "M": 1.5, "L": 1.3}
INFER_TARGET = 1.3
OP_OVERHEAD_TARGET_US = 0.6
FLOOR_TARGET = {"M": 1.25, "L": 1.25}


def load_side(results_dir, framework):
    """{(id, gemm): row} and the document's header of one framework."""
    rows, header = {}, {}
    for path in sorted(glob.glob(os.path.join(results_dir, "rnn", framework, "*.json"))):
        with open(path) as f:
            doc = json.load(f)
        header = {k: v for k, v in doc.items() if k != "results"}
        for r in doc["results"]:
            rows[(r["id"], r.get("gemm", ""))] = r
    return rows, header


def ratio(num, den):
    return num / den if num is not None and den else None


def e_val(row, key):
    return row.get(key) if row else None


def fmt_num(v, digits=2):
    return "-" if v is None else f"{v:.{digits}f}"


MARKDOWN = False  # --markdown: print the tables as Markdown (for bench/README.md)


def print_table(title, columns, rows):
    if MARKDOWN:
        print(f"\n{title}\n")
        print("| " + " | ".join(columns) + " |")
        print("|" + "|".join("---" for _ in columns) + "|")
        for r in rows:
            print("| " + " | ".join(r) + " |")
        return
    print(f"\n{title}")
    widths = [max(len(c), *(len(r[i]) for r in rows)) if rows else len(c) for i, c in enumerate(columns)]
    print("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(columns, widths))))
    for r in rows:
        print("  ".join(v.ljust(w) if i == 0 else v.rjust(w) for i, (v, w) in enumerate(zip(r, widths))))


def check(xr, pr):
    """Names of the check values that differ between the two sides (empty: they agree)."""
    bad = []
    for key, rtol in CHECKS.items():
        if key in xr and key in pr and abs(xr[key] - pr[key]) > rtol * max(abs(xr[key]), abs(pr[key])):
            bad.append(f"{key} {xr[key]:.7g} vs {pr[key]:.7g}")
    return bad


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results_dir")
    parser.add_argument("--json", metavar="FILE", help="also write the table as JSON")
    parser.add_argument("--command", default="", help="the command that produced the results (recorded)")
    parser.add_argument("--load-before", default="", help="load average when the run started (recorded)")
    parser.add_argument("--markdown", action="store_true", help="print the tables as Markdown")
    opt = parser.parse_args()
    global MARKDOWN
    MARKDOWN = opt.markdown

    xg, xg_header = load_side(opt.results_dir, "xgrad")
    pt, pt_header = load_side(opt.results_dir, "pytorch")
    table, mismatches, targets = [], [], []

    def add(section, xr, pr, key, unit, better_when_lower=True, extra=None):
        xv, pv = xr.get(key) if xr else None, pr.get(key) if pr else None
        entry = {"section": section, "id": (xr or pr)["id"], "gemm": (xr or pr).get("gemm", ""), "unit": unit,
                 "xgrad": xv, "pytorch": pv, "speedup": ratio(pv, xv) if better_when_lower else ratio(xv, pv)}
        entry.update(extra or {})
        table.append(entry)
        if xr and pr:
            bad = check(xr, pr)
            entry["check"] = "ok" if not bad else "MISMATCH"
            mismatches.extend(f"{entry['id']}: {b}" for b in bad)
        return entry

    # In run order: by size, then cell (then the GEMMs in the order they ran).
    sizes, cells = ["S", "M", "L"], ["rnn", "lstm", "gru"]
    floor_rows, floor_mismatches = [], []
    ids = sorted(dict.fromkeys(list(xg) + list(pt)),
                 key=lambda k: (sizes.index((xg.get(k) or pt.get(k))["size"]),
                                cells.index((xg.get(k) or pt.get(k))["cell"])))
    for kind, section, key, unit in (("train", "training step", "median_ms", "ms"),
                                     ("infer", "inference", "median_ms", "ms")):
        rows = []
        for k in ids:
            xr, pr = xg.get(k), pt.get(k)
            if (xr or pr)["kind"] != kind:
                continue
            floor = xr and xr.get("floor_ms")
            e = add(section, xr, pr, key, unit,
                    extra={"xgrad_cpu": xr and xr.get("cpu_ms"), "pytorch_cpu": pr and pr.get("cpu_ms"),
                           "floor_ms": floor, "floor_cpu_ms": xr and xr.get("floor_cpu_ms"),
                           "floor_gflop": xr and xr.get("floor_gflop"),
                           "gemm_calls": xr and xr.get("gemm_calls"),
                           "gemm_list_ok": None if floor is None else bool(xr.get("gemm_list_ok")),
                           "xgrad_per_floor": ratio(e_val(xr, key), floor),
                           "pytorch_per_floor": ratio(e_val(pr, key), floor)})
            # The floor's FLOPs (the same work on both sides) per second of each side's step.
            e["xgrad_gflops"] = ratio(e["floor_gflop"] and 1e3 * e["floor_gflop"], e["xgrad"])
            e["pytorch_gflops"] = ratio(e["floor_gflop"] and 1e3 * e["floor_gflop"], e["pytorch"])
            size = (xr or pr)["size"]
            want = TRAIN_TARGET[size] if kind == "train" else INFER_TARGET
            if e["speedup"] is not None:
                met = e["speedup"] >= want
                e["target"] = want
                e["target_met"] = met
                targets.append((f"{e['id']} speedup >= {want}", met, f"{e['speedup']:.2f}"))
            if e["xgrad_per_floor"] is not None and size in FLOOR_TARGET:
                met = e["xgrad_per_floor"] <= FLOOR_TARGET[size]
                e["floor_target_met"] = met
                targets.append((f"{e['id']} xgrad / GEMM floor <= {FLOOR_TARGET[size]}", met,
                                f"{e['xgrad_per_floor']:.2f}"))
            if e["xgrad_cpu"] is not None and e["pytorch_cpu"] is not None:
                met = e["xgrad_cpu"] <= e["pytorch_cpu"]
                e["cpu_target_met"] = met
                targets.append((f"{e['id']} xgrad CPU ms <= PyTorch CPU ms", met,
                                f"{e['xgrad_cpu']:.2f} vs {e['pytorch_cpu']:.2f}"))
            if e["gemm_list_ok"] is False:
                floor_mismatches.append(f"{e['id']}: the GEMM floor's list differs from the GEMMs xgrad called "
                                        f"(bench_rnn --gemms --filter {e['id']} prints the list and the difference)")
            floor_rows.append([e["id"], fmt_num(e["gemm_calls"], 0), fmt_num(e["floor_gflop"], 3),
                               fmt_num(floor), fmt_num(e["xgrad"]), fmt_num(e["xgrad_per_floor"]),
                               fmt_num(e["pytorch_per_floor"]), fmt_num(e["xgrad_gflops"], 1),
                               fmt_num(e["pytorch_gflops"], 1),
                               fmt_num(e["floor_cpu_ms"]),
                               "-" if e["gemm_list_ok"] is None else "ok" if e["gemm_list_ok"] else "DIFFERS"])
            rows.append([e["id"], fmt_num(e["xgrad"]), fmt_num(e["pytorch"]), fmt_num(e["speedup"]),
                         fmt_num(e["xgrad_cpu"]), fmt_num(e["pytorch_cpu"]),
                         fmt_num(xr and xr.get("first_loss", xr.get("output_mean_abs")), 6), e.get("check", "-")])
        if rows:
            print_table(f"{section}: median {unit}; speedup = PyTorch / xgrad (above 1: xgrad is faster)",
                        ["workload", "xgrad", "PyTorch", "speedup", "xgrad CPU", "PyTorch CPU",
                         "loss" if kind == "train" else "mean abs out", "check"], rows)

    if floor_rows:
        print_table("GEMM floor: the step's own GEMMs alone, back to back through cblas_sgemm (bench_rnn); "
                    "time / floor: above 1, what the framework adds; GFLOP/s: the floor's FLOPs in the step's "
                    "time; list: derived GEMM list = xgrad's recorded calls",
                    ["workload", "GEMMs", "GFLOP", "floor ms", "xgrad ms", "xgrad/floor", "PyTorch/floor",
                     "xgrad GFLOP/s", "PyTorch GFLOP/s", "floor CPU", "list"], floor_rows)

    rows = []
    for k in ids:
        xr, pr = xg.get(k), pt.get(k)
        if (xr or pr)["kind"] != "mem":
            continue
        e = add("peak memory", xr, pr, "growth_mb", "MB",
                extra={"xgrad_peak_mb": xr and xr["peak_mb"], "pytorch_peak_mb": pr and pr["peak_mb"]})
        if e["xgrad"] is not None and e["pytorch"] is not None:
            met = e["xgrad"] <= e["pytorch"]
            e["target_met"] = met
            targets.append((f"{e['id']} xgrad MB <= PyTorch MB", met, f"{e['xgrad']:.1f} vs {e['pytorch']:.1f}"))
        rows.append([e["id"], fmt_num(e["xgrad"], 1), fmt_num(e["pytorch"], 1), fmt_num(e["speedup"]),
                     fmt_num(e["xgrad_peak_mb"], 1), fmt_num(e["pytorch_peak_mb"], 1), e.get("check", "-")])
    if rows:
        print_table("peak memory of one training step: MB above the set-up process; ratio = PyTorch / xgrad "
                    "(above 1: xgrad needs less)",
                    ["workload", "xgrad", "PyTorch", "ratio", "xgrad peak RSS", "PyTorch peak RSS", "check"], rows)

    rows = []
    for k in ids:
        xr, pr = xg.get(k), pt.get(k)
        if (xr or pr)["kind"] != "matmul":
            continue
        e = add("matmul", xr, pr, "median_us", "us",
                extra={"raw_sgemm_us": xr and xr.get("raw_sgemm_us"), "m": (xr or pr)["m"], "n": (xr or pr)["n"],
                       "k": (xr or pr)["k"], "xgrad_gflops": xr and xr.get("gflops")})
        rows.append([f"{e['id']} {e['gemm']}", f"{e['m']}x{e['n']}x{e['k']}", fmt_num(e["raw_sgemm_us"], 1),
                     fmt_num(e["xgrad"], 1), fmt_num(e["pytorch"], 1), fmt_num(ratio(e["raw_sgemm_us"], e["xgrad"])),
                     fmt_num(e["speedup"]), fmt_num(e["xgrad_gflops"], 1)])
    if rows:
        print_table("GEMMs of the layers, Y (m, n) = X (m, k) · W (n, k)ᵀ (fwd_bwd adds dX and dW): median µs; "
                    "raw/xgrad = raw cblas_sgemm time / xgrad matmul time; speedup = PyTorch / xgrad",
                    ["workload", "m x n x k", "raw sgemm", "xgrad", "PyTorch", "raw/xgrad", "speedup",
                     "xgrad GFLOP/s"], rows)

    op_x = os.path.join(opt.results_dir, "op_overhead.xgrad.json")
    op_p = os.path.join(opt.results_dir, "op_overhead.pytorch.json")
    if os.path.exists(op_x):
        with open(op_x) as f:
            ox = {c["case"]: c for c in json.load(f)["cases"]}
        op = {}
        if os.path.exists(op_p):
            with open(op_p) as f:
                op = {c["case"]: c for c in json.load(f)["cases"]}
        rows = []
        for case, c in ox.items():
            p = op.get(case, {})
            for key, label in (("total_us_per_op", "total"), ("total_cpu_us_per_op", "total CPU")):
                e = {"section": "op overhead", "id": f"op_overhead_{case}", "gemm": label, "unit": "us/op",
                     "xgrad": c[key], "pytorch": p.get(key), "speedup": ratio(p.get(key), c[key])}
                table.append(e)
                if label == "total":
                    met = c[key] <= OP_OVERHEAD_TARGET_US
                    e["target_met"] = met
                    targets.append((f"op_overhead_{case} total <= {OP_OVERHEAD_TARGET_US} µs", met, f"{c[key]:.2f}"))
                rows.append([f"op_overhead_{case} {label}", fmt_num(c[key], 3), fmt_num(p.get(key), 3),
                             fmt_num(e["speedup"])])
        print_table("per-op overhead (10 000-op chain y*a, y+b, tanh; build + backward + free): µs per op; "
                    "speedup = PyTorch / xgrad", ["workload", "xgrad", "PyTorch", "speedup"], rows)

    if mismatches:
        print("\nWARNING: the two frameworks did not compute the same thing:")
        for m in mismatches:
            print("  " + m)
    elif xg and pt:
        print("\ncheck: first-step losses, gradient norms and inference outputs agree")
    if floor_mismatches:
        print("\nWARNING: a GEMM floor is not the step's GEMMs, its ratio means nothing:")
        for m in floor_mismatches:
            print("  " + m)
    elif floor_rows:
        print("check: every GEMM floor's list matches the GEMMs xgrad's step called")
    if targets:
        print("\ntargets:")
        for name, met, value in targets:
            print(f"  {'met    ' if met else 'NOT met'}  {name}: {value}")

    load_after = [round(x, 2) for x in os.getloadavg()]
    print(f"\nload average: {opt.load_before or '?'} at the start, {' '.join(map(str, load_after))} at the end")
    if opt.json:
        doc = {
            "benchmark": "rnn",
            "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
            "command": opt.command,
            "machine": machine(loadavg_start=opt.load_before, loadavg_end=load_after),
            "xgrad": xg_header,
            "pytorch": pt_header,
            "speedup": "pytorch / xgrad (time); pytorch / xgrad (memory)",
            "checks_agree": not mismatches,
            "mismatches": mismatches,
            "gemm_floor_lists_agree": not floor_mismatches,
            "gemm_floor_mismatches": floor_mismatches,
            "targets": [{"target": n, "met": m, "value": v} for n, m, v in targets],
            "table": table,
        }
        with open(opt.json, "w") as f:
            json.dump(doc, f, indent=2)
            f.write("\n")


if __name__ == "__main__":
    main()
