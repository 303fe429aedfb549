// softmax and log_softmax: fused, max-shifted so exp never overflows. Each backward is one
// pass over (outer, n, inner) with the output saved by forward.
#include <xgrad/core/ops.hpp>

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

// y = softmax(x) or log_softmax(x) along the middle axis of (outer, n, inner).
template <class T>
void softmax_forward(const T* x, T* y, const AxisSplit& s, bool log_output) {
  if constexpr (std::is_same_v<T, float>) {
    if (s.inner == 1 && !log_output) return softmax_rows(x, y, s.outer, s.n);
  }
  for (std::int64_t o = 0; o < s.outer; ++o)
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
void softmax_backward(const T* g, const T* y, T* dx, const AxisSplit& s, bool log_output) {
  for (std::int64_t o = 0; o < s.outer; ++o)
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
    softmax_forward(impl_of(x).data<T>(), impl_of(out).data<T>(), s, log_output);
  });
  if (!any_requires_grad({&a})) return out;
  const Tensor y = out.detach();
  if (trace::tracing()) trace::annotate(op, {{"dim", dim}});
  return record_op(op, {a}, out, [y, s, log_output](const Tensor& g_in) {
    const Tensor g = dense(g_in);
    Tensor dx = make_empty(g.shape(), g.dtype());
    dispatch_floating(g.dtype(), "softmax_backward", [&]<class T>() {
      softmax_backward(impl_of(g).data<T>(), impl_of(y).data<T>(), impl_of(dx).data<T>(), s, log_output);
    });
    return Grads{dx};
  }, {y});
}

}  // namespace

Tensor softmax(const Tensor& a, std::int64_t dim) { return softmax_op(a, dim, false); }
Tensor log_softmax(const Tensor& a, std::int64_t dim) { return softmax_op(a, dim, true); }

}  // namespace xgrad
