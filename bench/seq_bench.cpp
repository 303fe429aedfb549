// Attention, Transformer encoder and Conv1d against PyTorch (bench/seq_bench.py, same ids):
//
//   train_enc_<size>   one SGD step of a TransformerEncoderLayer (batch_first, relu, dropout 0):
//                      zero_grad, forward, loss = mean of the output, backward, step   (ms / step)
//   infer_mha_<size>   MultiheadAttention self-attention forward under NoGradGuard,
//                      need_weights off                                                (ms / pass)
//   train_conv         one SGD step of Conv1d(64 → 128, kernel 5, padding "same") on (32, 64, 256),
//                      loss = mean of the output                                       (ms / step)
//   mem_enc_<size>, mem_conv   peak resident memory of one training step, in a fresh child
//                      process (`--peak-mem WORKLOAD`)                                 (MB)
// with size S (d_model 128, 4 heads, T 128, B 32) or M (d_model 256, 8 heads, T 256, B 32),
// dim_feedforward 4·d_model.
//
// train / infer rows also time their GEMM floor, alternating with the step: the cblas_sgemm
// calls xgrad made in the untimed first step (recorded by gemm_floor.cpp's interposer), replayed
// with the same shapes, flags and thread counts on dense buffers. Unlike bench_rnn's floor the
// list is recorded, not derived, so it is only as right as xgrad's own choice of GEMMs.
//
// Both programs read the weights and the input from `<inputs>/<workload>.safetensors` (written
// by whichever side runs first) and report the first step's loss and gradient norm
// (inference: mean |output|).
//
// Usage: bench_seq [--filter TEXT] [--list] [--quick] [--reps N] [--warmup N] [--inputs DIR] [--json FILE]
//        bench_seq --peak-mem WORKLOAD [--inputs DIR]      (one line of JSON on stdout)
#include <xgrad/xgrad.hpp>

#include "bench_args.hpp"
#include "bench_common.hpp"
#include "gemm_floor.hpp"

#include <cblas.h>
#include <fmt/format.h>

#include <cmath>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

namespace {

using namespace xgrad;
using bench::grad_norm;
using bench::measure;
using bench::median;
using bench::time_alternating;
using bench::Timing;

constexpr double kLearningRate = 0.01;

using Options = bench::WorkloadOptions;  // --peak-mem takes the model ("enc_S", "conv", ...)

// --- the models -------------------------------------------------------------------------------------

struct SeqSize {
  std::string name;
  std::int64_t d_model, heads, seq, batch;
};
const std::vector<SeqSize> kSizes = {{"S", 128, 4, 128, 32}, {"M", 256, 8, 256, 32}};
// The Conv1d workload: (batch, in channels, length) → out channels, kernel.
constexpr std::int64_t kConvB = 32, kConvIn = 64, kConvL = 256, kConvOut = 128, kConvK = 5;

// A model of one workload ("enc_S", "mha_M", "conv") with its forward on the input.
struct Model {
  std::shared_ptr<nn::Module> module;
  std::function<Tensor(const Tensor&)> forward;
  Shape input_shape;
};

Model make_model(const std::string& name) {
  manual_seed(1234);
  if (name == "conv") {
    auto m = std::make_shared<nn::Conv1d>(nn::Conv1dOptions(kConvIn, kConvOut, kConvK).padding("same"));
    return {m, [m](const Tensor& x) { return (*m)(x); }, {kConvB, kConvIn, kConvL}};
  }
  const std::string kind = name.substr(0, 3), size = name.substr(4);
  for (const SeqSize& s : kSizes) {
    if (s.name != size) continue;
    if (kind == "enc") {
      auto m = std::make_shared<nn::TransformerEncoderLayer>(nn::TransformerEncoderLayerOptions(s.d_model, s.heads)
                                                                 .dim_feedforward(4 * s.d_model)
                                                                 .dropout(0.0)
                                                                 .batch_first(true));
      return {m, [m](const Tensor& x) { return (*m)(x); }, {s.batch, s.seq, s.d_model}};
    }
    if (kind == "mha") {
      auto m = std::make_shared<nn::MultiheadAttention>(nn::MultiheadAttentionOptions(s.d_model, s.heads).batch_first(true));
      return {m, [m](const Tensor& x) { return m->forward(x, x, x, nn::AttentionArgs().need_weights(false)).output; },
              {s.batch, s.seq, s.d_model}};
    }
  }
  throw std::runtime_error(fmt::format("unknown model '{}' (enc_S, enc_M, mha_S, mha_M, conv)", name));
}

// Loads the weights into the model and returns the input, from `<dir>/<name>.safetensors`,
// writing the file first (this model's default initialisation) when it does not exist.
Tensor load_inputs(const std::string& dir, const std::string& name, Model& m) {
  const std::string path = fmt::format("{}/{}.safetensors", dir, name);
  if (!std::filesystem::exists(path)) {
    std::filesystem::create_directories(dir);
    NamedTensors all = m.module->state_dict();
    all.emplace_back("input", randn(m.input_shape));
    save_safetensors(path, all, {{"written_by", "xgrad bench_seq"}});
  }
  SafetensorsFile file = load_safetensors(path);
  NamedTensors weights;
  for (const auto& [key, t] : file.tensors)
    if (key != "input") weights.emplace_back(key, t);
  m.module->load_state_dict(weights);
  return file.at("input");
}

Tensor train_step(Model& m, optim::SGD& opt, const Tensor& x) {
  opt.zero_grad();
  Tensor loss = m.forward(x).mean();
  loss.backward();
  opt.step();
  return loss;
}

// --- the recorded GEMM floor ----------------------------------------------------------------------------

// The recorded calls replayed through cblas_sgemm on dense buffers (one set per distinct shape).
class ReplayFloor {
 public:
  explicit ReplayFloor(std::vector<bench::GemmShape> calls) : calls_(std::move(calls)) {
    for (const bench::GemmShape& g : calls_) {
      auto& b = buffers_[{g.m, g.n, g.k}];
      if (!b.empty()) continue;
      for (std::int64_t size : {g.m * g.k, g.k * g.n, g.m * g.n}) {
        std::vector<float> v(static_cast<std::size_t>(size));
        for (std::size_t i = 0; i < v.size(); ++i)
          v[i] = 1e-4f * static_cast<float>(static_cast<int>(i * 2654435761u % 201) - 100);
        b.push_back(std::move(v));
      }
    }
  }
  // Every call, or with `threads` > 0 only those run on that many threads.
  void run(int threads = 0) {
    for (const bench::GemmShape& g : calls_) {
      if (threads > 0 && g.threads != threads) continue;
      auto& b = buffers_.at({g.m, g.n, g.k});
      openblas_set_num_threads(g.threads);
      const int m = static_cast<int>(g.m), n = static_cast<int>(g.n), k = static_cast<int>(g.k);
      cblas_sgemm(CblasRowMajor, g.ta ? CblasTrans : CblasNoTrans, g.tb ? CblasTrans : CblasNoTrans, m, n, k, 1.0f,
                  b[0].data(), g.ta ? m : k, b[1].data(), g.tb ? k : n, 0.0f, b[2].data(), n);
    }
    openblas_set_num_threads(bench::process_blas_threads());
  }
  double flops(int threads = 0) const {
    double f = 0;
    for (const bench::GemmShape& g : calls_)
      if (threads == 0 || g.threads == threads) f += g.flops();
    return f;
  }
  std::size_t size() const { return calls_.size(); }

