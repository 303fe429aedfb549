// softmax and log_softmax: fused, max-shifted so exp never overflows. Each backward is one
// pass over (outer, n, inner) with the output saved by forward.
#include <xgrad/core/ops.hpp>
#include <xgrad/core/parallel.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>

#include <xsimd/xsimd.hpp>

#include "kernels.hpp"
#include "trace_hook.hpp"

namespace xgrad {

namespace {

// softmax of each of `rows` dense rows of n floats (the last axis: attention's scores): xsimd
// batches for the max, the exp and the sum, where the strided loop below calls the scalar expf
// once per element. The same max shift; sums differ from the scalar loop's only by rounding.
void softmax_rows(const float* x, float* y, std::int64_t rows, std::int64_t n) {
  using Batch = xsimd::batch<float>;
  constexpr std::int64_t W = Batch::size;
  const std::int64_t vec_n = n - n % W;
  for (std::int64_t r = 0; r < rows; ++r) {
    const float* in = x + r * n;
    float* out = y + r * n;
    float m = -std::numeric_limits<float>::infinity();
    if (vec_n > 0) {
      Batch bm = Batch::load_unaligned(in);
      for (std::int64_t i = W; i < vec_n; i += W) bm = xsimd::max(bm, Batch::load_unaligned(in + i));
      alignas(64) float lanes[W];  // xsimd 8 has no horizontal max
      bm.store_aligned(lanes);
      for (float v : lanes) m = std::max(m, v);
    }
    for (std::int64_t i = vec_n; i < n; ++i) m = std::max(m, in[i]);
    if (!std::isfinite(m)) m = 0.0f;
    const Batch shift(m);
    Batch bt(0.0f);
    for (std::int64_t i = 0; i < vec_n; i += W) {
      const Batch e = xsimd::exp(Batch::load_unaligned(in + i) - shift);
      e.store_unaligned(out + i);
      bt += e;
    }
    float total = xsimd::hadd(bt);
    for (std::int64_t i = vec_n; i < n; ++i) total += out[i] = std::exp(in[i] - m);
    const float inv = 1.0f / total;
    for (std::int64_t i = 0; i < n; ++i) out[i] *= inv;
  }
}

// softmax's backward dx = y · (g − Σ g·y) for `rows` dense rows of n floats, in xsimd batches.
void softmax_backward_rows(const float* g, const float* y, float* dx, std::int64_t rows, std::int64_t n) {
  using Batch = xsimd::batch<float>;
  constexpr std::int64_t W = Batch::size;
  const std::int64_t vec_n = n - n % W;
  for (std::int64_t r = 0; r < rows; ++r) {
    const float *gr = g + r * n, *yr = y + r * n;
    float* dr = dx + r * n;
    Batch bacc(0.0f);
    for (std::int64_t i = 0; i < vec_n; i += W) bacc = xsimd::fma(Batch::load_unaligned(gr + i), Batch::load_unaligned(yr + i), bacc);
    float acc = xsimd::hadd(bacc);
    for (std::int64_t i = vec_n; i < n; ++i) acc += gr[i] * yr[i];
    const Batch bsum(acc);
    for (std::int64_t i = 0; i < vec_n; i += W)
      (Batch::load_unaligned(yr + i) * (Batch::load_unaligned(gr + i) - bsum)).store_unaligned(dr + i);
    for (std::int64_t i = vec_n; i < n; ++i) dr[i] = yr[i] * (gr[i] - acc);
  }
}

// Rows are independent: split over xgrad's threads when they add up to this many elements.
// Each row is computed whole by one thread, so the result does not depend on the thread count.
constexpr std::int64_t kRowGrain = 32768;

// Calls f(first, last) over ranges of the `outer` rows of (outer, n, inner).
template <class F>
void over_rows(const AxisSplit& s, F&& f) {
  const std::int64_t row = std::max<std::int64_t>(s.n * s.inner, 1);
  parallel_for(s.outer, std::max<std::int64_t>(1, kRowGrain / row), f);
}

// y = softmax(x) or log_softmax(x) along the middle axis of (outer, n, inner), outer rows
// [first, last).
template <class T>
void softmax_forward(const T* x, T* y, const AxisSplit& s, bool log_output, std::int64_t first, std::int64_t last) {
  if constexpr (std::is_same_v<T, float>) {
    if (s.inner == 1 && !log_output) return softmax_rows(x + first * s.n, y + first * s.n, last - first, s.n);
  }
  for (std::int64_t o = first; o < last; ++o)
    for (std::int64_t k = 0; k < s.inner; ++k) {
      const T* in = x + o * s.n * s.inner + k;
      T* out = y + o * s.n * s.inner + k;
      T m = -std::numeric_limits<T>::infinity();
      for (std::int64_t i = 0; i < s.n; ++i) m = std::max(m, in[i * s.inner]);
      if (!std::isfinite(m)) m = T(0);
      T total = 0;
      for (std::int64_t i = 0; i < s.n; ++i) {
        T e = std::exp(in[i * s.inner] - m);
        if (!log_output) out[i * s.inner] = e;
        total += e;
      }
      if (log_output) {
        const T shift = m + std::log(total);
        for (std::int64_t i = 0; i < s.n; ++i) out[i * s.inner] = in[i * s.inner] - shift;
      } else {
        const T inv = T(1) / total;
        for (std::int64_t i = 0; i < s.n; ++i) out[i * s.inner] *= inv;
      }
    }
}

// softmax:     dx = y · (g - Σ g·y)
// log_softmax: dx = g - e^y · Σ g
template <class T>
void softmax_backward(const T* g, const T* y, T* dx, const AxisSplit& s, bool log_output, std::int64_t first,
                      std::int64_t last) {
  if constexpr (std::is_same_v<T, float>) {
    if (s.inner == 1 && !log_output) {
      const std::int64_t at = first * s.n;
      return softmax_backward_rows(g + at, y + at, dx + at, last - first, s.n);
    }
  }
  for (std::int64_t o = first; o < last; ++o)
    for (std::int64_t k = 0; k < s.inner; ++k) {
      const std::int64_t base = o * s.n * s.inner + k;
      T acc = 0;
      for (std::int64_t i = 0; i < s.n; ++i) {
        const std::int64_t j = base + i * s.inner;
        acc += log_output ? g[j] : g[j] * y[j];
      }
      for (std::int64_t i = 0; i < s.n; ++i) {
        const std::int64_t j = base + i * s.inner;
        dx[j] = log_output ? g[j] - std::exp(y[j]) * acc : y[j] * (g[j] - acc);
      }
    }
}

Tensor softmax_op(const Tensor& a, std::int64_t dim, bool log_output) {
  const char* op = log_output ? "log_softmax" : "softmax";
  require_floating(a, op);
  dim = wrap_dim(dim, a.dim(), op, /*scalar_ok=*/true);
  const AxisSplit s = a.dim() == 0 ? AxisSplit{} : split_at(a.shape(), dim);
  Tensor out = make_empty(a.shape(), a.dtype());
  const Tensor x = dense(a);
  dispatch_floating(a.dtype(), op, [&]<class T>() {
    const T* xs = impl_of(x).data<T>();
    T* ys = impl_of(out).data<T>();
    over_rows(s, [&](std::int64_t first, std::int64_t last) { softmax_forward(xs, ys, s, log_output, first, last); });
  });
  if (!any_requires_grad({&a})) return out;
  const Tensor y = out.detach();
  if (trace::tracing()) trace::annotate(op, {{"dim", dim}});
  return record_op(op, {a}, out, [y, s, log_output](const Tensor& g_in) {
    const Tensor g = dense(g_in);
    Tensor dx = make_empty(g.shape(), g.dtype());
    dispatch_floating(g.dtype(), "softmax_backward", [&]<class T>() {
      const T *gs = impl_of(g).data<T>(), *ys = impl_of(y).data<T>();
      T* dxs = impl_of(dx).data<T>();
      over_rows(s, [&](std::int64_t first, std::int64_t last) {
        softmax_backward(gs, ys, dxs, s, log_output, first, last);
      });
    });
    return Grads{dx};
  }, {y});
}

}  // namespace

Tensor softmax(const Tensor& a, std::int64_t dim) { return softmax_op(a, dim, false); }
Tensor log_softmax(const Tensor& a, std::int64_t dim) { return softmax_op(a, dim, true); }

}  // namespace xgrad
