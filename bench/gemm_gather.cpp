// Would gathering the recurrent weight gradient pay? dW_hh = Σ_t g_tᵀ h_{t−1} is T thin GEMMs
// (G × H × B each, accumulated) in xgrad's backward; the alternative is one GEMM over all steps
// (G × H × T·B), after copying the T gradients g_t (B, G) and states h_{t−1} (B, H), which live
// in separate tensors, into two contiguous blocks. This times both through cblas_sgemm with
// xgrad's thread rule, for every cell and size of bench_rnn, and prints their ratio.
//
//   build/release/bench/bench_gemm_gather [--reps N]
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <vector>

#include <cblas.h>

#include "bench_args.hpp"

namespace {

double now_ms() {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// xgrad's rule (core/src/matmul.cpp): one thread below m·n·k = 4 Mi, all of OpenBLAS's above.
void set_threads(std::int64_t m, std::int64_t n, std::int64_t k, int all) {
  openblas_set_num_threads(static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(k) < 4.0 * 1024 * 1024
                               ? 1
                               : all);
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

struct Workload {
  const char* name;
  std::int64_t B, T, H, gates;
};

}  // namespace

int main(int argc, char** argv) try {
  long reps = 15;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--reps") == 0) reps = parse_count("--reps", i + 1 < argc ? argv[++i] : nullptr, 1);
    else throw std::runtime_error(std::string("unknown argument ") + argv[i] + " (usage: bench_gemm_gather [--reps N])");
  }
  const int all = openblas_get_num_threads();
  const Workload workloads[] = {{"rnn_S", 32, 50, 64, 1},    {"lstm_S", 32, 50, 64, 4},   {"gru_S", 32, 50, 64, 3},
                                {"rnn_M", 64, 100, 256, 1},  {"lstm_M", 64, 100, 256, 4}, {"gru_M", 64, 100, 256, 3},
                                {"rnn_L", 64, 100, 512, 1},  {"lstm_L", 64, 100, 512, 4}, {"gru_L", 64, 100, 512, 3}};
  std::printf("dW_hh of one layer: T thin GEMMs (G x H x B, accumulated) vs copying g and h into blocks + one GEMM\n");
  std::printf("(G x H x T*B); median ms of %ld after 2 warm-ups, OpenBLAS threads by xgrad's rule (all = %d)\n", reps, all);
  std::printf("%-8s %10s %10s %10s %10s %14s\n", "workload", "T thin", "copy", "one GEMM", "copy+one", "thin/(copy+one)");
  for (const Workload& w : workloads) {
    const std::int64_t G = w.gates * w.H, H = w.H, B = w.B, T = w.T;
    // Per step tensors as xgrad holds them (separate blocks), and the gathered copies.
    std::vector<std::vector<float>> g(T, std::vector<float>(B * G, 1e-3f)), h(T, std::vector<float>(B * H, 2e-3f));
    std::vector<float> gg(T * B * G), hh(T * B * H), dw(G * H, 0.0f);
    std::vector<double> thin, copy, one;
    for (long r = 0; r < reps + 2; ++r) {
      double t0 = now_ms();
      set_threads(G, H, B, all);
      for (std::int64_t t = 0; t < T; ++t)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, G, H, B, 1.0f, g[t].data(), G, h[t].data(), H,
                    t == 0 ? 0.0f : 1.0f, dw.data(), H);
      double t1 = now_ms();
      for (std::int64_t t = 0; t < T; ++t) {
        std::memcpy(gg.data() + t * B * G, g[t].data(), sizeof(float) * B * G);
        std::memcpy(hh.data() + t * B * H, h[t].data(), sizeof(float) * B * H);
      }
      double t2 = now_ms();
      set_threads(G, H, T * B, all);
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, G, H, T * B, 1.0f, gg.data(), G, hh.data(), H, 0.0f,
                  dw.data(), H);
      double t3 = now_ms();
      if (r < 2) continue;
      thin.push_back(t1 - t0);
      copy.push_back(t2 - t1);
      one.push_back(t3 - t2);
    }
    const double mt = median(thin), mc = median(copy), mo = median(one);
    std::printf("%-8s %10.3f %10.3f %10.3f %10.3f %14.2f\n", w.name, mt, mc, mo, mc + mo, mt / (mc + mo));
  }
  openblas_set_num_threads(all);
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "bench_gemm_gather: %s\n", e.what());
  return 2;
}
