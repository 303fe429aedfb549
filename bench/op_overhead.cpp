// Per-op overhead: what xgrad costs to record, differentiate and free one tiny op.
//
// For 1-element and 4×4 tensors, a chain of `--ops` elementwise ops cycling through
//     y = y * a;   y = y + b;   y = tanh(y);
// is built from a constant x, where a and b are leaves that require grad (so every op is
// recorded), reduced with sum() and differentiated. At these sizes the arithmetic is nothing:
// what is timed is the framework (allocation, dispatch, graph bookkeeping). bench/op_overhead.py
// runs the same chain, on the same values, in PyTorch; bench/run.sh compares the two.
//
// Usage: bench_op_overhead [--reps N] [--warmup N] [--ops N] [--json FILE]
#include <xgrad/core/autograd.hpp>
#include <xgrad/core/creation.hpp>
#include <xgrad/core/ops.hpp>
#include <xgrad/core/tensor.hpp>

#include "bench_args.hpp"
#include "bench_common.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <exception>
#include <stdexcept>
#include <string>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#endif

namespace {

using bench::Clock;
using bench::median;
using bench::process_cpu_seconds;
using xgrad::Shape;
using xgrad::Tensor;

struct Options {
  long reps = 20;
  long warmup = 3;
  long ops = 10000;
  std::string json;  // empty: no JSON file
};

struct Case {
  std::string id;  // as in the JSON and in op_overhead.py
  Shape shape;
};

// The leaves of one chain. The values are chosen so that, over 10 000 ops, neither the forward
// values nor the backward gradients leave the normal float range: denormals would time the
// CPU's slow path instead of the framework. op_overhead.py uses the same formulas.
struct Inputs {
  Tensor x, a, b;
};

Inputs make_inputs(const Shape& shape) {
  const std::int64_t n = xgrad::shape_numel(shape);
  std::vector<float> x(n), a(n), b(n);
  for (std::int64_t i = 0; i < n; ++i) {
    x[i] = static_cast<float>(0.1 + 0.05 * i);
    a[i] = static_cast<float>(0.999 - 0.0001 * i);
    b[i] = static_cast<float>(1e-4 + 2e-5 * i);
  }
  Inputs in{xgrad::from_vector(x, shape), xgrad::from_vector(a, shape), xgrad::from_vector(b, shape)};
  in.a.requires_grad_();
  in.b.requires_grad_();
  return in;
}

// y = x, then `ops` ops cycling through y * a, y + b, tanh(y); returns the last y.
Tensor build_chain(const Inputs& in, long ops) {
  Tensor y = in.x;
  for (long k = 0; k < ops; ++k) {
    switch (k % 3) {
      case 0: y = y * in.a; break;
      case 1: y = y + in.b; break;
      default: y = xgrad::tanh(y); break;
    }
  }
  return y;
}

struct Sample {
  double forward = 0, backward = 0, total = 0;  // wall-clock seconds
  double total_cpu = 0;                          // CPU seconds of the process, for total
};

// One repetition: build the chain and sum it (forward), backward, then drop every handle so
// that the graph is freed (teardown, included in total).
Sample time_once(Inputs& in, long ops) {
  in.a.zero_grad();
  in.b.zero_grad();
  Sample s;
  const double c0 = process_cpu_seconds();
  const auto t0 = Clock::now();
  {
    Tensor loss = build_chain(in, ops).sum();
    const auto t1 = Clock::now();
    loss.backward();
    const auto t2 = Clock::now();
    s.forward = std::chrono::duration<double>(t1 - t0).count();
    s.backward = std::chrono::duration<double>(t2 - t1).count();
  }
  s.total = std::chrono::duration<double>(Clock::now() - t0).count();
  s.total_cpu = process_cpu_seconds() - c0;
  return s;
}

struct Result {
  Case c;
  double forward_us = 0, backward_us = 0, total_us = 0, total_min_us = 0, total_cpu_us = 0;  // per op
  double loss = 0, grad_a_sum = 0, grad_b_sum = 0;  // to check both frameworks ran the same chain
};

Result run_case(const Case& c, const Options& opt) {
  Inputs in = make_inputs(c.shape);
  for (long r = 0; r < opt.warmup; ++r) time_once(in, opt.ops);
  std::vector<double> fwd, bwd, tot, cpu;
  for (long r = 0; r < opt.reps; ++r) {
    const Sample s = time_once(in, opt.ops);
    fwd.push_back(s.forward);
    bwd.push_back(s.backward);
    tot.push_back(s.total);
    cpu.push_back(s.total_cpu);
  }
  const double us_per_op = 1e6 / static_cast<double>(opt.ops);
  Result res{c};
  res.forward_us = median(fwd) * us_per_op;
  res.backward_us = median(bwd) * us_per_op;
  res.total_us = median(tot) * us_per_op;
  res.total_min_us = *std::min_element(tot.begin(), tot.end()) * us_per_op;
  res.total_cpu_us = median(cpu) * us_per_op;

  // One more, untimed chain for the check values.
  in.a.zero_grad();
  in.b.zero_grad();
  Tensor loss = build_chain(in, opt.ops).sum();
  loss.backward();
  res.loss = loss.item();
  res.grad_a_sum = in.a.grad().sum().item();
  res.grad_b_sum = in.b.grad().sum().item();
  return res;
}

// Treat denormals as zero, as torch.set_flush_denormal(True) does in op_overhead.py, so that a
// long --ops chain whose gradient decays below the float range still times the framework.
void flush_denormals() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_setcsr(_mm_getcsr() | 0x8040);  // FTZ (bit 15) | DAZ (bit 6)
#endif
}

