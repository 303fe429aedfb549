// Indexing primitives: index_select and gather (backward scatter-adds, so repeated indices
// accumulate), where, and masked_fill composed from where.
#include <xgrad/core/creation.hpp>
#include <xgrad/core/ops.hpp>

#include "kernels.hpp"
#include "trace_hook.hpp"

namespace xgrad {

namespace {

void require_index(const Tensor& index, const char* op) {
  require_defined(index, op);
  if (index.dtype() != DType::i64)
    throw Error(std::string(op) + ": indices must be int64, got " + std::string(dtype_name(index.dtype())));
}

void check_range(std::int64_t i, std::int64_t n, std::int64_t dim, const char* op) {
  if (i < 0 || i >= n)
    throw Error(std::string(op) + ": index " + std::to_string(i) + " is out of range for dimension " +
                std::to_string(dim) + " with size " + std::to_string(n));
}

// index_select over (outer, n, inner): dst row (o, j) ← src row (o, idx[j]).
template <class T>
void take_rows(const T* src, T* dst, const std::int64_t* idx, std::int64_t count, const AxisSplit& s) {
  for (std::int64_t o = 0; o < s.outer; ++o)
    for (std::int64_t j = 0; j < count; ++j) {
      const T* from = src + (o * s.n + idx[j]) * s.inner;
      std::copy(from, from + s.inner, dst + (o * count + j) * s.inner);
    }
}

// Its backward: acc row (o, idx[j]) += g row (o, j); repeated indices accumulate.
template <class T>
void scatter_add_rows(const T* g, T* acc, const std::int64_t* idx, std::int64_t count, const AxisSplit& s) {
  for (std::int64_t o = 0; o < s.outer; ++o)
    for (std::int64_t j = 0; j < count; ++j) {
      const T* from = g + (o * count + j) * s.inner;
      T* to = acc + (o * s.n + idx[j]) * s.inner;
      for (std::int64_t k = 0; k < s.inner; ++k) to[k] += from[k];
    }
}

// Visits every element of `index` (shape `is`), calling f(flat index position, offset in a
// without the `dim` component). a_strides are a's contiguous strides.
template <class F>
void for_each_gather(const Shape& is, const std::vector<std::int64_t>& a_strides, std::int64_t dim, F f) {
  const std::int64_t total = shape_numel(is);
  const std::size_t rank = is.size();
  std::vector<std::int64_t> idx(rank, 0);
  for (std::int64_t i = 0; i < total; ++i) {
    std::int64_t off = 0;
    for (std::size_t d = 0; d < rank; ++d)
      if (static_cast<std::int64_t>(d) != dim) off += idx[d] * a_strides[d];
    f(i, off);
    for (std::size_t d = rank; d-- > 0;) {
      if (++idx[d] < is[d]) break;
      idx[d] = 0;
    }
  }
}


}  // namespace

Tensor index_select(const Tensor& a_in, std::int64_t dim, const Tensor& index_in) {
  require_defined(a_in, "index_select");
  require_index(index_in, "index_select");
  const Tensor a = dense(a_in), index = dense(index_in);
  if (a.dim() == 0) throw Error("index_select: cannot index a 0-d tensor");
  dim = wrap_dim(dim, a.dim(), "index_select");
  const AxisSplit s = split_at(a.shape(), dim);
  const std::int64_t* idx = impl_of(index).data<std::int64_t>();
  const std::int64_t count = index.numel();
  for (std::int64_t j = 0; j < count; ++j) check_range(idx[j], s.n, dim, "index_select");

  // out shape: a's shape with dimension `dim` replaced by index's shape (numpy's take).
  Shape out_shape(a.shape().begin(), a.shape().begin() + dim);
  out_shape.insert(out_shape.end(), index.shape().begin(), index.shape().end());
  out_shape.insert(out_shape.end(), a.shape().begin() + dim + 1, a.shape().end());
  Tensor out = make_empty(out_shape, a.dtype());
  dispatch_all(a.dtype(), [&]<class T>() {
    take_rows(impl_of(a).data<T>(), impl_of(out).data<T>(), idx, count, s);
  });
  if (!any_requires_grad({&a_in})) return out;
  const Tensor saved_index = index.detach();
  if (trace::tracing()) trace::annotate("index_select", {{"dim", dim}});
  return record_op("index_select", {a_in, index_in}, out, [in_shape = a.shape(), dim, index = saved_index](const Tensor& g_in) {
    const Tensor g = dense(g_in);
    Tensor ga = zeros(in_shape, g.dtype());
    const AxisSplit s = split_at(in_shape, dim);
    dispatch_floating(g.dtype(), "index_select_backward", [&]<class T>() {
      scatter_add_rows(impl_of(g).data<T>(), impl_of(ga).data<T>(), impl_of(index).data<std::int64_t>(), index.numel(), s);
    });
    return Grads{ga, Tensor()};
  }, {saved_index});
}

Tensor gather(const Tensor& a_in, std::int64_t dim, const Tensor& index_in) {
  require_defined(a_in, "gather");
  require_index(index_in, "gather");
  const Tensor a = dense(a_in), index = dense(index_in);
  if (index.dim() != a.dim())
    throw Error("gather: index of shape " + shape_str(index.shape()) + " needs the rank of the input " + shape_str(a.shape()));
  dim = wrap_dim(dim, a.dim(), "gather");
  for (std::int64_t d = 0; d < a.dim(); ++d)
    if (d != dim && index.shape()[d] > a.shape()[d])
      throw Error("gather: index of shape " + shape_str(index.shape()) + " is larger than the input " +
                  shape_str(a.shape()) + " in dimension " + std::to_string(d));
  const std::int64_t* idx = impl_of(index).data<std::int64_t>();
  const std::int64_t n = a.dim() == 0 ? 1 : a.shape()[dim];
  for (std::int64_t j = 0; j < index.numel(); ++j) check_range(idx[j], n, dim, "gather");
  const auto a_strides = contiguous_strides(a.shape());
  const std::int64_t dim_stride = a.dim() == 0 ? 0 : a_strides[dim];

  Tensor out = make_empty(index.shape(), a.dtype());
  dispatch_all(a.dtype(), [&]<class T>() {
    const T* src = impl_of(a).data<T>();
    T* dst = impl_of(out).data<T>();
    for_each_gather(index.shape(), a_strides, dim, [&](std::int64_t i, std::int64_t off) { dst[i] = src[off + idx[i] * dim_stride]; });
  });
  if (!any_requires_grad({&a_in})) return out;
  const Tensor saved_index = index.detach();
  if (trace::tracing()) trace::annotate("gather", {{"dim", dim}});
  return record_op("gather", {a_in, index_in}, out, [in_shape = a.shape(), a_strides, dim, dim_stride, index = saved_index](const Tensor& g_in) {
    const Tensor g = dense(g_in);
    Tensor ga = zeros(in_shape, g.dtype());
    const std::int64_t* idx = impl_of(index).data<std::int64_t>();
    dispatch_floating(g.dtype(), "gather_backward", [&]<class T>() {
      const T* gp = impl_of(g).data<T>();
      T* acc = impl_of(ga).data<T>();
      for_each_gather(index.shape(), a_strides, dim, [&](std::int64_t i, std::int64_t off) { acc[off + idx[i] * dim_stride] += gp[i]; });
    });
    return Grads{ga, Tensor()};
  }, {saved_index});
}

namespace {
// where without the graph: the forward and both gradients use it. Operands are broadcast
// first, then one plain loop (xtensor's vectorised where does not take bool masks).
Tensor where_kernel(const Tensor& cond, const Tensor& a, const Tensor& b) {
  Shape s = broadcast_shapes(broadcast_shapes(cond.shape(), a.shape(), "where"), b.shape(), "where");
  Tensor c = expand(cond.detach(), s), x = expand(a.detach(), s), y = expand(b.detach(), s);
  Tensor out = make_empty(s, a.dtype());
  const TensorImpl &ci = impl_of(c), &xi = impl_of(x), &yi = impl_of(y);
  dispatch_all(a.dtype(), [&]<class T>() {
    const bool* cp = ci.raw<bool>();
    const T *xp = xi.raw<T>(), *yp = yi.raw<T>();
    T* o = impl_of(out).data<T>();
    std::int64_t i = 0;
    for_each_offsets<3>(s, {&ci.strides, &xi.strides, &yi.strides},
                        [&](const std::array<std::int64_t, 3>& p) { o[i++] = cp[p[0]] ? xp[p[1]] : yp[p[2]]; });
  });
  return out;
}
}  // namespace

Tensor where(const Tensor& cond_in, const Tensor& a, const Tensor& b) {
  require_defined(cond_in, "where");
  require_same_dtype(a, b, "where");
  Tensor cond = cond_in.dtype() == DType::b8 ? cond_in : ne(cond_in, zeros({}, cond_in.dtype()));
  Tensor out = where_kernel(cond, a, b);
  if (!any_requires_grad({&a, &b})) return out;
  // cond is an input too (never differentiated), so that a tracer sees where it came from.
  return record_op("where", {cond, a, b}, out, [cond](const Tensor& g) {
    Tensor zero = zeros({}, g.dtype());
    return Grads{Tensor(), where_kernel(cond, g, zero), where_kernel(cond, zero, g)};
  }, {cond});
}

Tensor masked_fill(const Tensor& a, const Tensor& mask, double value) {
  require_defined(a, "masked_fill");
  require_defined(mask, "masked_fill");
  if (broadcast_shapes(a.shape(), mask.shape(), "masked_fill") != a.shape())
    throw Error("masked_fill: mask of shape " + shape_str(mask.shape()) + " does not broadcast to " + shape_str(a.shape()));
  require_fits(value, a.dtype(), "masked_fill");
  return where(mask, full({}, value, a.dtype()), a);
}

}  // namespace xgrad
