// Recurrent layers against PyTorch: training steps, inference, their GEMMs, peak memory.
//
// Workloads (ids as `--list` prints them, the same in bench/rnn_bench.py):
//   train_<cell>_<size>   one SGD training step: zero_grad, forward, MSE against a fixed
//                         target, backward, step                                (ms / step)
//   infer_<cell>_<size>   the forward pass under NoGradGuard                    (ms / pass)
//                         Both also time their GEMM floor (gemm_floor.hpp), alternating
//                         with the step, and check its GEMM list against the calls
//                         xgrad's first step makes.
//   matmul_<cell>_<size>  the layer's GEMMs, Y (m, n) = X (m, k) · W (n, k)ᵀ, forward and
//                         forward + backward, as the layers call matmul, next to raw
//                         cblas_sgemm on the same buffers                        (µs / call)
//   mem_<cell>_<size>     peak resident memory of one training step, measured in a fresh
//                         child process (`--peak-mem CELL SIZE`)                 (MB)
// with cell rnn, lstm, gru and size S (batch 32, seq 50, input 32, hidden 64, 1 layer),
// M (64, 100, 128, 256, 1) or L (64, 100, 256, 512, 2 layers).
//
// Both programs load the initial weights, the input and the target of a workload from one
// safetensors file, `<inputs>/<cell>_<size>.safetensors` (written by whichever side runs
// first), so they compute the same thing; each reports the loss and the gradient norm of its
// first step, which bench/report.py compares.
//
// Usage: bench_rnn [--filter TEXT] [--list] [--quick] [--reps N] [--warmup N]
//                  [--inputs DIR] [--json FILE] [--gemms]
//        bench_rnn --peak-mem CELL SIZE [--inputs DIR]      (one line of JSON on stdout)
#include <xgrad/xgrad.hpp>

#include "bench_args.hpp"
#include "bench_common.hpp"
#include "gemm_floor.hpp"
#include "rnn_workloads.hpp"

