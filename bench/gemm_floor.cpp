// The GEMM floor and the recorder that checks it (see gemm_floor.hpp).
#include "gemm_floor.hpp"

#include <cblas.h>
#include <dlfcn.h>
#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <utility>

namespace bench {

namespace {

// --- the recorder: bench_rnn's own cblas_sgemm, in front of OpenBLAS's -----------------------------

std::atomic<bool> recording{false};
std::mutex recorded_mutex;
std::vector<GemmShape> recorded;  // guarded by recorded_mutex

using SgemmFn = void (*)(CBLAS_ORDER, CBLAS_TRANSPOSE, CBLAS_TRANSPOSE, blasint, blasint, blasint, float,
                         const float*, blasint, const float*, blasint, float, float*, blasint);

SgemmFn real_sgemm() {
  static const SgemmFn real = [] {
    auto f = reinterpret_cast<SgemmFn>(dlsym(RTLD_NEXT, "cblas_sgemm"));
    if (f == nullptr) {
      std::fprintf(stderr, "bench_rnn: cannot find the BLAS library's cblas_sgemm (dlsym: %s)\n", dlerror());
      std::abort();
    }
    return f;
  }();
  return real;
}

}  // namespace

std::string describe(const GemmShape& g) {
  return fmt::format("{}x{}x{} {}{}, {} thread{}{}", g.m, g.n, g.k, g.ta ? 'T' : 'N', g.tb ? 'T' : 'N', g.threads,
                     g.threads == 1 ? "" : "s", g.dense ? "" : ", strided");
}

int process_blas_threads() {
  static const int threads = openblas_get_num_threads();
  return threads;
}

int xgrad_gemm_threads(std::int64_t m, std::int64_t n, std::int64_t k) {
  constexpr double kSmallGemm = 4.0 * 1024 * 1024;  // core/src/matmul.cpp
  return static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(k) < kSmallGemm
             ? 1
             : process_blas_threads();
}

// --- the floor ------------------------------------------------------------------------------------

float* GemmFloor::buffer(std::int64_t rows, std::int64_t cols) {
  // Small values, never denormal, never growing large over a few hundred runs with beta = 1.
  std::vector<float>& b = buffers_.emplace_back(static_cast<std::size_t>(rows * cols));
  for (std::size_t i = 0; i < b.size(); ++i)
    b[i] = 1e-4f * static_cast<float>(static_cast<int>(i * 2654435761u % 201) - 100);  // in [-0.01, 0.01]
  return b.data();
}

void GemmFloor::add(std::string role, bool ta, bool tb, std::int64_t m, std::int64_t n, std::int64_t k, const float* a,
                    const float* b, float* c, float beta) {
  calls_.push_back({std::move(role), {ta, tb, m, n, k, xgrad_gemm_threads(m, n, k), true}, a, b, c, beta});
}

// Per layer l (input width `in`: I for layer 0, H above), G = gates·H, all row-major:
//   x   (T·B, in)        the layer's input; layer l > 0 reads layer l−1's hs rows B..
//   xp  (T·B, G)         x W_ihᵀ + bias, one GEMM for all steps; step t adds h_{t−1} W_hhᵀ to its rows
//   hs  ((T+1)·B, H)     block 0 the initial state, block t+1 = h_t
//   dxp, dhs             their gradients; dW_ih (G, in), dW_hh (G, H)
// The transposes are linear's: forward NT, dx = g·W NN, dW = gᵀ·x TN.
GemmFloor::GemmFloor(const RecurrentShape& s, bool training) {
  const std::int64_t T = s.seq, B = s.batch, H = s.hidden, G = s.gates * s.hidden;
  struct Layer {
    std::int64_t in;
    const float* x;
    float* dx;  // null for layer 0: the input does not require grad
    float *w_ih, *w_hh, *xp, *hs, *dxp = nullptr, *dhs = nullptr, *dw_ih = nullptr, *dw_hh = nullptr;
  };
  std::vector<Layer> layers;
  const float* x = buffer(T * B, s.input);
  float* dx = nullptr;
  for (std::int64_t l = 0; l < s.layers; ++l) {
    const std::int64_t in = l == 0 ? s.input : H;
    Layer L{in, x, dx, buffer(G, in), buffer(G, H), buffer(T * B, G), buffer((T + 1) * B, H)};
    if (training) {
      L.dxp = buffer(T * B, G);
      L.dhs = buffer((T + 1) * B, H);
      L.dw_ih = buffer(G, in);
      L.dw_hh = buffer(G, H);
    }
    layers.push_back(L);
    x = L.hs + B * H;
    dx = training ? L.dhs + B * H : nullptr;
  }

  for (std::size_t l = 0; l < layers.size(); ++l) {
    const Layer& L = layers[l];
    const std::string p = fmt::format("l{} ", l);
    add(p + "proj fwd        x·W_ihᵀ", false, true, T * B, G, L.in, L.x, L.w_ih, L.xp, 1);
    // The GRU's recurrent product starts from zero into a (B, G) block of its own (b_hn is
    // added to its n part afterwards); RNN's and LSTM's start from the step's projection.
    const bool gru = s.gates == 3;
    float* hh = gru ? buffer(B, G) : nullptr;
    for (std::int64_t t = 0; t < T; ++t)  // step 0 too: xgrad multiplies the zero initial state
      add(p + "recurrent fwd   h·W_hhᵀ", false, true, B, G, H, L.hs + t * B * H, L.w_hh,
          gru ? hh : L.xp + t * B * G, gru ? 0.0f : 1.0f);
  }
  if (!training) return;
  for (std::size_t l = layers.size(); l-- > 0;) {
    const Layer& L = layers[l];
    const std::string p = fmt::format("l{} ", l);
    for (std::int64_t t = T; t-- > 0;) {
      const float* g = L.dxp + t * B * G;  // (B, G)
      if (t > 0)  // the initial state does not require grad
        add(p + "recurrent dh    g·W_hh", false, false, B, H, G, g, L.w_hh, L.dhs + t * B * H, 0);
      add(p + "recurrent dW_hh gᵀ·h", true, false, G, H, B, g, L.hs + t * B * H, L.dw_hh, t == T - 1 ? 0 : 1);
    }
    if (L.dx != nullptr) add(p + "proj dx         g·W_ih", false, false, T * B, L.in, G, L.dxp, L.w_ih, L.dx, 0);
    add(p + "proj dW_ih      gᵀ·x", true, false, G, L.in, T * B, L.dxp, L.x, L.dw_ih, 0);
  }
}

void GemmFloor::run() {
  const int before = openblas_get_num_threads();
  int current = before;
  for (const Call& c : calls_) {
    const GemmShape& g = c.shape;
    if (g.threads != current) openblas_set_num_threads(current = g.threads);
    // Dense operands: the leading dimension is the stored row length.
    cblas_sgemm(CblasRowMajor, g.ta ? CblasTrans : CblasNoTrans, g.tb ? CblasTrans : CblasNoTrans,
                static_cast<blasint>(g.m), static_cast<blasint>(g.n), static_cast<blasint>(g.k), 1.0f, c.a,
                static_cast<blasint>(g.ta ? g.m : g.k), c.b, static_cast<blasint>(g.tb ? g.k : g.n), c.beta, c.c,
                static_cast<blasint>(g.n));
  }
  // xgrad's matmul remembers the setting it made last: leave it as found.
  if (current != before) openblas_set_num_threads(before);
}

std::vector<GemmShape> GemmFloor::shapes() const {
  std::vector<GemmShape> out;
  for (const Call& c : calls_) out.push_back(c.shape);
  return out;
}

double GemmFloor::flops() const {
  double f = 0;
  for (const Call& c : calls_) f += c.shape.flops();
  return f;
}

std::vector<std::string> GemmFloor::listing() const {
  std::vector<std::pair<std::string, std::int64_t>> groups;  // in first-seen order
  for (const Call& c : calls_) {
    const std::string key = fmt::format("{:<26} {}", c.role, describe(c.shape));
    auto it = std::find_if(groups.begin(), groups.end(), [&](const auto& e) { return e.first == key; });
    if (it == groups.end()) groups.emplace_back(key, 1);
    else ++it->second;
  }
  std::vector<std::string> out;
  for (const auto& [key, count] : groups) out.push_back(fmt::format("{:>4} × {}", count, key));
  return out;
}

// --- recording and comparing ---------------------------------------------------------------------

GemmRecorder::GemmRecorder() {
  const std::lock_guard lock(recorded_mutex);
  recorded.clear();
  recording.store(true);
}

GemmRecorder::~GemmRecorder() { recording.store(false); }

std::vector<GemmShape> GemmRecorder::calls() const {
  const std::lock_guard lock(recorded_mutex);
  return recorded;
}

std::vector<std::string> compare_gemms(std::vector<GemmShape> expected, std::vector<GemmShape> actual) {
  std::map<GemmShape, std::pair<int, int>> counts;
  for (const GemmShape& g : expected) ++counts[g].first;
  for (const GemmShape& g : actual) ++counts[g].second;
  std::vector<std::string> out;
  for (const auto& [g, c] : counts)
    if (c.first != c.second)
      out.push_back(fmt::format("{}: derived {} call(s), recorded {}", describe(g), c.first, c.second));
  return out;
}

}  // namespace bench

