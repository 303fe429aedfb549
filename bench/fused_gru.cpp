// What a hand-fused GRU would cost: the bound behind the GRU inference floor-ratio target.
//
// bench_rnn's infer_gru workloads compare xgrad's GRU forward with its GEMM floor: the same
// GEMMs back to back. The floor's steps depend on nothing: each step's h is a fixed buffer,
// never written, and each hh is written and left in the cache of the core that wrote it. A
// real GRU step cannot do that: h_t comes out of the elementwise work and feeds both BLAS
// threads of the next step's GEMM, and the GEMM's output, written half by the other core, is
// read back by the elementwise work. This program measures a third thing between the two:
// the same GEMMs with the elementwise work of each step fused by hand into one pass over the
// step's projection rows and recurrent product (xsimd, the exp and tanh xgrad's kernels use),
// writing h_t straight into the output. No composition of primitives can do less; what is
// left between it and the floor is what any GRU does besides its GEMMs: the projection's bias
// fill, the elementwise arithmetic itself, and moving each step's data between the cores.
//
// xgrad's layers stay composed from primitives (docs/design.md): this is a measurement,
// not a code path. It checks that the fused pass computes xgrad's output (max |difference|).
// Both keep their last output while making the next, as a user's inference loop does
// (`out = gru.forward(x).output`); the three are timed alternately, one pass each.
//
// Usage: bench_fused_gru [--size S|M] [--reps N] [--warmup N] [--inputs DIR]
//   (DIR holds the gru_<size>.safetensors bench_rnn and bench/run.sh use; written if missing)
#include <xgrad/xgrad.hpp>

#include "bench_args.hpp"
#include "bench_common.hpp"
#include "gemm_floor.hpp"
#include "rnn_workloads.hpp"

#include <cblas.h>
#include <fmt/format.h>
#include <xsimd/xsimd.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <exception>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

extern "C" void openblas_set_num_threads(int);
extern "C" int openblas_get_num_threads(void);

namespace {

using namespace xgrad;
using Clock = std::chrono::steady_clock;
using Batch = xsimd::batch<float>;
using bench::median;

// C (m, n) = A (m, k) · Bᵀ (B stored (n, k)) + beta C, with the thread count xgrad's matmul
// would use for the shape (as the floor does).
void gemm_nt(std::int64_t m, std::int64_t n, std::int64_t k, const float* a, const float* b, float beta, float* c) {
  openblas_set_num_threads(bench::xgrad_gemm_threads(m, n, k));
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<blasint>(m), static_cast<blasint>(n),
              static_cast<blasint>(k), 1.0f, a, static_cast<blasint>(k), b, static_cast<blasint>(k), beta, c,
              static_cast<blasint>(n));
}

Batch sigmoid(Batch x) { return Batch(1.0f) / (Batch(1.0f) + xsimd::exp(-x)); }

// The GRU forward of bench_rnn's infer workload (PyTorch's gates r, z, n; h_0 = 0), fused.
class FusedGru {
 public:
  FusedGru(const nn::Module& model, std::int64_t hidden, const Tensor& input)
      : T_(input.size(0)), B_(input.size(1)), I_(input.size(2)), H_(hidden) {
    if (H_ % static_cast<std::int64_t>(Batch::size) != 0)
      throw std::runtime_error(fmt::format("hidden size {} is not a multiple of {}", H_, Batch::size));
    for (const auto& [name, t] : model.named_parameters()) {
      const Tensor c = t.detach().contiguous();
      if (name == "weight_ih_l0") w_ih_ = c.to_vector<float>();
      if (name == "weight_hh_l0") w_hh_ = c.to_vector<float>();
      if (name == "bias_ih_l0") b_ih_ = c.to_vector<float>();
      if (name == "bias_hh_l0") b_hh_ = c.to_vector<float>();
    }
    if (w_ih_.empty() || w_hh_.empty() || b_ih_.empty() || b_hh_.empty())
      throw std::runtime_error("the model needs weight_ih_l0, weight_hh_l0, bias_ih_l0, bias_hh_l0");
    x_ = input.contiguous().to_vector<float>();
    const std::int64_t G = 3 * H_;
    bias_.resize(G);  // b_ih + (b_hr, b_hz, 0), as xgrad's projection
    for (std::int64_t j = 0; j < G; ++j) bias_[j] = b_ih_[j] + (j < 2 * H_ ? b_hh_[j] : 0.0f);
    xp_.resize(T_ * B_ * G);
    hh_.resize(B_ * G);
    out_.resize((T_ + 1) * B_ * H_);  // block 0: h_0 = 0; block t + 1: h_t
  }