Options parse_args(int argc, char** argv) {
  Options opt;
  bench::ArgParser("usage: {0} [--reps N] [--warmup N] [--ops N] [--json FILE]\n")
      .count("--reps", opt.reps, 1)
      .count("--warmup", opt.warmup, 0)
      .count("--ops", opt.ops, 1)
      .text("--json", opt.json, "a file name")
      .parse(argc, argv);
  return opt;
}

std::string shape_json(const Shape& s) {
  std::string out = "[";
  for (std::size_t i = 0; i < s.size(); ++i) out += fmt::format("{}{}", i ? ", " : "", s[i]);
  return out + "]";
}

void write_json(const std::string& path, const Options& opt, const std::vector<Result>& results) {
  std::FILE* f = std::fopen(path.c_str(), "w");
  if (f == nullptr) throw std::runtime_error(fmt::format("cannot write '{}'", path));
  fmt::print(f, "{{\n  \"benchmark\": \"op_overhead\",\n  \"framework\": \"xgrad\",\n");
  fmt::print(f, "  \"version\": \"{}\",\n  \"arch\": \"{}\",\n  \"chain\": \"y*a, y+b, tanh(y)\",\n", XGRAD_BENCH_VERSION,
             XGRAD_BENCH_ARCH);
  fmt::print(f, "  \"ops\": {},\n  \"reps\": {},\n  \"warmup\": {},\n  \"cases\": [\n", opt.ops, opt.reps,
             opt.warmup);
  for (std::size_t i = 0; i < results.size(); ++i) {
    const Result& r = results[i];
    fmt::print(f, "    {{\"case\": \"{}\", \"shape\": {}, ", r.c.id, shape_json(r.c.shape));
    fmt::print(f, "\"forward_us_per_op\": {:.4f}, \"backward_us_per_op\": {:.4f}, ", r.forward_us, r.backward_us);
    fmt::print(f, "\"total_us_per_op\": {:.4f}, \"total_us_per_op_min\": {:.4f}, ", r.total_us, r.total_min_us);
    fmt::print(f, "\"total_cpu_us_per_op\": {:.4f}, ", r.total_cpu_us);
    fmt::print(f, "\"loss\": {:.9g}, \"grad_a_sum\": {:.9g}, \"grad_b_sum\": {:.9g}}}{}\n", r.loss, r.grad_a_sum,
               r.grad_b_sum, i + 1 < results.size() ? "," : "");
  }
  fmt::print(f, "  ]\n}}\n");
  if (std::fclose(f) != 0) throw std::runtime_error(fmt::format("cannot write '{}'", path));
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const Options opt = parse_args(argc, argv);
    flush_denormals();
    const std::vector<Case> cases = {{"1", {1}}, {"4x4", {4, 4}}};
    std::vector<Result> results;
    for (const Case& c : cases) results.push_back(run_case(c, opt));

    fmt::print("xgrad op overhead ({}): chain of {} ops (y*a, y+b, tanh), median of {} reps after {} warm-ups\n",
               XGRAD_BENCH_ARCH, opt.ops, opt.reps, opt.warmup);
    fmt::print("{:<6} {:>14} {:>15} {:>12} {:>12}\n", "case", "forward µs/op", "backward µs/op", "total µs/op",
               "CPU µs/op");
    for (const Result& r : results)
      fmt::print("{:<6} {:>14.3f} {:>15.3f} {:>12.3f} {:>12.3f}\n", r.c.id, r.forward_us, r.backward_us, r.total_us,
                 r.total_cpu_us);
    if (!opt.json.empty()) write_json(opt.json, opt, results);
    return 0;
  } catch (const std::exception& e) {
    fmt::print(stderr, "bench_op_overhead: {}\n", e.what());
    return 1;
  }
}
