// matmul: the one primitive that reaches BLAS. Gradients reuse the same GEMM with transpose
// flags; no transposed copy is ever materialised.
#include <xgrad/core/creation.hpp>
#include <xgrad/core/ops.hpp>
#include <xgrad/core/parallel.hpp>

#include <atomic>
#include <cmath>
#include <memory>
#include <tuple>

#include <cblas.h>

#include "blas_threads.hpp"
#include "kernels.hpp"

namespace xgrad {

namespace {

// C (M×N) = op(A) · op(B) + beta·C, row-major; op transposes when the flag is set.
// BLAS rejects leading dimensions of 0, so empty products are handled here.
template <class T>
bool empty_product(std::int64_t M, std::int64_t N, std::int64_t K, T* C, T beta) {
  if (M == 0 || N == 0) return true;
  if (K == 0) {
    for (std::int64_t i = 0; i < M * N; ++i) C[i] = beta == T(0) ? T(0) : beta * C[i];
    return true;
  }
  return false;
}
// OpenBLAS splits every GEMM above m·n·k = 262 144 between its threads. For the small
// products of a recurrent step (32×256×64 for an LSTM of hidden size 64, batch 32) handing
// half the work to the other thread costs more than it saves (the handoff and the wait
// outweigh the arithmetic; one thread finishes such a GEMM sooner). Below this size
// the GEMM runs on the calling thread alone; larger ones get OpenBLAS's threads.
constexpr double kSmallGemm = 4.0 * 1024 * 1024;

//
// OpenBLAS's thread count is one setting for the whole process. While GEMMs run on several
// threads at once (independent models trained in separate threads), each runs on its own
// thread alone: the callers already keep the cores busy. The setting is only ever read and
// written through atomics here, so concurrent callers never race on it in xgrad's code.
std::atomic<int> gemm_callers{0};
std::atomic<int> blas_threads_set{-1};

void choose_blas_threads(std::int64_t M, std::int64_t N, std::int64_t K) {
  const int all_threads = blas_threads_at_start();
  const bool small = static_cast<double>(M) * static_cast<double>(N) * static_cast<double>(K) < kSmallGemm;
  const int want = small || gemm_callers.load(std::memory_order_relaxed) > 1 ? 1 : all_threads;
  if (blas_threads_set.exchange(want, std::memory_order_relaxed) != want) openblas_set_num_threads(want);
}

// Counts the threads inside a GEMM.
struct GemmCaller {
  GemmCaller() { gemm_callers.fetch_add(1, std::memory_order_relaxed); }
  ~GemmCaller() { gemm_callers.fetch_sub(1, std::memory_order_relaxed); }
  GemmCaller(const GemmCaller&) = delete;
  GemmCaller& operator=(const GemmCaller&) = delete;
};

void blas(bool ta, bool tb, std::int64_t M, std::int64_t N, std::int64_t K, const float* A, std::int64_t lda,
          const float* B, std::int64_t ldb, float* C, std::int64_t ldc, float beta) {
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K, 1.0f, A, lda, B,
              ldb, beta, C, ldc);
}
void blas(bool ta, bool tb, std::int64_t M, std::int64_t N, std::int64_t K, const double* A, std::int64_t lda,
          const double* B, std::int64_t ldb, double* C, std::int64_t ldc, double beta) {
  cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K, 1.0, A, lda, B,
              ldb, beta, C, ldc);
}

template <class T>
void gemm(bool ta, bool tb, std::int64_t M, std::int64_t N, std::int64_t K, const T* A, std::int64_t lda, const T* B,
          std::int64_t ldb, T* C, T beta) {
  if (empty_product(M, N, K, C, beta)) return;
  const GemmCaller caller;
  choose_blas_threads(M, N, K);
  blas(ta, tb, M, N, K, A, lda, B, ldb, C, N, beta);
}
// Dense operands: leading dimensions from the shapes.
template <class T>
void gemm(bool ta, bool tb, std::int64_t M, std::int64_t N, std::int64_t K, const T* A, const T* B, T* C, T beta) {
  gemm(ta, tb, M, N, K, A, std::max<std::int64_t>(ta ? M : K, 1), B, std::max<std::int64_t>(tb ? K : N, 1), C, beta);
}