  void run() {
    const std::int64_t G = 3 * H_, TB = T_ * B_;
    for (std::int64_t row = 0; row < TB; ++row) std::copy(bias_.begin(), bias_.end(), xp_.begin() + row * G);
    gemm_nt(TB, G, I_, x_.data(), w_ih_.data(), 1.0f, xp_.data());
    std::fill(out_.begin(), out_.begin() + B_ * H_, 0.0f);
    const float* b_hn = b_hh_.data() + 2 * H_;
    for (std::int64_t t = 0; t < T_; ++t) {
      const float* h = out_.data() + t * B_ * H_;
      float* h_next = out_.data() + (t + 1) * B_ * H_;
      gemm_nt(B_, G, H_, h, w_hh_.data(), 0.0f, hh_.data());
      for (std::int64_t b = 0; b < B_; ++b) {
        const float* xr = xp_.data() + (t * B_ + b) * G;
        const float* hr = hh_.data() + b * G;
        for (std::int64_t j = 0; j < H_; j += Batch::size) {
          const Batch r = sigmoid(Batch::load_unaligned(xr + j) + Batch::load_unaligned(hr + j));
          const Batch z = sigmoid(Batch::load_unaligned(xr + H_ + j) + Batch::load_unaligned(hr + H_ + j));
          const Batch n = xsimd::tanh(Batch::load_unaligned(xr + 2 * H_ + j) +
                                      r * (Batch::load_unaligned(hr + 2 * H_ + j) + Batch::load_unaligned(b_hn + j)));
          const Batch hp = Batch::load_unaligned(h + b * H_ + j);
          (n + z * (hp - n)).store_unaligned(h_next + b * H_ + j);
        }
      }
    }
  }

  // Max |difference| against xgrad's (T, B, H) output.
  double max_difference(const Tensor& output) const {
    const std::vector<float> y = output.contiguous().to_vector<float>();
    double d = 0;
    for (std::size_t i = 0; i < y.size(); ++i)
      d = std::max(d, static_cast<double>(std::fabs(y[i] - out_[B_ * H_ + i])));
    return d;
  }

 private:
  std::int64_t T_, B_, I_, H_;
  std::vector<float> w_ih_, w_hh_, b_ih_, b_hh_, bias_, x_, xp_, hh_, out_;
};

struct Options {
  std::string size = "M";
  long reps = 20, warmup = 3;
  std::string inputs = "build/bench-results/rnn-inputs";
};

int run(const Options& o) {
  const bench::Size& s = bench::size_named(o.size);
  // Layer 0's weights are what the hand-fused pass reads: one-layer sizes only.
  if (s.layers != 1)
    throw std::runtime_error(fmt::format("size {} has {} layers; S and M have one", s.name, s.layers));
  const std::unique_ptr<nn::Recurrent> model = bench::make_model("gru", s);
  const Tensor input = bench::load_inputs(o.inputs, "gru", s, *model).input;
  model->eval();

  NoGradGuard no_grad;
  FusedGru fused(*model, s.hidden, input);
  bench::GemmFloor floor({s.batch, s.seq, s.input, s.hidden, 1, bench::gates("gru")}, false);
  Tensor out;
  auto xgrad_pass = [&] { out = model->Recurrent::forward(input).output; };
  const int threads = bench::process_blas_threads();
  auto fused_pass = [&] {
    const int before = openblas_get_num_threads();
    fused.run();
    openblas_set_num_threads(before);  // as found: xgrad's matmul remembers what it set last
  };

  xgrad_pass();
  fused_pass();
  const double difference = fused.max_difference(out);
  for (long r = 0; r < o.warmup; ++r) xgrad_pass(), fused_pass(), floor.run();
  std::vector<double> tx, tf, tg;
  auto time = [](auto&& f) {
    const auto t0 = Clock::now();
    f();
    return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  };
  for (long r = 0; r < o.reps; ++r) {  // alternating, so that all three see the same load
    tx.push_back(time(xgrad_pass));
    tf.push_back(time(fused_pass));
    tg.push_back(time([&] { floor.run(); }));
  }
  const double x = median(tx), f = median(tf), g = median(tg);
  fmt::print("infer_gru_{}: median ms over {} alternated passes (BLAS threads {}; {})\n", s.name, o.reps, threads,
             XGRAD_BENCH_ARCH);
  fmt::print("  xgrad      {:8.3f}   / floor {:.3f}\n", x, x / g);
  fmt::print("  hand-fused {:8.3f}   / floor {:.3f}   (max |output - xgrad's| {:.2e})\n", f, f / g, difference);
  fmt::print("  GEMM floor {:8.3f}\n", g);
  fmt::print("  outside GEMM, over the floor: xgrad {:.3f} ms, hand-fused {:.3f} ms\n", x - g, f - g);
  return difference < 1e-4 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    Options o;
    for (int i = 1; i < argc; ++i) {
      const std::string_view arg = argv[i];
      const char* value = i + 1 < argc ? argv[i + 1] : nullptr;
      if (arg == "--size" && value != nullptr) {
        o.size = value, ++i;
      } else if (arg == "--reps") {
        o.reps = parse_count(arg, value, 1), ++i;
      } else if (arg == "--warmup") {
        o.warmup = parse_count(arg, value, 0), ++i;
      } else if (arg == "--inputs" && value != nullptr) {
        o.inputs = value, ++i;
      } else {
        fmt::print(stderr, "usage: {} [--size S|M] [--reps N] [--warmup N] [--inputs DIR]\n", argv[0]);
        return 2;
      }
    }
    return run(o);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_fused_gru: %s\n", e.what());
    return 2;
  }
}