// Every cblas_sgemm of the process, xgrad's included, comes here first (the executable's
// definition precedes the BLAS library's) and goes on to OpenBLAS's. Outside a GemmRecorder
// this costs one atomic load per GEMM, next to GEMMs of microseconds or more.
extern "C" void cblas_sgemm(const CBLAS_ORDER order, const CBLAS_TRANSPOSE ta, const CBLAS_TRANSPOSE tb,
                            const blasint m, const blasint n, const blasint k, const float alpha, const float* a,
                            const blasint lda, const float* b, const blasint ldb, const float beta, float* c,
                            const blasint ldc) {
  if (bench::recording.load(std::memory_order_relaxed)) {
    // As a row-major product; column-major C = A·B is row-major Cᵀ = Bᵀ·Aᵀ: A and B swap.
    const bool row_major = order == CblasRowMajor;
    const bool ta_r = (row_major ? ta : tb) != CblasNoTrans, tb_r = (row_major ? tb : ta) != CblasNoTrans;
    const blasint m_r = row_major ? m : n, n_r = row_major ? n : m, lda_r = row_major ? lda : ldb,
                  ldb_r = row_major ? ldb : lda;
    const bool dense = lda_r == (ta_r ? m_r : k) && ldb_r == (tb_r ? k : n_r) && ldc == n_r;
    const bench::GemmShape g{ta_r, tb_r, m_r, n_r, k, openblas_get_num_threads(), dense};
    const std::lock_guard lock(bench::recorded_mutex);
    bench::recorded.push_back(g);
  }
  bench::real_sgemm()(order, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