// A 2-D operand as GEMM reads it in place: row-major with leading dimension `ld` (a narrow
// of columns, a gate chunk), or column-major (a transposed view), read with the transpose
// flag. Other layouts (expanded, or strided in both dimensions) are copied densely first.
struct Matrix {
  Tensor keep;               // the tensor whose elements GEMM reads
  bool column_major = false;
  std::int64_t ld = 1;
  template <class T>
  const T* data() const { return impl_of(keep).raw<T>(); }
  // The transpose flag that makes GEMM read op(this) = this (or thisᵀ when `transposed`).
  bool flag(bool transposed) const { return column_major != transposed; }
};
Matrix as_matrix(const Tensor& t) {
  const TensorImpl& im = impl_of(t);
  const std::int64_t r = im.shape[0], c = im.shape[1], s0 = im.strides[0], s1 = im.strides[1];
  if ((c == 1 || s1 == 1) && (r == 1 || s0 >= std::max<std::int64_t>(c, 1)))
    return {t, false, r == 1 ? std::max<std::int64_t>(c, 1) : s0};
  if ((r == 1 || s0 == 1) && (c == 1 || s1 >= std::max<std::int64_t>(r, 1)))
    return {t, true, c == 1 ? std::max<std::int64_t>(r, 1) : s1};
  return {dense(t), false, std::max<std::int64_t>(c, 1)};
}
// Rows × k of a (..., k) tensor folded into one matrix: in place when 2-D or contiguous.
Matrix as_rows(const Tensor& t) {
  if (t.dim() == 2) return as_matrix(t);
  return {dense(t), false, std::max<std::int64_t>(t.size(-1), 1)};
}

// For every matrix of the broadcast batch, which matrix of each operand it reads.
struct BatchPlan {
  Shape batch;                          // broadcast batch shape
  std::vector<std::int64_t> a_index;    // per batch element: matrix index into a
  std::vector<std::int64_t> b_index;
};

BatchPlan plan_batches(const Shape& a_batch, const Shape& b_batch) {
  BatchPlan p;
  p.batch = broadcast_shapes(a_batch, b_batch, "matmul");
  const std::size_t rank = p.batch.size();
  const std::int64_t count = shape_numel(p.batch);
  // Strides (in matrices) of each operand over the broadcast batch; 0 where broadcast.
  auto strides_for = [&](const Shape& s) {
    std::vector<std::int64_t> st(rank, 0);
    std::int64_t stride = 1;
    for (std::size_t i = 0; i < s.size(); ++i) {
      std::size_t d = s.size() - 1 - i, out_d = rank - 1 - i;
      st[out_d] = s[d] == 1 ? 0 : stride;
      stride *= s[d];
    }
    return st;
  };
  auto sa = strides_for(a_batch), sb = strides_for(b_batch);
  p.a_index.resize(count);
  p.b_index.resize(count);
  std::vector<std::int64_t> idx(rank, 0);
  for (std::int64_t i = 0; i < count; ++i) {
    std::int64_t ia = 0, ib = 0;
    for (std::size_t d = 0; d < rank; ++d) {
      ia += idx[d] * sa[d];
      ib += idx[d] * sb[d];
    }
    p.a_index[i] = ia;
    p.b_index[i] = ib;
    for (std::size_t d = rank; d-- > 0;) {
      if (++idx[d] < p.batch[d]) break;
      idx[d] = 0;
    }
  }
  return p;
}

Shape batch_of(const Shape& s) { return Shape(s.begin(), s.end() - 2); }

// A dense (r, c) matrix seen as its (c, r) transpose: a column-major gradient for an operand
// that is itself a transposed view. A plain tensor over the storage, not make_view's: a view
// would keep a second reference to it, and the leaf could no longer adopt the gradient as is.
Tensor seen_transposed(const Tensor& t) {
  const TensorImpl& im = impl_of(t);
  const Shape shape{im.shape[1], im.shape[0]}, strides{1, im.shape[1]};
  return Tensor(make_pooled<TensorImpl>(im.storage, shape, strides, 0, im.dtype));
}