#include <cblas.h>
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <exception>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace {

using namespace xgrad;
using bench::Clock;
using bench::Data;
using bench::gates;
using bench::grad_norm;
using bench::kSizes;
using bench::load_inputs;
using bench::make_model;
using bench::Size;
using bench::size_named;
using bench::time_alternating;
using bench::time_calls;
using bench::Timing;

// --- the workloads ------------------------------------------------------------------------------

const std::vector<std::string> kCells = {"rnn", "lstm", "gru"};
const std::vector<std::string> kKinds = {"train", "infer", "matmul", "mem"};

constexpr double kLearningRate = 0.01;

struct Options : bench::WorkloadOptions {  // --peak-mem takes a cell and a size
  bool gemms = false;  // print the GEMM list of every train / infer workload
};

// Repetitions per size (S steps take milliseconds, L steps about a second).
long default_reps(const Options& o, const Size& s) {
  if (o.reps > 0) return o.reps;
  if (o.quick) return s.name == "S" ? 10 : s.name == "M" ? 3 : 2;
  return s.name == "S" ? 30 : s.name == "M" ? 10 : 5;
}
long default_warmup(const Options& o, const Size& s) {
  if (o.warmup >= 0) return o.warmup;
  if (o.quick) return 1;
  return s.name == "S" ? 5 : 2;
}

// --- timing ---------------------------------------------------------------------------------------

// Calls per timed repetition so that one repetition lasts about 5 ms (tiny GEMMs).
template <class F>
long calibrate(F&& f) {
  f();
  const auto t0 = Clock::now();
  f();
  const double t = std::chrono::duration<double>(Clock::now() - t0).count();
  return std::clamp(static_cast<long>(std::ceil(0.005 / std::max(t, 1e-9))), 1L, 20000L);
}

// --- models and their shared inputs ------------------------------------------------------------------

Tensor run_forward(nn::Recurrent& model, const Tensor& x) { return model.Recurrent::forward(x).output; }

// One training step; returns the loss.
Tensor train_step(nn::Recurrent& model, optim::SGD& opt, const Data& d) {
  opt.zero_grad();
  Tensor loss = nn::mse_loss(run_forward(model, d.input), d.target);
  loss.backward();
  opt.step();
  return loss;
}

// --- results ----------------------------------------------------------------------------------------

// One row of the JSON: the workload, and name/value pairs (numbers or strings).
struct Row {
  std::string id, kind, cell, size, gemm;
  std::vector<std::pair<std::string, double>> values;
};

void print_row(const Row& r) {
  std::string text = fmt::format("{:<16} {:<14}", r.id, r.gemm);
  for (const auto& [k, v] : r.values) text += fmt::format(" {}={:.6g}", k, v);
  fmt::print("{}\n", text);
  std::fflush(stdout);
}

// --- the GEMM floor ---------------------------------------------------------------------------------

bench::RecurrentShape recurrent_shape(const std::string& cell, const Size& s) {
  return {s.batch, s.seq, s.input, s.hidden, s.layers, gates(cell)};
}

// The cblas_sgemm calls (shapes and threads) the process makes while running f.
template <class F>
std::vector<bench::GemmShape> record_gemms(F&& f) {
  const bench::GemmRecorder recorder;
  f();
  return recorder.calls();
}

// The floor's columns of a train / infer row: its time, the step's time over it, the GFLOP/s
// of the floor's FLOPs in the step's time, and whether the derived GEMM list matches the calls
// xgrad made (`recorded`); a mismatch is reported on stderr, never only in the JSON.
std::vector<std::pair<std::string, double>> floor_values(const Options& o, const std::string& id,
                                                         const bench::GemmFloor& floor,
                                                         const std::vector<bench::GemmShape>& recorded,
                                                         const Timing& step, const Timing& f) {
  const std::vector<std::string> differences = bench::compare_gemms(floor.shapes(), recorded);
  if (!differences.empty()) {
    fmt::print(stderr, "bench_rnn: {}: the GEMM floor's list differs from the GEMMs xgrad called:\n", id);
    for (const std::string& d : differences) fmt::print(stderr, "  {}\n", d);
  }
  if (o.gemms) {
    fmt::print("{}: {} GEMMs, {:.3f} GFLOP; xgrad's untimed first run made {}\n", id, floor.shapes().size(),
               floor.flops() * 1e-9, differences.empty() ? "the same calls" : "DIFFERENT (see stderr)");
    for (const std::string& line : floor.listing()) fmt::print("  {}\n", line);
  }
  double recorded_flops = 0;
  for (const bench::GemmShape& g : recorded) recorded_flops += g.flops();
  return {{"floor_ms", 1e3 * f.median_s},
          {"floor_cpu_ms", 1e3 * f.cpu_s},
          {"floor_gflop", floor.flops() * 1e-9},
          {"step_per_floor", step.median_s / f.median_s},
          {"gflops", floor.flops() / step.median_s * 1e-9},
          {"gemm_calls", static_cast<double>(floor.shapes().size())},
          {"gemm_calls_recorded", static_cast<double>(recorded.size())},
          {"gemm_gflop_recorded", recorded_flops * 1e-9},
          {"gemm_list_ok", differences.empty() ? 1.0 : 0.0}};
}

// --- the workloads -------------------------------------------------------------------------------------

Row run_train(const Options& o, const std::string& cell, const Size& s) {
  auto model = make_model(cell, s);
  const Data d = load_inputs(o.inputs, cell, s, *model);
  optim::SGD opt(model->parameters(), optim::SGDOptions(kLearningRate));
  // The first step is a check, not timed: its loss and gradients come from the shared weights,
  // and its GEMMs are recorded to check the floor's list.
  opt.zero_grad();
  Tensor first;
  const std::vector<bench::GemmShape> recorded = record_gemms([&] {
    first = nn::mse_loss(run_forward(*model, d.input), d.target);
    first.backward();
  });
  const double first_loss = first.item(), first_grad_norm = grad_norm(*model);
  opt.step();
  bench::GemmFloor floor(recurrent_shape(cell, s), true);
  Tensor last;
  const long reps = default_reps(o, s), warmup = default_warmup(o, s);
  const auto [t, f] = time_alternating(warmup, reps, [&] { last = train_step(*model, opt, d); }, [&] { floor.run(); });
  Row row{fmt::format("train_{}_{}", cell, s.name), "train", cell, s.name, "",
          {{"median_ms", 1e3 * t.median_s}, {"min_ms", 1e3 * t.min_s}, {"cpu_ms", 1e3 * t.cpu_s},
           {"reps", static_cast<double>(reps)}, {"warmup", static_cast<double>(warmup)},
           {"first_loss", first_loss}, {"first_grad_norm", first_grad_norm}, {"last_loss", last.item()}}};
  for (auto& v : floor_values(o, row.id, floor, recorded, t, f)) row.values.push_back(std::move(v));
  return row;
}

Row run_infer(const Options& o, const std::string& cell, const Size& s) {
  auto model = make_model(cell, s);
  const Data d = load_inputs(o.inputs, cell, s, *model);
  model->eval();
  NoGradGuard no_grad;
  Tensor out;
  const std::vector<bench::GemmShape> recorded = record_gemms([&] { out = run_forward(*model, d.input); });
  const double checksum = out.abs().mean().item();
  bench::GemmFloor floor(recurrent_shape(cell, s), false);
  const long reps = default_reps(o, s), warmup = default_warmup(o, s);
  const auto [t, f] = time_alternating(warmup, reps, [&] { run_forward(*model, d.input); }, [&] { floor.run(); });
  Row row{fmt::format("infer_{}_{}", cell, s.name), "infer", cell, s.name, "",
          {{"median_ms", 1e3 * t.median_s}, {"min_ms", 1e3 * t.min_s}, {"cpu_ms", 1e3 * t.cpu_s},
           {"reps", static_cast<double>(reps)}, {"warmup", static_cast<double>(warmup)},
           {"output_mean_abs", checksum}}};
  for (auto& v : floor_values(o, row.id, floor, recorded, t, f)) row.values.push_back(std::move(v));
  return row;
}

// Y (m, n) = X (m, k) · W (n, k)ᵀ: the input projection of a layer (m = T·B) or its
// recurrent product (m = B), W being weight_ih or weight_hh.
struct Gemm {
  std::string name;
  std::int64_t m, n, k;
};

std::vector<Gemm> layer_gemms(const std::string& cell, const Size& s) {
  const std::int64_t G = gates(cell) * s.hidden;
  std::vector<Gemm> g = {{"proj_l0", s.seq * s.batch, G, s.input}};
  if (s.layers > 1) g.push_back({"proj_l1", s.seq * s.batch, G, s.hidden});
  g.push_back({"recurrent", s.batch, G, s.hidden});
  return g;
}

std::vector<Row> run_matmul(const Options& o, const std::string& cell, const Size& s) {
  std::vector<Row> rows;
  const long reps = o.reps > 0 ? o.reps : o.quick ? 3 : 7;
  for (const Gemm& g : layer_gemms(cell, s)) {
    manual_seed(7);
    Tensor x = randn({g.m, g.k}), w = randn({g.n, g.k}) * 0.1, dy = randn({g.m, g.n});
    Tensor y = zeros({g.m, g.n}), dx = zeros({g.m, g.k}), dw = zeros({g.n, g.k});
    const float *X = x.data<float>(), *W = w.data<float>(), *DY = dy.data<float>();
    float *Y = y.mutable_data<float>(), *DX = dx.mutable_data<float>(), *DW = dw.mutable_data<float>();
    const int m = static_cast<int>(g.m), n = static_cast<int>(g.n), k = static_cast<int>(g.k);

    // Forward: what the layers run (matmul with a transposed weight) against one raw GEMM.
    auto raw_fwd = [&] {
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, 1.0f, X, k, W, k, 0.0f, Y, n);
    };
    auto xgrad_fwd = [&] {
      NoGradGuard no_grad;
      matmul(x, w.t());
    };
    // Forward + backward: Y = X·Wᵀ, dX = dY·W, dW = dYᵀ·X.
    auto raw_fwd_bwd = [&] {
      raw_fwd();
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, k, n, 1.0f, DY, n, W, k, 0.0f, DX, k);
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n, k, m, 1.0f, DY, n, X, k, 0.0f, DW, k);
    };
    Tensor xg = x.detach().requires_grad_(), wg = w.detach().requires_grad_();
    auto xgrad_fwd_bwd = [&] {
      xg.zero_grad();
      wg.zero_grad();
      matmul(xg, wg.t()).backward(dy);
    };
    struct Pass {
      const char* name;
      double flops;
      std::function<void()> raw, xgrad;
    };
    const double mnk = 2.0 * g.m * g.n * g.k;
    for (const Pass& p : {Pass{"fwd", mnk, raw_fwd, xgrad_fwd}, Pass{"fwd_bwd", 3 * mnk, raw_fwd_bwd, xgrad_fwd_bwd}}) {
      const Timing raw = time_calls(1, reps, calibrate(p.raw), p.raw);
      const Timing xgr = time_calls(1, reps, calibrate(p.xgrad), p.xgrad);
      rows.push_back({fmt::format("matmul_{}_{}", cell, s.name), "matmul", cell, s.name,
                      fmt::format("{}_{}", g.name, p.name),
                      {{"m", static_cast<double>(g.m)}, {"n", static_cast<double>(g.n)},
                       {"k", static_cast<double>(g.k)}, {"median_us", 1e6 * xgr.median_s},
                       {"cpu_us", 1e6 * xgr.cpu_s}, {"raw_sgemm_us", 1e6 * raw.median_s},
                       {"gflops", p.flops / xgr.median_s * 1e-9}, {"raw_gflops", p.flops / raw.median_s * 1e-9}}});
    }
  }
  return rows;
}

