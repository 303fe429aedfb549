#pragma once
// Private to core: dtype dispatch and xtensor views of tensor storage. Only core's .cpp
// files include this (and with it xtensor); public headers never do.
#include <array>
#include <cstddef>
#include <string>
#include <vector>

#include <xtensor/xadapt.hpp>
#include <xtensor/xarray.hpp>
#include <xtensor/xmath.hpp>
#include <xtensor/xnoalias.hpp>
#include <xtensor/xtensor.hpp>

#include "checks.hpp"
#include "node.hpp"
#include "record.hpp"
#include "strided.hpp"
#include "tensor_impl.hpp"
#include "views.hpp"

namespace xgrad {

// The element type of an xtensor expression (inside generic kernel lambdas).
template <class E>
using value_of = typename std::decay_t<E>::value_type;

// Calls `f.template operator()<T>()` with T the C++ type of `dtype`, for f32 and f64.
template <class F>
decltype(auto) dispatch_floating(DType dtype, const char* op, F&& f) {
  switch (dtype) {
    case DType::f32: return f.template operator()<float>();
    case DType::f64: return f.template operator()<double>();
    default:
      throw Error(std::string(op) + ": expected a floating-point tensor, got " +
                  std::string(dtype_name(dtype)));
  }
}

// As dispatch_floating, also for i64.
template <class F>
decltype(auto) dispatch_numeric(DType dtype, const char* op, F&& f) {
  switch (dtype) {
    case DType::f32: return f.template operator()<float>();
    case DType::f64: return f.template operator()<double>();
    case DType::i64: return f.template operator()<std::int64_t>();
    default:
      throw Error(std::string(op) + ": not supported for dtype " + std::string(dtype_name(dtype)));
  }
}

// Every dtype; b8 is stored as bool.
template <class F>
decltype(auto) dispatch_all(DType dtype, F&& f) {
  switch (dtype) {
    case DType::f32: return f.template operator()<float>();
    case DType::f64: return f.template operator()<double>();
    case DType::i64: return f.template operator()<std::int64_t>();
    case DType::b8: break;
  }
  return f.template operator()<bool>();
}

// The elements of `t` as a 1-D xtensor adaptor (no copy): fast, vectorised with xsimd.
template <class T>
auto flat(const Tensor& t) {
  TensorImpl& im = impl_of(t);
  auto n = static_cast<std::size_t>(im.numel);
  return xt::adapt(im.data<T>(), n, xt::no_ownership(), std::array<std::size_t, 1>{n});
}

// The elements of `t` as an n-D xtensor adaptor with t's shape (for broadcasting).
template <class T>
auto nd(const Tensor& t) {
  TensorImpl& im = impl_of(t);
  std::vector<std::size_t> shape(im.shape.begin(), im.shape.end());
  return xt::adapt(im.data<T>(), static_cast<std::size_t>(im.numel), xt::no_ownership(), shape);
}

// Splits `shape` around `dim` into (outer, n, inner): every axis-wise kernel loops over
// outer × n × inner with the reduced axis in the middle. A shape with no elements gets
// outer = 0, so that no kernel loops over the other extents of an empty tensor: [2^40, 0, 0]
// split at dim 1 would otherwise be 2^40 iterations over nothing.
struct AxisSplit {
  std::int64_t outer = 1, n = 1, inner = 1;
};
inline AxisSplit split_at(const Shape& shape, std::int64_t dim) {
  AxisSplit s;
  for (std::int64_t i = 0; i < dim; ++i) s.outer *= shape[i];
  s.n = shape[dim];
  for (std::size_t i = dim + 1; i < shape.size(); ++i) s.inner *= shape[i];
  if (s.n == 0 || s.inner == 0) s.outer = 0;
  return s;
}

}  // namespace xgrad