// (..., n, k) × (k, m): every batch shares b, so the batch folds into the rows: one GEMM.
Tensor matmul_folded(const Tensor& a, const Tensor& b) {
  const Shape &as = a.shape(), &bs = b.shape();
  const std::int64_t k = as.back(), m = bs.back();
  if (bs[0] != k) throw Error("matmul: cannot multiply " + shape_str(as) + " by " + shape_str(bs));
  Shape out_shape(as.begin(), as.end() - 1);
  out_shape.push_back(m);
  Tensor out = make_empty(out_shape, a.dtype(), "matmul");
  const std::int64_t rows = shape_numel(Shape(as.begin(), as.end() - 1));  // right when k = 0 too
  const Matrix A = as_rows(a), B = as_matrix(b);
  dispatch_floating(a.dtype(), "matmul", [&]<class T>() {
    gemm(A.flag(false), B.flag(false), rows, m, k, A.data<T>(), A.ld, B.data<T>(), B.ld, impl_of(out).data<T>(), T(0));
  });
  if (!any_requires_grad({&a, &b})) return out;
  const bool na = a.requires_grad(), nb = b.requires_grad();
  const Tensor sa = nb ? a.detach() : Tensor(), sb = na ? b.detach() : Tensor();
  // A transposed view's gradient is computed in that view's layout (see below for B).
  const bool a_column_major = A.column_major && rows > 0 && k > 0, b_column_major = B.column_major && k > 0 && m > 0;
  return record_op("matmul", {a, b}, out,
                   [sa, sb, rows, k, m, a_column_major, b_column_major](const Tensor& g_in) {
                     const Tensor g = dense(g_in);
                     Tensor ga, gb;
                     dispatch_floating(g.dtype(), "matmul_backward", [&]<class T>() {
                       if (sb.defined() && a_column_major) {  // dAᵀ (k, rows) = B · Gᵀ, seen transposed
                         const Tensor gat = make_empty({k, rows}, g.dtype());
                         const Matrix B = as_matrix(sb);
                         gemm(B.flag(false), true, k, rows, m, B.data<T>(), B.ld, impl_of(g).data<T>(),
                              std::max<std::int64_t>(m, 1), impl_of(gat).data<T>(), T(0));
                         ga = seen_transposed(gat);
                       } else if (sb.defined()) {  // dA (rows, k) = G (rows, m) · Bᵀ
                         Shape s = g.shape();
                         s.back() = k;
                         ga = make_empty(s, g.dtype());
                         const Matrix B = as_matrix(sb);
                         gemm(false, B.flag(true), rows, k, m, impl_of(g).data<T>(), std::max<std::int64_t>(m, 1),
                              B.data<T>(), B.ld, impl_of(ga).data<T>(), T(0));
                       }
                       if (sa.defined() && b_column_major) {
                         // B is a transposed view, as w.t() in matmul(x, w.t()): dB in B's own
                         // layout, (Gᵀ · A) as an (m, k) matrix seen transposed, so that w's
                         // gradient comes out as w is laid out, with no transposing copy (as
                         // PyTorch's mm backward does). For a 2048 × 512 w that copy made forward
                         // + backward take 2.9× the time of its three GEMMs.
                         const Tensor gbt = make_empty({m, k}, g.dtype());
                         const Matrix A = as_rows(sa);
                         gemm(true, A.flag(false), m, k, rows, impl_of(g).data<T>(), std::max<std::int64_t>(m, 1),
                              A.data<T>(), A.ld, impl_of(gbt).data<T>(), T(0));
                         gb = seen_transposed(gbt);
                       } else if (sa.defined()) {  // dB (k, m) = Aᵀ · G, summed over the folded batch by GEMM
                         gb = make_empty({k, m}, g.dtype());
                         const Matrix A = as_rows(sa);
                         gemm(A.flag(true), false, k, m, rows, A.data<T>(), A.ld, impl_of(g).data<T>(),
                              std::max<std::int64_t>(m, 1), impl_of(gb).data<T>(), T(0));
                       }
                     });
                     return std::vector<Tensor>{ga, gb};
                   },
                   {sa, sb});
}

// A batched operand (..., r, c) read in place: each matrix as as_matrix reads it (row-major
// with leading dimension ld, or column-major: a transposed view such as attention's kᵀ), the
// batch dimensions at any strides. Matrix j of the operand's own batch (row-major order) starts
// `offsets[j]` elements after the first. Other layouts are copied densely first.
struct Batched {
  Tensor keep;
  bool column_major = false;
  std::int64_t ld = 1;
  std::vector<std::int64_t> offsets;
  template <class T>
  const T* data(std::int64_t j) const { return impl_of(keep).raw<T>() + offsets[static_cast<std::size_t>(j)]; }
  bool flag(bool transposed) const { return column_major != transposed; }
};

