// Reductions: sum (and sum_to, the one unbroadcast helper), max / min with indices,
// logsumexp; mean and var are composed from them.
#include <xgrad/core/autograd.hpp>
#include <xgrad/core/creation.hpp>
#include <xgrad/core/ops.hpp>

#include <algorithm>
#include <cmath>
#include <limits>

#include "kernels.hpp"
#include "trace_hook.hpp"

namespace xgrad {

namespace {

// Normalised, sorted, unique dims; an empty list means every dim.
std::vector<std::int64_t> normalize_dims(const std::vector<std::int64_t>& dims, std::int64_t rank, const char* op) {
  std::vector<std::int64_t> out;
  if (dims.empty()) {
    for (std::int64_t d = 0; d < rank; ++d) out.push_back(d);
    return out;
  }
  for (auto d : dims) out.push_back(wrap_dim(d, rank, op, /*scalar_ok=*/true));
  std::sort(out.begin(), out.end());
  if (std::adjacent_find(out.begin(), out.end()) != out.end()) throw Error(std::string(op) + ": a dim appears twice");
  if (rank == 0) out.clear();  // dim 0 / -1 of a scalar reduces nothing
  return out;
}

Shape dropped_shape(const Shape& s, const std::vector<std::int64_t>& dims) {
  Shape out;
  for (std::size_t d = 0; d < s.size(); ++d)
    if (!std::binary_search(dims.begin(), dims.end(), static_cast<std::int64_t>(d))) out.push_back(s[d]);
  return out;
}

// A view of `t` with another shape of the same size (no graph).
Tensor with_shape(const Tensor& t, const Shape& s) {
  const TensorImpl& im = impl_of(t);
  return Tensor(make_pooled<TensorImpl>(im.storage, s, contiguous_strides(s), im.offset, im.dtype));
}

enum class Kind { sum, max, min };

// Σ value(i) for i < n, f32 accumulated in double so that long sums keep their precision.
// Independent partial sums (kLanes of them, added pairwise at the end) let the compiler
// vectorise the loop and keep several additions in flight: one running sum is a chain of
// dependent additions, several times slower on long sums (an MSE's).
template <class T, class Value>
auto sum_lanes(std::int64_t n, Value value) {
  using Acc = std::conditional_t<std::is_same_v<T, float>, double, T>;
  constexpr std::int64_t kLanes = 32;
  Acc lanes[kLanes] = {};
  std::int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (std::int64_t j = 0; j < kLanes; ++j) lanes[j] += static_cast<Acc>(value(i + j));
  for (std::int64_t j = 0; i < n; ++i, ++j) lanes[j] += static_cast<Acc>(value(i));
  for (std::int64_t width = kLanes / 2; width > 0; width /= 2)
    for (std::int64_t j = 0; j < width; ++j) lanes[j] += lanes[j + width];
  return lanes[0];
}

// Reduces one axis of an (outer, n, inner) layout; the result keeps the axis as extent 1.
template <class T>
Tensor reduce_axis(const Tensor& a, std::int64_t dim, Kind kind) {
  Shape s = a.shape();
  const AxisSplit sp = split_at(s, dim);
  s[dim] = 1;
  Tensor out = make_empty(s, a.dtype());
  const T* src = impl_of(a).data<T>();
  T* dst = impl_of(out).data<T>();
  for (std::int64_t o = 0; o < sp.outer; ++o) {
    const T* block = src + o * sp.n * sp.inner;
    T* row = dst + o * sp.inner;
    if (kind == Kind::sum && sp.inner == 1) {
      row[0] = static_cast<T>(sum_lanes<T>(sp.n, [block](std::int64_t i) { return block[i]; }));
      continue;
    }
    std::copy(block, block + sp.inner, row);
    for (std::int64_t i = 1; i < sp.n; ++i) {
      const T* line = block + i * sp.inner;
      for (std::int64_t k = 0; k < sp.inner; ++k) {
        if (kind == Kind::sum) row[k] += line[k];
        else if (kind == Kind::max) row[k] = std::max(row[k], line[k]);
        else row[k] = std::min(row[k], line[k]);
      }
    }
  }
  return out;
}

// The reduction of a tensor with no elements, made directly: reducing one dim at a time
// would make intermediates as large as the other extents ([N, 0, 0] summed over dim 1 first
// is [N, 1, 0], over dim 2 first [N, 0, 1] and then [N, 1, 1]: N elements for a scalar).
// Empty dims reduce to the identity: 0 for sum, -inf / +inf for max / min of floats.
Tensor reduce_empty(const Tensor& a, const std::vector<std::int64_t>& dims, Kind kind, const char* op) {
  Shape keep = a.shape();
  for (auto d : dims) keep[d] = 1;
  if (kind == Kind::sum) return zeros(keep, a.dtype());
  if (shape_numel(keep) > 0 && !is_floating(a.dtype()))
    throw Error(std::string(op) + ": cannot take the maximum or minimum over an empty dimension of " +
                shape_str(a.shape()));
  const double inf = std::numeric_limits<double>::infinity();
  return full(keep, kind == Kind::max ? -inf : inf, a.dtype());
}

// Reduces `dims` (normalised), keeping them as extent 1. No graph.
Tensor reduce_kernel(const Tensor& a, const std::vector<std::int64_t>& dims, Kind kind, const char* op) {
  if (dims.empty()) return a.detach().clone();
  if (a.numel() == 0) return reduce_empty(a, dims, kind, op);
  Tensor x = dense(a);
  for (auto it = dims.rbegin(); it != dims.rend(); ++it)
    x = dispatch_numeric(x.dtype(), op, [&]<class T>() { return reduce_axis<T>(x, *it, kind); });
  return x;
}

// max / min along one dim with the index of the first extreme element (NaN wins, as PyTorch).
template <class T>
std::pair<Tensor, Tensor> extreme_with_index(const Tensor& a, std::int64_t dim, bool is_max) {
  Shape s = a.shape();
  const AxisSplit sp = split_at(s, dim);
  s[dim] = 1;
  Tensor values = make_empty(s, a.dtype()), indices = make_empty(s, DType::i64);
  const T* src = impl_of(a).data<T>();
  T* v = impl_of(values).data<T>();
  std::int64_t* ix = impl_of(indices).data<std::int64_t>();
  for (std::int64_t o = 0; o < sp.outer; ++o)
    for (std::int64_t k = 0; k < sp.inner; ++k) {
      const T* p = src + o * sp.n * sp.inner + k;
      std::int64_t best = 0;
      for (std::int64_t i = 1; i < sp.n; ++i) {
        T x = p[i * sp.inner], b = p[best * sp.inner];
        if constexpr (std::is_floating_point_v<T>)
          if (std::isnan(b)) break;
        bool better = is_max ? x > b : x < b;
        if constexpr (std::is_floating_point_v<T>) better = better || std::isnan(x);
        if (better) best = i;
      }
      v[o * sp.inner + k] = p[best * sp.inner];
      ix[o * sp.inner + k] = best;
    }
  return {values, indices};
}

std::pair<Tensor, Tensor> extreme(const Tensor& a, std::int64_t dim, bool keepdim, bool is_max) {
  const char* op = is_max ? "max" : "min";
  require_defined(a, op);
  Tensor x = dense(a.dim() == 0 ? reshape(a.detach(), {1}) : a.detach());
  dim = wrap_dim(dim, a.dim(), op, /*scalar_ok=*/true);
  if (x.shape()[dim] == 0)
    throw Error(std::string(op) + ": cannot reduce dimension " + std::to_string(dim) + " of size 0 in " + shape_str(a.shape()));
  auto [values, indices] = dispatch_numeric(x.dtype(), op, [&]<class T>() { return extreme_with_index<T>(x, dim, is_max); });
  const Shape keep_shape = values.shape();
  if (!keepdim || a.dim() == 0) {
    Shape s = a.dim() == 0 ? Shape{} : dropped_shape(keep_shape, {dim});
    values = with_shape(values, s);
    indices = with_shape(indices, s);
  }
  if (!any_requires_grad({&a})) return {values, indices};
  // The gradient goes to the chosen element of each slice.
  const Tensor saved_indices = indices.detach();
  if (trace::tracing()) trace::annotate(op, {{"dim", dim}, {"keepdim", std::int64_t{keepdim && a.dim() != 0}}});
  values = record_op(op, {a}, values, [in_shape = x.shape(), a_shape = a.shape(), keep_shape, dim, idx = saved_indices](const Tensor& g_in) {
    const Tensor g = dense(g_in);
    Tensor ga = zeros(in_shape, g.dtype());
    const AxisSplit sp = split_at(in_shape, dim);
    const std::int64_t* ip = impl_of(idx).data<std::int64_t>();
    dispatch_floating(g.dtype(), "max_backward", [&]<class T>() {
      const T* gp = impl_of(g).data<T>();
      T* acc = impl_of(ga).data<T>();
      for (std::int64_t o = 0; o < sp.outer; ++o)
        for (std::int64_t k = 0; k < sp.inner; ++k)
          acc[(o * sp.n + ip[o * sp.inner + k]) * sp.inner + k] += gp[o * sp.inner + k];
    });
    return Grads{with_shape(ga, a_shape)};
  }, {saved_indices});
  return {values, indices};
}

}  // namespace

Tensor sum(const Tensor& a, const std::vector<std::int64_t>& dims_in, bool keepdim) {
  require_defined(a, "sum");
  const auto dims = normalize_dims(dims_in, a.dim(), "sum");
  Tensor x = is_floating(a.dtype()) ? a : a.detach().to(DType::i64);
  Tensor out = reduce_kernel(x, dims, Kind::sum, "sum");
  const Shape keep_shape = out.shape();
  if (!keepdim) out = with_shape(out, dropped_shape(keep_shape, dims));
  if (!any_requires_grad({&a})) return out;
  if (trace::tracing()) trace::annotate("sum", {{"dims", dims}, {"keepdim", std::int64_t{keepdim}}});
  return record_op("sum", {a}, out, [keep_shape, in_shape = a.shape()](const Tensor& g) {
    return Grads{expand(reshape(g, keep_shape), in_shape)};
  }, {});
}

Tensor sum(const Tensor& a) { return sum(a, {}, false); }

Tensor mean(const Tensor& a, const std::vector<std::int64_t>& dims_in, bool keepdim) {
  require_floating(a, "mean");
  const auto dims = normalize_dims(dims_in, a.dim(), "mean");
  std::int64_t count = 1;
  for (auto d : dims) count *= a.shape()[d];
  if (count == 0) throw Error("mean: cannot average over an empty dimension of " + shape_str(a.shape()));
  return sum(a, dims, keepdim) * (1.0 / static_cast<double>(count));
}

Tensor mean(const Tensor& a) { return mean(a, {}, false); }

Tensor var(const Tensor& a, const std::vector<std::int64_t>& dims_in, bool unbiased, bool keepdim) {
  require_floating(a, "var");
  const auto dims = normalize_dims(dims_in, a.dim(), "var");
  std::int64_t count = 1;
  for (auto d : dims) count *= a.shape()[d];
  if (count - (unbiased ? 1 : 0) <= 0)
    throw Error("var: not enough elements (" + std::to_string(count) + ") in " + shape_str(a.shape()));
  Tensor centered = a - mean(a, dims, true);
  return sum(centered * centered, dims, keepdim) * (1.0 / static_cast<double>(count - (unbiased ? 1 : 0)));
}

std::pair<Tensor, Tensor> max(const Tensor& a, std::int64_t dim, bool keepdim) { return extreme(a, dim, keepdim, true); }
std::pair<Tensor, Tensor> min(const Tensor& a, std::int64_t dim, bool keepdim) { return extreme(a, dim, keepdim, false); }
Tensor max(const Tensor& a) {
  require_defined(a, "max");
  return reshape(extreme(reshape(a, {-1}), 0, false, true).first, {});
}
Tensor min(const Tensor& a) {
  require_defined(a, "min");
  return reshape(extreme(reshape(a, {-1}), 0, false, false).first, {});
}
Tensor argmax(const Tensor& a, std::int64_t dim, bool keepdim) { return extreme(a.detach(), dim, keepdim, true).second; }
Tensor argmin(const Tensor& a, std::int64_t dim, bool keepdim) { return extreme(a.detach(), dim, keepdim, false).second; }

Tensor logsumexp(const Tensor& a, const std::vector<std::int64_t>& dims_in, bool keepdim) {
  require_floating(a, "logsumexp");
  const auto dims = normalize_dims(dims_in, a.dim(), "logsumexp");
  Tensor x = dense(a.detach());
  // m = max over dims (0 where it is ±inf, so that x - m never makes NaN); out = m + ln Σ e^(x-m)
  Tensor m = reduce_kernel(x, dims, Kind::max, "logsumexp");
  dispatch_floating(m.dtype(), "logsumexp", [&]<class T>() {
    T* p = impl_of(m).data<T>();
    for (std::int64_t i = 0; i < m.numel(); ++i)
      if (!std::isfinite(p[i])) p[i] = T(0);
  });
  Tensor out = add(log(reduce_kernel(exp(sub(x, m)), dims, Kind::sum, "logsumexp")), m);
  const Shape keep_shape = out.shape();
  if (!keepdim) out = with_shape(out, dropped_shape(keep_shape, dims));
  if (!any_requires_grad({&a})) return out;
  // d/dx = e^(x - out): the softmax over dims.
  const Tensor y = with_shape(out, keep_shape);
  if (trace::tracing()) trace::annotate("logsumexp", {{"dims", dims}, {"keepdim", std::int64_t{keepdim}}});
  return record_op("logsumexp", {a}, out, [x, keep_shape, y](const Tensor& g) {
    return Grads{reshape(g, keep_shape) * exp(x - y)};
  }, {x, y});
}

// Σ (a − b)², the sum behind mse_loss: one pass forward, which also keeps a − b for the
// gradient 2g·(a − b), one pass backward. Composed, (a − b)² then sum takes three passes
// forward and three backward (the size-M benchmark's output is 6.5 MB).
Tensor sum_squared_difference(const Tensor& a, const Tensor& b) {
  constexpr const char* op = "sum_squared_difference";
  require_defined(a, op);
  require_defined(b, op);
  require_same_dtype(a, b, op);
  require_floating(a, op);
  if (a.shape() != b.shape())
    throw Error(std::string(op) + ": the operands must have one shape, got " + shape_str(a.shape()) + " and " +
                shape_str(b.shape()));
  const Tensor x = dense(a.detach()), y = dense(b.detach());
  const bool na = a.requires_grad(), nb = b.requires_grad(), keep = na || nb;
  Tensor diff = keep ? make_empty(x.shape(), x.dtype()) : Tensor();
  Tensor out = dispatch_floating(a.dtype(), op, [&]<class T>() {
    const T* p = impl_of(x).data<T>();
    const T* q = impl_of(y).data<T>();
    T* d = keep ? impl_of(diff).data<T>() : nullptr;
    auto squares = [&](auto keep_diff) {
      return sum_lanes<T>(x.numel(), [&](std::int64_t i) {
        const T e = p[i] - q[i];
        if constexpr (decltype(keep_diff)::value) d[i] = e;
        return e * e;
      });
    };
    const auto total = keep ? squares(std::true_type{}) : squares(std::false_type{});
    return full({}, static_cast<double>(total), a.dtype());
  });
  if (!keep && !any_requires_grad({&a, &b})) return out;  // a tracer sees it either way
  return record_op(op, {a, b}, out, [diff, na, nb](const Tensor& g) {
    const double scale = 2.0 * g.item();
    Tensor ga = map1(diff, "sum_squared_difference_backward",
                     [scale](auto&& d) { return d * static_cast<value_of<decltype(d)>>(scale); });
    return Grads{na ? ga : Tensor(), nb ? neg(ga) : Tensor()};
  }, {diff});
}

Tensor sum_to(const Tensor& grad, const Shape& shape) {
  require_defined(grad, "sum_to");
  if (grad.shape() == shape) return grad;
  const Shape& gs = grad.shape();
  const std::int64_t lead = static_cast<std::int64_t>(gs.size()) - static_cast<std::int64_t>(shape.size());
  if (lead < 0) throw Error("sum_to: cannot reduce " + shape_str(gs) + " to " + shape_str(shape));
  std::vector<std::int64_t> dims;
  for (std::int64_t d = 0; d < lead; ++d) dims.push_back(d);
  for (std::size_t i = 0; i < shape.size(); ++i) {
    const std::int64_t g = gs[lead + i];
    if (shape[i] == g) continue;
    if (shape[i] != 1) throw Error("sum_to: cannot reduce " + shape_str(gs) + " to " + shape_str(shape));
    dims.push_back(lead + static_cast<std::int64_t>(i));
  }
  if (dims.empty()) return reshape(grad, shape);
  return reshape(sum(grad, dims, true), shape);
}

}  // namespace xgrad
