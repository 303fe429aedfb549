// The GEMM floor of a recurrent workload: exactly the GEMMs that one training step (or one
// inference pass) of xgrad's RNN / LSTM / GRU runs — same shapes, same transpose flags, the
// same number of OpenBLAS threads per GEMM — timed back to back through cblas_sgemm on
// buffers laid out as the layer's (one (T·B, ·) block per activation, a slice per step).
// A step can only be slower than its floor; step time ÷ floor is what the framework adds.
//
// The list is derived from the layer structure (bench/README.md, "The GEMM floor"), and a
// recorder that sees every cblas_sgemm of the process checks it against what xgrad's matmul
// and linear actually call in one step.
#pragma once

#include <compare>
#include <cstdint>
#include <string>
#include <vector>

namespace bench {

/// The sizes of a recurrent workload; `gates` is 1 (RNN), 4 (LSTM) or 3 (GRU).
struct RecurrentShape {
  std::int64_t batch, seq, input, hidden, layers, gates;
};

/// One cblas_sgemm call, row-major: C (m, n) = op(A) (m, k) · op(B) (k, n) + beta·C, run on
/// `threads` OpenBLAS threads. `ta` / `tb`: the transpose flags of A and B; `dense`: every
/// operand's leading dimension is its stored row length (no strided view).
struct GemmShape {
  bool ta = false, tb = false;
  std::int64_t m = 0, n = 0, k = 0;
  int threads = 1;
  bool dense = true;
  double flops() const { return 2.0 * static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(k); }
  auto operator<=>(const GemmShape&) const = default;
};

/// "6400x2048x256 NT, 2 threads" (", strided" when not dense).
std::string describe(const GemmShape& g);

/// OpenBLAS's threads when the process started (what xgrad's matmul uses for large GEMMs).
/// Call it once before anything changes the setting.
int process_blas_threads();

/// The threads xgrad's matmul gives a GEMM of this size (core/src/matmul.cpp,
/// choose_blas_threads: one below m·n·k = 4 Mi, all of them above). GemmRecorder's check
/// catches this copy going out of date.
int xgrad_gemm_threads(std::int64_t m, std::int64_t n, std::int64_t k);

/// The GEMMs of one training step (forward and backward) or one inference pass of a
/// unidirectional RNN / LSTM / GRU (GRU with reset_after, the default), with the buffers to
/// run them on. Building it allocates about as much as the step's activations.
///
/// Example: GemmFloor floor({64, 100, 256, 512, 2, 4}, true); floor.run();
class GemmFloor {
 public:
  GemmFloor(const RecurrentShape& s, bool training);

  /// Every GEMM once, in the order the step runs them; OpenBLAS's thread setting is restored.
  void run();

  /// The shapes, in run order.
  std::vector<GemmShape> shapes() const;
  /// Total floating-point operations (2·m·n·k per GEMM).
  double flops() const;
  /// One line per distinct role and shape: "l0 recurrent fwd  100 × 64x2048x512 NT, 2 threads".
  std::vector<std::string> listing() const;

 private:
  struct Call {
    std::string role;
    GemmShape shape;
    const float* a;
    const float* b;
    float* c;
    float beta;
  };
  float* buffer(std::int64_t rows, std::int64_t cols);
  void add(std::string role, bool ta, bool tb, std::int64_t m, std::int64_t n, std::int64_t k, const float* a,
           const float* b, float* c, float beta);

  std::vector<std::vector<float>> buffers_;
  std::vector<Call> calls_;
};

/// While alive, records the shape and thread count of every cblas_sgemm the process makes
/// (bench_rnn interposes cblas_sgemm to see xgrad's calls; one recorder at a time).
class GemmRecorder {
 public:
  GemmRecorder();
  ~GemmRecorder();
  GemmRecorder(const GemmRecorder&) = delete;
  GemmRecorder& operator=(const GemmRecorder&) = delete;
  /// The calls recorded so far, in call order.
  std::vector<GemmShape> calls() const;
};

/// How two lists of GEMMs differ as multisets (shape and threads; order ignored): one line
/// per shape whose count differs, empty when they agree.
std::vector<std::string> compare_gemms(std::vector<GemmShape> expected, std::vector<GemmShape> actual);

}  // namespace bench