Batched as_batched(const Tensor& t_in) {
  const int rank = t_in.dim();
  const TensorImpl& ti = impl_of(t_in);
  const std::int64_t r = ti.shape[rank - 2], c = ti.shape[rank - 1], s0 = ti.strides[rank - 2],
                     s1 = ti.strides[rank - 1];
  Batched out;
  if (t_in.numel() > 0 && (c == 1 || s1 == 1) && (r == 1 || s0 >= std::max<std::int64_t>(c, 1))) {
    out = {t_in, false, r == 1 ? std::max<std::int64_t>(c, 1) : s0, {}};
  } else if (t_in.numel() > 0 && (r == 1 || s0 == 1) && (c == 1 || s1 >= std::max<std::int64_t>(r, 1))) {
    out = {t_in, true, c == 1 ? std::max<std::int64_t>(r, 1) : s1, {}};
  } else {
    out = {dense(t_in), false, std::max<std::int64_t>(c, 1), {}};
  }
  const TensorImpl& im = impl_of(out.keep);
  const Shape batch = batch_of(im.shape);
  const std::int64_t count = shape_numel(batch);
  out.offsets.resize(static_cast<std::size_t>(count));
  std::vector<std::int64_t> idx(batch.size(), 0);
  std::int64_t offset = 0;
  for (std::int64_t j = 0; j < count; ++j) {
    out.offsets[static_cast<std::size_t>(j)] = offset;
    for (std::size_t d = batch.size(); d-- > 0;) {
      offset += im.strides[d];
      if (++idx[d] < batch[d]) break;
      offset -= idx[d] * im.strides[d];
      idx[d] = 0;
    }
  }
  return out;
}

// The matrices of a batched product are independent: below OpenBLAS's threading threshold
// (kSmallGemm) each runs on one thread, so they are spread over xgrad's threads instead, a
// chunk holding at least this many multiply-adds so that handing it over costs little beside
// it. Each output matrix is written by one GEMM whichever thread runs it: the result does not
// depend on the number of threads.
constexpr double kBatchChunkWork = 1024.0 * 1024;

template <class F>
void for_each_matrix(std::int64_t count, std::int64_t n, std::int64_t m, std::int64_t k, F&& gemm_of) {
  const double work = std::max(1.0, static_cast<double>(n) * static_cast<double>(m) * static_cast<double>(k));
  const std::int64_t grain =
      work >= kSmallGemm ? count : static_cast<std::int64_t>(std::ceil(kBatchChunkWork / work));
  parallel_for(count, grain, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t i = begin; i < end; ++i) gemm_of(i);
  });
}

// dA_i = G_i · B_iᵀ and dB_i = A_iᵀ · G_i over the full broadcast batch (the engine sums
// broadcast batches away), reading A and B as forward did.
std::vector<Tensor> matmul_nd_backward(const Batched& A, const Batched& B, const BatchPlan& plan, bool na, bool nb,
                                       std::int64_t n, std::int64_t k, std::int64_t m, const Tensor& g) {
  const auto count = static_cast<std::int64_t>(plan.a_index.size());
  Tensor ga, gb;
  dispatch_floating(g.dtype(), "matmul_backward", [&]<class T>() {
    const T* G = impl_of(g).data<T>();
    const std::int64_t ldg = std::max<std::int64_t>(m, 1);
    if (na) {  // dA_i (n, k) = G_i · B_iᵀ
      Shape s = plan.batch;
      s.insert(s.end(), {n, k});
      ga = count == 0 ? zeros(s, g.dtype()) : make_empty(s, g.dtype());
      T* GA = impl_of(ga).data<T>();
      for_each_matrix(count, n, k, m, [&](std::int64_t i) {
        gemm(false, B.flag(true), n, k, m, G + i * n * m, ldg, B.data<T>(plan.b_index[i]), B.ld, GA + i * n * k, T(0));
      });
    }
    if (nb) {  // dB_i (k, m) = A_iᵀ · G_i
      Shape s = plan.batch;
      s.insert(s.end(), {k, m});
      gb = count == 0 ? zeros(s, g.dtype()) : make_empty(s, g.dtype());
      T* GB = impl_of(gb).data<T>();
      for_each_matrix(count, k, m, n, [&](std::int64_t i) {
        gemm(A.flag(true), false, k, m, n, A.data<T>(plan.a_index[i]), A.ld, G + i * n * m, ldg, GB + i * k * m, T(0));
      });
    }
  });
  return {ga, gb};
}

