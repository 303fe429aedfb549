// Time outside GEMM: an LD_PRELOAD library that times every cblas_sgemm of a bench_rnn run and,
// every CHUNK calls (one step's or one pass's GEMMs), prints the wall time since the previous
// chunk began, the part spent inside cblas_sgemm, and the rest: what the framework adds to the
// step. bench_rnn alternates each xgrad step with its GEMM floor, so the chunks alternate too;
// bench/outside_gemm.sh picks xgrad's. Being a difference of two timings taken in one run, this
// is much steadier than step time on a noisy host, which is what it is for: A/B comparisons of
// framework changes.
#include <dlfcn.h>

#include <cstdio>
#include <cstdlib>
#include <ctime>

namespace {

using Sgemm = void (*)(int, int, int, int, int, int, float, const float*, int, const float*, int, float, float*,
                       int);
Sgemm real_sgemm = nullptr;
long calls = 0, chunk = 0;
double inside = 0, chunk_start = 0;

double now() {
  timespec t{};
  clock_gettime(CLOCK_MONOTONIC, &t);
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) * 1e-9;
}

}  // namespace

extern "C" void cblas_sgemm(int order, int ta, int tb, int m, int n, int k, float alpha, const float* a, int lda,
                            const float* b, int ldb, float beta, float* c, int ldc) {
  if (real_sgemm == nullptr) {
    real_sgemm = reinterpret_cast<Sgemm>(dlsym(RTLD_NEXT, "cblas_sgemm"));
    const char* env = std::getenv("OUTSIDE_GEMM_CHUNK");
    chunk = env ? std::atol(env) : 0;
    if (real_sgemm == nullptr || chunk <= 0) {
      std::fprintf(stderr, "outside_gemm: needs BLAS's cblas_sgemm and OUTSIDE_GEMM_CHUNK > 0\n");
      std::abort();
    }
  }
  const double start = now();
  if (calls % chunk == 0) {
    if (calls > 0)
      std::fprintf(stderr, "outside_gemm chunk %ld wall_ms %.3f gemm_ms %.3f outside_ms %.3f\n", calls / chunk,
                   (start - chunk_start) * 1e3, inside * 1e3, (start - chunk_start - inside) * 1e3);
    inside = 0;
    chunk_start = start;
  }
  real_sgemm(order, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  inside += now() - start;
  ++calls;
}