// --- peak memory -------------------------------------------------------------------------------------

// The child: set everything up, then measure one training step (bench::print_step_peak).
int peak_mem_child(const Options& o) {
  const std::string& cell = o.peak_mem.at(0);
  const Size& s = size_named(o.peak_mem.at(1));
  // One step of a tiny model of the same kind first: one-time costs (BLAS buffers and
  // threads, lazy initialisation) belong to the baseline, not to the step.
  {
    const Size tiny{"tiny", 2, 3, 4, 4, s.layers};
    auto m = make_model(cell, tiny);
    optim::SGD opt(m->parameters(), optim::SGDOptions(kLearningRate));
    train_step(*m, opt, {randn({3, 2, 4}), randn({3, 2, 4})});
  }
  auto model = make_model(cell, s);
  const Data d = load_inputs(o.inputs, cell, s, *model);
  optim::SGD opt(model->parameters(), optim::SGDOptions(kLearningRate));
  return bench::print_step_peak([&] { return train_step(*model, opt, d).item(); });
}

// Runs `bench_rnn --peak-mem` in a fresh process and reads its JSON line.
Row run_mem(const Options& o, const std::string& cell, const Size& s) {
  return {fmt::format("mem_{}_{}", cell, s.name), "mem", cell, s.name, "",
          bench::peak_mem_values(fmt::format("--peak-mem {} {} --inputs '{}'", cell, s.name, o.inputs))};
}