// The general batched product (both operands at least 2-D).
Tensor matmul_nd(const Tensor& a_in, const Tensor& b_in) {
  if (b_in.dim() == 2) return matmul_folded(a_in, b_in);
  const Shape &as = a_in.shape(), &bs = b_in.shape();
  const std::int64_t n = as[as.size() - 2], k = as.back(), m = bs.back();
  if (bs[bs.size() - 2] != k)
    throw Error("matmul: cannot multiply " + shape_str(as) + " by " + shape_str(bs));

  Shape out_shape;
  try {
    out_shape = broadcast_shapes(batch_of(as), batch_of(bs), "matmul");
  } catch (const Error&) {
    throw Error("matmul: cannot multiply " + shape_str(as) + " by " + shape_str(bs) + " (batch dimensions do not broadcast)");
  }
  out_shape.push_back(n);
  out_shape.push_back(m);
  Tensor out = make_empty(out_shape, a_in.dtype(), "matmul");
  // The plan holds two indices per matrix of the batch: only worth making when there is
  // something to compute. An empty output ([N, 0, m]) needs no plan, whatever N is; its
  // gradients are zeros (below).
  BatchPlan plan;
  Batched A, B;
  if (out.numel() > 0) {
    plan = plan_batches(batch_of(as), batch_of(bs));
    A = as_batched(a_in);
    B = as_batched(b_in);
  } else {
    plan.batch = Shape(out_shape.begin(), out_shape.end() - 2);
  }
  const auto count = static_cast<std::int64_t>(plan.a_index.size());
  dispatch_floating(a_in.dtype(), "matmul", [&]<class T>() {
    T* C = impl_of(out).data<T>();
    for_each_matrix(count, n, m, k, [&](std::int64_t i) {
      gemm(A.flag(false), B.flag(false), n, m, k, A.data<T>(plan.a_index[i]), A.ld, B.data<T>(plan.b_index[i]), B.ld,
           C + i * n * m, T(0));
    });
  });
  if (!any_requires_grad({&a_in, &b_in})) return out;
  const bool na = a_in.requires_grad(), nb = b_in.requires_grad();
  // Backward reads the operands as forward did (in place); each keeps only what the other's
  // gradient needs.
  if (nb && A.keep.defined()) A.keep = A.keep.detach();
  else A = {};
  if (na && B.keep.defined()) B.keep = B.keep.detach();
  else B = {};
  const Tensor sa = nb ? (A.keep.defined() ? A.keep : a_in.detach()) : Tensor(),
               sb = na ? (B.keep.defined() ? B.keep : b_in.detach()) : Tensor();
  auto state = std::make_shared<const std::tuple<Batched, Batched, BatchPlan>>(std::move(A), std::move(B), std::move(plan));
  return record_op(
      "matmul", {a_in, b_in}, out,
      [state, na, nb, n, k, m](const Tensor& g_in) {
        const auto& [A, B, plan] = *state;
        return matmul_nd_backward(A, B, plan, na, nb, n, k, m, dense(g_in));
      },
      {sa, sb});
}

}  // namespace

int blas_threads_at_start() {
  static const int threads = openblas_get_num_threads();  // initialised once, thread-safely
  return threads;
}