namespace xgrad {

// A 2-D operand read row by row where it lies: every row dense, rows `stride` elements apart.
// The gate blocks of a recurrent step (chunks of a (B, 4H) matrix) are such views; reading
// them in place saves copying each densely first (LSTM of size M: 4 copies of (64, 256) per
// step). Rows shorter than kMinRow are not worth a kernel call each: those are copied.
constexpr std::int64_t kMinRow = 64;
inline bool row_readable(const TensorImpl& im) {
  return im.shape.size() == 2 && im.shape[1] >= kMinRow && im.strides[1] == 1 && im.strides[0] >= im.shape[1];
}
// One operand of a row-by-row kernel: a row_readable or contiguous 2-D tensor of the output's
// shape, or one row repeated over every output row (a bias broadcast over the rows).
struct RowOperand {
  const TensorImpl* im = nullptr;
  bool repeated = false;
  template <class T>
  const T* row(std::int64_t r) const {
    return repeated ? im->raw<T>() : im->raw<T>() + r * im->strides[0];
  }
};

// Assigns f(operand rows...) into `out` (dense 2-D) row by row, each row on the flat
// vectorised path.
template <class T, class R = T, class F, class... Operands>
void assign_rows(const Tensor& out, F f, const Operands&... in) {
  const TensorImpl& o = impl_of(out);
  const auto cols = static_cast<std::size_t>(o.shape[1]);
  const std::array<std::size_t, 1> shape{cols};
  R* y0 = o.data<R>();
  for (std::int64_t r = 0; r < o.shape[0]; ++r) {
    auto y = xt::adapt(y0 + r * o.shape[1], cols, xt::no_ownership(), shape);
    xt::noalias(y) = f(xt::adapt(in.template row<T>(r), cols, xt::no_ownership(), shape)...);
  }
}

// A new tensor f(a) of a's shape; f maps an xtensor expression to one. Runs on the flat,
// vectorised path: a strided `a` is read row by row in place (row_readable) or else first
// copied densely (one plain pass, far cheaper than xtensor's stepper over arbitrary strides).
template <class F>
Tensor map1(const Tensor& a_in, const char* op, F f) {
  require_floating(a_in, op);
  // By reference unless copied: a handle copy is two atomic operations.
  const bool rows = !impl_of(a_in).contiguous && row_readable(impl_of(a_in));
  Tensor a_copy;
  const Tensor& a = impl_of(a_in).contiguous || rows ? a_in : (a_copy = dense(a_in));
  return dispatch_floating(a.dtype(), op, [&]<class T>() {
    Tensor out = make_empty(a.shape(), a.dtype());
    if (rows) {
      assign_rows<T>(out, f, RowOperand{&impl_of(a)});
    } else {
      auto y = flat<T>(out);
      xt::noalias(y) = f(flat<T>(a));
    }
    return out;
  });
}

// A new tensor f(flat(a), flat(b)) for a and b of one shape and dtype: fused kernels for
// backward rules such as g·y·(1 - y), one pass instead of three temporaries.
template <class F>
Tensor map2(const Tensor& a_in, const Tensor& b_in, const char* op, F f) {
  require_floating(a_in, op);
  const TensorImpl &ai = impl_of(a_in), &bi = impl_of(b_in);
  const bool rows = !(ai.contiguous && bi.contiguous) && (ai.contiguous || row_readable(ai)) &&
                    (bi.contiguous || row_readable(bi)) && ai.shape.size() == 2 && ai.shape == bi.shape;
  Tensor a_copy, b_copy;
  const Tensor& a = ai.contiguous || rows ? a_in : (a_copy = dense(a_in));
  const Tensor& b = bi.contiguous || rows ? b_in : (b_copy = dense(b_in));
  return dispatch_floating(a.dtype(), op, [&]<class T>() {
    Tensor out = make_empty(a.shape(), a.dtype());
    if (rows) {
      assign_rows<T>(out, f, RowOperand{&impl_of(a)}, RowOperand{&impl_of(b)});
    } else {
      auto y = flat<T>(out);
      xt::noalias(y) = f(flat<T>(a), flat<T>(b));
    }
    return out;
  });
}

}  // namespace xgrad