// --- command line and output ----------------------------------------------------------------------------

Options parse_args(int argc, char** argv) {
  Options o;
  bench::workload_args(o, "                 [--gemms]   (also print each train / infer workload's GEMM list)\n",
                       "CELL SIZE", "a cell and a size")
      .flag("--gemms", o.gemms)
      .parse(argc, argv);
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    bench::process_blas_threads();  // OpenBLAS's threads, before the floor or xgrad changes them
    const Options o = parse_args(argc, argv);
    if (!o.peak_mem.empty()) return peak_mem_child(o);
    if (!o.list) fmt::print("xgrad {}, kernels compiled for {}\n", XGRAD_BENCH_VERSION, XGRAD_BENCH_ARCH);
    std::vector<Row> rows;
    for (const std::string& kind : kKinds) {
      for (const Size& s : kSizes) {
        for (const std::string& cell : kCells) {
          const std::string id = fmt::format("{}_{}_{}", kind, cell, s.name);
          if (id.find(o.filter) == std::string::npos) continue;
          if (o.list) {
            fmt::print("{}\n", id);
            continue;
          }
          std::vector<Row> got;
          if (kind == "train") got = {run_train(o, cell, s)};
          else if (kind == "infer") got = {run_infer(o, cell, s)};
          else if (kind == "matmul") got = run_matmul(o, cell, s);
          else got = {run_mem(o, cell, s)};
          for (const Row& r : got) print_row(r);
          rows.insert(rows.end(), got.begin(), got.end());
        }
      }
    }
    if (!o.json.empty())
      bench::write_results_json(o.json, "rnn", o.quick, rows, [](const Row& r) {
        std::string fields = fmt::format("\"id\": \"{}\", \"kind\": \"{}\", \"cell\": \"{}\", \"size\": \"{}\"", r.id,
                                         r.kind, r.cell, r.size);
        if (!r.gemm.empty()) fields += fmt::format(", \"gemm\": \"{}\"", r.gemm);
        return fields;
      });
    return 0;
  } catch (const std::exception& e) {
    fmt::print(stderr, "bench_rnn: {}\n", e.what());
    return 1;
  }
}