Tensor linear(const Tensor& x, const Tensor& w, const Tensor& b) {
  require_same_dtype(x, w, "linear");
  require_floating(x, "linear");
  if (x.dim() == 0 || w.dim() != 2 || x.size(-1) != w.size(1))
    throw Error("linear: cannot apply a weight of shape " + shape_str(w.shape()) + " (out, in) to an input of shape " +
                shape_str(x.shape()) + " (..., in)");
  const std::int64_t k = w.size(1), n = w.size(0), rows = shape_numel(Shape(x.shape().begin(), x.shape().end() - 1));
  Shape out_shape = x.shape();
  out_shape.back() = n;
  // The GEMM starts from b (beta = 1), so the sum costs no extra pass and no temporary.
  Tensor out;
  if (b.defined()) {
    require_same_dtype(x, b, "linear");
    if (broadcast_shapes(b.shape(), out_shape, "linear") != out_shape)
      throw Error("linear: the bias of shape " + shape_str(b.shape()) + " does not broadcast to the output " +
                  shape_str(out_shape));
    out = make_empty(out_shape, x.dtype(), "linear");
    copy_elements(impl_of(expand(b.detach(), out_shape)), impl_of(out));
  } else {
    out = make_empty(out_shape, x.dtype(), "linear");
  }
  const Matrix X = as_rows(x), W = as_matrix(w);
  dispatch_floating(x.dtype(), "linear", [&]<class T>() {
    // out (rows, n) = x (rows, k) · w (n, k)ᵀ + out
    gemm(X.flag(false), W.flag(true), rows, n, k, X.data<T>(), X.ld, W.data<T>(), W.ld, impl_of(out).data<T>(),
         T(b.defined() ? 1 : 0));
  });
  if (!any_requires_grad({&x, &w, &b})) return out;
  const bool nx = x.requires_grad(), nw = w.requires_grad(), nb = b.defined() && b.requires_grad();
  const Tensor sx = nw ? x.detach() : Tensor(), sw = nx ? w.detach() : Tensor();
  return record_op_into(
      "linear", {x, w, b}, out,
      [sx, sw, nb, rows, n, k](const Tensor& g_in, std::span<Tensor* const> sinks) {
        const Tensor g = dense(g_in);
        // A gradient whose accumulated value already exists (sinks[i]) is added into it by the
        // GEMM itself (beta = 1): a weight reused at every time step gets one buffer, not one
        // temporary and one add per step.
        Tensor gx, gw;
        dispatch_floating(g.dtype(), "linear_backward", [&]<class T>() {
          const T* G = impl_of(g).data<T>();
          if (sw.defined()) {  // dx (rows, k) = g (rows, n) · w (n, k)
            Tensor* sink = sinks[0];
            Shape xs = g.shape();
            xs.back() = k;
            if (!sink) gx = make_empty(xs, g.dtype());
            const Matrix W = as_matrix(sw);
            gemm(false, W.flag(false), rows, k, n, G, std::max<std::int64_t>(n, 1), W.data<T>(), W.ld,
                 impl_of(sink ? *sink : gx).data<T>(), T(sink ? 1 : 0));
          }
          if (sx.defined()) {  // dw (n, k) = gᵀ (n, rows) · x (rows, k), summed over the rows by the GEMM
            Tensor* sink = sinks[1];
            if (!sink) gw = make_empty({n, k}, g.dtype());
            const Matrix X = as_rows(sx);
            gemm(true, X.flag(false), n, k, rows, G, std::max<std::int64_t>(n, 1), X.data<T>(), X.ld,
                 impl_of(sink ? *sink : gw).data<T>(), T(sink ? 1 : 0));
          }
        });
        // db = g; the engine sums it down to b's shape.
        return std::vector<Tensor>{gx, gw, nb ? g : Tensor()};
      },
      {sx, sw});
}

Tensor matmul(const Tensor& a, const Tensor& b) {
  require_same_dtype(a, b, "matmul");
  require_floating(a, "matmul");
  if (a.dim() == 0 || b.dim() == 0)
    throw Error("matmul: both operands need at least one dimension, got " + shape_str(a.shape()) + " and " +
                shape_str(b.shape()));
  // 1-D operands are a row (left) or a column (right); the added dimension is removed again.
  if (a.dim() == 1 && b.dim() == 1) {
    if (a.size(0) != b.size(0))
      throw Error("matmul: cannot multiply " + shape_str(a.shape()) + " by " + shape_str(b.shape()));
    return reshape(matmul_nd(unsqueeze(a, 0), unsqueeze(b, 1)), {});
  }
  if (a.dim() == 1) {
    if (a.size(0) != b.size(-2))
      throw Error("matmul: cannot multiply " + shape_str(a.shape()) + " by " + shape_str(b.shape()));
    return squeeze(matmul_nd(unsqueeze(a, 0), b), -2);
  }
  if (b.dim() == 1) {
    if (a.size(-1) != b.size(0))
      throw Error("matmul: cannot multiply " + shape_str(a.shape()) + " by " + shape_str(b.shape()));
    return squeeze(matmul_nd(a, unsqueeze(b, 1)), -1);
  }
  return matmul_nd(a, b);
}

}  // namespace xgrad