 private:
  std::vector<bench::GemmShape> calls_;
  std::map<std::tuple<std::int64_t, std::int64_t, std::int64_t>, std::vector<std::vector<float>>> buffers_;
};

// --- the workloads --------------------------------------------------------------------------------------

struct Row {
  std::string id, kind;
  std::vector<std::pair<std::string, double>> values;
};

long reps_for(const Options& o, bool big) { return o.reps > 0 ? o.reps : o.quick ? 3 : big ? 10 : 20; }
long warmup_for(const Options& o) { return o.warmup >= 0 ? o.warmup : o.quick ? 1 : 2; }

// The floor's GEMMs that xgrad runs on one OpenBLAS thread (below m·n·k = 4 Mi: attention's
// per-head products), timed alone: the part of the floor that leaves the second core idle.
double single_thread_floor_s(ReplayFloor& floor, long reps) {
  std::vector<double> t;
  for (long r = 0; r < reps; ++r) t.push_back(measure(1, [&] { floor.run(1); }).wall);
  return median(t);
}

void add_floor(Row& r, ReplayFloor& floor, const Timing& step, const Timing& f, long reps) {
  r.values.push_back({"floor_1thread_ms", 1e3 * single_thread_floor_s(floor, reps)});
  r.values.push_back({"floor_1thread_gflop", floor.flops(1) * 1e-9});
  r.values.insert(r.values.end(), {{"floor_ms", 1e3 * f.median_s},
                                   {"floor_cpu_ms", 1e3 * f.cpu_s},
                                   {"floor_gflop", floor.flops() * 1e-9},
                                   {"gemm_calls", static_cast<double>(floor.size())},
                                   {"step_per_floor", step.median_s / f.median_s},
                                   {"gflops", floor.flops() / step.median_s * 1e-9}});
}

Row run_train(const Options& o, const std::string& name) {
  Model m = make_model(name);
  const Tensor x = load_inputs(o.inputs, name, m);
  optim::SGD opt(m.module->parameters(), optim::SGDOptions(kLearningRate));
  opt.zero_grad();
  std::vector<bench::GemmShape> recorded;
  Tensor first;
  {
    const bench::GemmRecorder recorder;
    first = m.forward(x).mean();
    first.backward();
    recorded = recorder.calls();
  }
  const double first_loss = first.item(), first_grad_norm = grad_norm(*m.module);
  opt.step();
  ReplayFloor floor(recorded);
  Tensor last;
  const long reps = reps_for(o, name.back() == 'M'), warmup = warmup_for(o);
  const auto [t, f] = time_alternating(warmup, reps, [&] { last = train_step(m, opt, x); }, [&] { floor.run(); });
  Row r{"train_" + name, "train",
        {{"median_ms", 1e3 * t.median_s}, {"min_ms", 1e3 * t.min_s}, {"cpu_ms", 1e3 * t.cpu_s},
         {"reps", static_cast<double>(reps)}, {"first_loss", first_loss}, {"first_grad_norm", first_grad_norm},
         {"last_loss", last.item()}}};
  add_floor(r, floor, t, f, reps);
  return r;
}

Row run_infer(const Options& o, const std::string& name) {
  Model m = make_model(name);
  const Tensor x = load_inputs(o.inputs, name, m);
  m.module->eval();
  NoGradGuard no_grad;
  std::vector<bench::GemmShape> recorded;
  Tensor out;
  {
    const bench::GemmRecorder recorder;
    out = m.forward(x);
    recorded = recorder.calls();
  }
  const double checksum = out.abs().mean().item();
  ReplayFloor floor(recorded);
  const long reps = reps_for(o, name.back() == 'M'), warmup = warmup_for(o);
  const auto [t, f] = time_alternating(warmup, reps, [&] { m.forward(x); }, [&] { floor.run(); });
  Row r{"infer_" + name, "infer",
        {{"median_ms", 1e3 * t.median_s}, {"min_ms", 1e3 * t.min_s}, {"cpu_ms", 1e3 * t.cpu_s},
         {"reps", static_cast<double>(reps)}, {"output_mean_abs", checksum}}};
  add_floor(r, floor, t, f, reps);
  return r;
}

// The child: the set-up's resident set is the baseline (bench::print_step_peak); one step.
int peak_mem_child(const Options& o) {
  const std::string& name = o.peak_mem.at(0);
  {  // one-time costs (BLAS buffers and threads) belong to the baseline: a step of a tiny model first
    Model tiny;
    if (name == "conv") {
      auto c = std::make_shared<nn::Conv1d>(nn::Conv1dOptions(2, 3, kConvK).padding("same"));
      tiny = {c, [c](const Tensor& t) { return (*c)(t); }, {2, 2, 8}};
    } else {
      auto e = std::make_shared<nn::TransformerEncoderLayer>(
          nn::TransformerEncoderLayerOptions(8, 2).dim_feedforward(16).dropout(0.0).batch_first(true));
      tiny = {e, [e](const Tensor& t) { return (*e)(t); }, {2, 3, 8}};
    }
    optim::SGD opt(tiny.module->parameters(), optim::SGDOptions(kLearningRate));
    train_step(tiny, opt, randn(tiny.input_shape));
  }
  Model m = make_model(name);
  const Tensor x = load_inputs(o.inputs, name, m);
  optim::SGD opt(m.module->parameters(), optim::SGDOptions(kLearningRate));
  return bench::print_step_peak([&] { return train_step(m, opt, x).item(); });
}

Row run_mem(const Options& o, const std::string& name) {
  return {"mem_" + name, "mem", bench::peak_mem_values(fmt::format("--peak-mem {} --inputs '{}'", name, o.inputs))};
}

// --- command line and output --------------------------------------------------------------------------------

const std::vector<std::string> kIds = {"train_enc_S", "train_enc_M", "infer_mha_S", "infer_mha_M", "train_conv",
                                       "mem_enc_S",   "mem_enc_M",   "mem_conv"};

Options parse_args(int argc, char** argv) {
  Options o;
  bench::workload_args(o, "", "MODEL", "a model (enc_S, enc_M, conv)").parse(argc, argv);
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    bench::process_blas_threads();
    const Options o = parse_args(argc, argv);
    if (!o.peak_mem.empty()) return peak_mem_child(o);
    std::vector<Row> rows;
    for (const std::string& id : kIds) {
      if (id.find(o.filter) == std::string::npos) continue;
      if (o.list) {
        fmt::print("{}\n", id);
        continue;
      }
      const std::string kind = id.substr(0, id.find('_')), name = id.substr(id.find('_') + 1);
      const Row r = kind == "train" ? run_train(o, name) : kind == "infer" ? run_infer(o, name) : run_mem(o, name);
      std::string text = fmt::format("{:<14}", r.id);
      for (const auto& [k, v] : r.values) text += fmt::format(" {}={:.6g}", k, v);
      fmt::print("{}\n", text);
      std::fflush(stdout);
      rows.push_back(r);
    }
    if (!o.json.empty())
      bench::write_results_json(o.json, "seq", o.quick, rows, [](const Row& r) {
        return fmt::format("\"id\": \"{}\", \"kind\": \"{}\"", r.id, r.kind);
      });
    return 0;
  } catch (const std::exception& e) {
    fmt::print(stderr, "bench_seq: {}\n", e.what());
    return 1;
  }
}
