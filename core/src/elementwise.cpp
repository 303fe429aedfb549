// Binary elementwise primitives (add, sub, mul, div, pow), neg, and the comparisons.
// Operands broadcast with numpy's rules; the engine reduces each gradient back to its
// operand's shape with sum_to, so no backward here deals with broadcasting.
#include <xgrad/core/creation.hpp>
#include <xgrad/core/ops.hpp>

#include <cmath>

#include <fmt/format.h>

#include "kernels.hpp"
#include "trace_hook.hpp"

namespace xgrad {

Shape broadcast_shapes(const Shape& a, const Shape& b, std::string_view op) {
  const std::size_t rank = std::max(a.size(), b.size());
  Shape out(rank);
  for (std::size_t i = 0; i < rank; ++i) {
    std::int64_t x = i < rank - a.size() ? 1 : a[i - (rank - a.size())];
    std::int64_t y = i < rank - b.size() ? 1 : b[i - (rank - b.size())];
    if (x != y && x != 1 && y != 1)
      throw Error(std::string(op) + ": shapes " + shape_str(a) + " and " + shape_str(b) + " cannot be broadcast");
    out[i] = x == 1 ? y : x;
  }
  return out;
}

namespace {

// A 2-D operand as rows for a binary kernel: its own rows (row_readable or contiguous, of the
// output's shape), or one row repeated (a (C) or (1, C) operand broadcast over the rows).
bool as_row_operand(const TensorImpl& im, const Shape& out, RowOperand& r) {
  r.im = &im;
  if (im.shape == out) {
    r.repeated = im.strides[0] == 0 && im.strides[1] == 1;  // expanded along the rows
    return r.repeated || im.contiguous || row_readable(im);
  }
  const bool row = (im.shape.size() == 1 && im.shape[0] == out[1]) ||
                   (im.shape.size() == 2 && im.shape[0] == 1 && im.shape[1] == out[1]);
  r.repeated = row && (im.contiguous || im.strides.back() == 1);
  return r.repeated;
}

// out = f(a, b) row by row, reading strided rows in place, for a 2-D output whose operands
// are row_readable views of its shape or a row broadcast over it (a bias): the gate blocks and
// bias adds of a recurrent step, with no dense copy first. False (nothing done) otherwise.
template <class T, class R, class F>
bool rows_in_place(const Tensor& out, const Tensor& a, const Tensor& b, F f) {
  const TensorImpl &ai = impl_of(a), &bi = impl_of(b);
  const Shape& shape = out.shape();
  if (shape.size() != 2 || shape[1] < kMinRow || (ai.contiguous && bi.contiguous && ai.shape == bi.shape)) return false;
  RowOperand ra, rb;
  if (!as_row_operand(ai, shape, ra) || !as_row_operand(bi, shape, rb)) return false;
  assign_rows<T, R>(out, f, ra, rb);
  return true;
}

// out = f(a, b) elementwise, where f takes xtensor expressions (or a scalar as either side).
// Same shapes and scalar operands take flat, vectorised paths; other shapes broadcast.
// noalias: out is fresh, so xtensor may write into it directly instead of a temporary.
// Expanded operands are read from the tensor they expand (broadcasting again, no copy); other
// strided operands are copied densely first, one plain pass, far cheaper than xtensor's
// stepper over arbitrary strides.
template <class T, class R, class F>
Tensor binary_kernel(const Tensor& a_in, const Tensor& b_in, DType out_dtype, const char* op, F f) {
  // Same shapes, the common case, skip broadcast_shapes: each call was a Shape allocation.
  const Shape& as = a_in.shape();
  Shape broadcast;
  Tensor out = make_empty(as == b_in.shape() ? as : (broadcast = broadcast_shapes(as, b_in.shape(), op)), out_dtype);
  if (out.numel() == 0) return out;  // nothing to compute, whatever the other extents
  if (rows_in_place<T, R>(out, a_in, b_in, f)) return out;
  // Operands by reference unless they must be compacted or copied: copying a Tensor handle
  // is two atomic operations, per operand and op.
  Tensor a_copy, b_copy;
  const Tensor* ap = impl_of(a_in).contiguous ? &a_in : &(a_copy = compact(a_in));
  const Tensor* bp = impl_of(b_in).contiguous ? &b_in : &(b_copy = compact(b_in));
  const Shape& os = out.shape();
  if ((ap->shape() != os || bp->shape() != os) && broadcast_shapes(ap->shape(), bp->shape(), op) != os) {  // both were expanded in one dim
    ap = &(a_copy = dense(a_in));
    bp = &(b_copy = dense(b_in));
  }
  const Tensor &a = *ap, &b = *bp;
  if (a.shape() == b.shape()) {
    auto o = flat<R>(out);
    xt::noalias(o) = f(flat<T>(a), flat<T>(b));
  } else if (b.numel() == 1 && out.shape() == a.shape()) {
    auto o = flat<R>(out);
    xt::noalias(o) = f(flat<T>(a), impl_of(b).data<T>()[0]);
  } else if (a.numel() == 1 && out.shape() == b.shape()) {
    auto o = flat<R>(out);
    xt::noalias(o) = f(impl_of(a).data<T>()[0], flat<T>(b));
  } else {
    auto o = nd<R>(out);
    xt::noalias(o) = f(nd<T>(a), nd<T>(b));
  }
  return out;
}

template <class F>
Tensor arithmetic(const Tensor& a, const Tensor& b, const char* op, F f) {
  require_same_dtype(a, b, op);
  return dispatch_numeric(a.dtype(), op, [&]<class T>() { return binary_kernel<T, T>(a, b, a.dtype(), op, f); });
}

template <class F>
Tensor floating(const Tensor& a, const Tensor& b, const char* op, F f) {
  require_same_dtype(a, b, op);
  return dispatch_floating(a.dtype(), op, [&]<class T>() { return binary_kernel<T, T>(a, b, a.dtype(), op, f); });
}

template <class F>
Tensor compare(const Tensor& a, const Tensor& b, const char* op, F f) {
  require_same_dtype(a, b, op);
  Tensor out = dispatch_numeric(a.dtype(), op, [&]<class T>() { return binary_kernel<T, bool>(a, b, DType::b8, op, f); });
  // Not differentiable, so never recorded; a tracer still sees it (a mask made from an input).
  trace::report(op, {a, b}, &out, 1);
  return out;
}

// A 0-d tensor of t's dtype. A fractional number with an integer tensor would be truncated
// silently (PyTorch promotes to float instead), so it is an error.
Tensor scalar_like(double value, const Tensor& t, const char* op) {
  require_defined(t, op);
  require_fits(value, t.dtype(), op);
  if (!is_floating(t.dtype()) && value != std::trunc(value))
    throw Error(std::string(op) + ": the number " + fmt::format("{}", value) + " would be truncated to fit a " +
                std::string(dtype_name(t.dtype())) + " tensor; convert the tensor with to(DType::f32) first");
  return scalar(value, t.dtype());
}

}  // namespace

Tensor add(const Tensor& a, const Tensor& b) {
  Tensor out = arithmetic(a, b, "add", [](auto&& x, auto&& y) { return x + y; });
  if (!any_requires_grad({&a, &b})) return out;
  return record_op("add", {a, b}, out, [](const Tensor& g) { return Grads{g, g}; }, {});
}

Tensor sub(const Tensor& a, const Tensor& b) {
  Tensor out = arithmetic(a, b, "sub", [](auto&& x, auto&& y) { return x - y; });
  if (!any_requires_grad({&a, &b})) return out;
  return record_op("sub", {a, b}, out, [nb = b.requires_grad()](const Tensor& g) {
    return Grads{g, nb ? neg(g) : Tensor()};
  }, {});
}

Tensor mul(const Tensor& a, const Tensor& b) {
  Tensor out = arithmetic(a, b, "mul", [](auto&& x, auto&& y) { return x * y; });
  if (!any_requires_grad({&a, &b})) return out;
  // Each gradient needs the other operand: save only what will be read.
  const bool na = a.requires_grad(), nb = b.requires_grad();
  Tensor sa = nb ? a.detach() : Tensor(), sb = na ? b.detach() : Tensor();
  return record_op("mul", {a, b}, out, [sa, sb](const Tensor& g) {
    return Grads{sb.defined() ? g * sb : Tensor(), sa.defined() ? g * sa : Tensor()};
  }, {sa, sb});
}

Tensor div(const Tensor& a, const Tensor& b) {
  Tensor out = floating(a, b, "div", [](auto&& x, auto&& y) { return x / y; });
  if (!any_requires_grad({&a, &b})) return out;
  const bool nb = b.requires_grad();
  // d(a/b)/da = 1/b; d(a/b)/db = -(a/b)/b = -out/b.
  const Tensor sb = b.detach(), so = nb ? out.detach() : Tensor();
  return record_op("div", {a, b}, out, [sb, so](const Tensor& g) {
    Tensor ga = g / sb;
    return Grads{ga, so.defined() ? neg(ga * so) : Tensor()};
  }, {sb, so});
}

Tensor neg(const Tensor& a_in) {
  require_defined(a_in, "neg");
  const Tensor a = dense(a_in);
  Tensor out = dispatch_numeric(a.dtype(), "neg", [&]<class T>() {
    Tensor o = make_empty(a.shape(), a.dtype());
    auto y = flat<T>(o);
    xt::noalias(y) = -flat<T>(a);
    return o;
  });
  if (!any_requires_grad({&a_in})) return out;
  return record_op("neg", {a_in}, out, [](const Tensor& g) { return Grads{neg(g)}; }, {});
}

Tensor pow(const Tensor& a, double exponent) {
  require_floating(a, "pow");
  Tensor e = scalar_like(exponent, a, "pow");
  Tensor out = floating(a, e, "pow", [](auto&& x, auto&& y) { return xt::pow(x, y); });
  if (!any_requires_grad({&a})) return out;
  // d(a^p)/da = p·a^(p-1)
  const Tensor sa = a.detach();
  if (trace::tracing()) trace::annotate("pow", {{"exponent", exponent}});
  return record_op("pow", {a}, out, [sa, exponent](const Tensor& g) {
    return Grads{g * (exponent * pow(sa, exponent - 1.0))};
  }, {sa});
}

Tensor pow(const Tensor& a, const Tensor& b) {
  Tensor out = floating(a, b, "pow_tensor", [](auto&& x, auto&& y) { return xt::pow(x, y); });
  if (!any_requires_grad({&a, &b})) return out;
  // d(a^b)/da = b·a^(b-1); d(a^b)/db = a^b·ln a.
  const bool na = a.requires_grad(), nb = b.requires_grad();
  const Tensor sa = a.detach(), sb = b.detach(), so = nb ? out.detach() : Tensor();
  return record_op("pow_tensor", {a, b}, out,
                   [sa, sb, so, na](const Tensor& g) {
                     return Grads{na ? g * sb * pow(sa, sb - 1.0) : Tensor(),
                                                so.defined() ? g * so * log(sa) : Tensor()};
                   },
                   {sa, sb, so});
}

namespace {

// lerp's gradients in one pass, each wanted one written: one instantiation per combination
// keeps the loop branch-free, and restrict (the buffers are distinct) lets it vectorise.
template <class T, bool S, bool E, bool W>
void lerp_backward(std::int64_t n, const T* __restrict g, const T* __restrict start, const T* __restrict end,
                   const T* __restrict weight, T* __restrict gs, T* __restrict ge, T* __restrict gw) {
  for (std::int64_t i = 0; i < n; ++i) {
    if constexpr (S) gs[i] = g[i] * (T(1) - weight[i]);
    if constexpr (E) ge[i] = g[i] * weight[i];
    if constexpr (W) gw[i] = g[i] * (end[i] - start[i]);
  }
}

}  // namespace

// start + weight·(end − start), torch.lerp's documented formula (a GRU's new state is
// lerp(n, h, z)): one pass forward and one backward, where sub, mul and add take three each
// and keep end − start alive for mul's backward. Operands broadcast; those of another shape
// are expanded densely first, except a weight of one element (a scalar), kept as a number.
// Backward keeps what it reads, as PyTorch: the weight for start's and end's gradients,
// start and end for the weight's.
Tensor lerp(const Tensor& start, const Tensor& end, const Tensor& weight) {
  constexpr const char* op = "lerp";
  require_defined(start, op);
  require_defined(end, op);
  require_defined(weight, op);
  require_same_dtype(start, end, op);
  require_same_dtype(start, weight, op);
  require_floating(start, op);
  const Shape shape = broadcast_shapes(broadcast_shapes(start.shape(), end.shape(), op), weight.shape(), op);
  auto full_dense = [&](const Tensor& t) { return dense(t.shape() == shape ? t.detach() : expand(t.detach(), shape)); };
  const Tensor s = full_dense(start), e = full_dense(end);
  const bool scalar_weight = weight.numel() == 1;
  const double wv = scalar_weight ? weight.item() : 0.0;
  const Tensor w = scalar_weight ? Tensor() : full_dense(weight);
  Tensor out = dispatch_floating(s.dtype(), op, [&]<class T>() {
    Tensor o = make_empty(shape, s.dtype());
    auto y = flat<T>(o);
    if (scalar_weight) xt::noalias(y) = flat<T>(s) + static_cast<T>(wv) * (flat<T>(e) - flat<T>(s));
    else xt::noalias(y) = flat<T>(s) + flat<T>(w) * (flat<T>(e) - flat<T>(s));
    return o;
  });
  if (!any_requires_grad({&start, &end, &weight})) return out;
  const bool ns = start.requires_grad(), ne = end.requires_grad(), nw = weight.requires_grad();
  const Tensor saved_s = nw ? s : Tensor(), saved_e = nw ? e : Tensor(), saved_w = ns || ne ? w : Tensor();
  return record_op(op, {start, end, weight}, out, [s = saved_s, e = saved_e, w = saved_w, wv, ns, ne, nw](const Tensor& g_in) {
    const Tensor g = dense(g_in);
    // d/dstart = 1 − weight, d/dend = weight, d/dweight = end − start; the engine sums each
    // down to its input's shape.
    Tensor gs = ns ? make_empty(g.shape(), g.dtype()) : Tensor();
    Tensor ge = ne ? make_empty(g.shape(), g.dtype()) : Tensor();
    Tensor gw = nw ? make_empty(g.shape(), g.dtype()) : Tensor();
    dispatch_floating(g.dtype(), "lerp_backward", [&]<class T>() {
      auto data = [](const Tensor& t) { return t.defined() ? impl_of(t).data<T>() : static_cast<T*>(nullptr); };
      const T *gp = data(g), *sp = data(s), *ep = data(e), *wp = data(w);
      T *gsp = data(gs), *gep = data(ge), *gwp = data(gw);
      const std::int64_t n = g.numel();
      if (!w.defined()) {  // a scalar weight: start's and end's gradients are g scaled
        const auto v = static_cast<T>(wv);
        if (ns) {
          auto y = flat<T>(gs);
          xt::noalias(y) = flat<T>(g) * (T(1) - v);
        }
        if (ne) {
          auto y = flat<T>(ge);
          xt::noalias(y) = flat<T>(g) * v;
        }
        if (nw) lerp_backward<T, false, false, true>(n, gp, sp, ep, wp, gsp, gep, gwp);
      } else if (ns && ne && nw) lerp_backward<T, true, true, true>(n, gp, sp, ep, wp, gsp, gep, gwp);
      else if (ns && ne) lerp_backward<T, true, true, false>(n, gp, sp, ep, wp, gsp, gep, gwp);
      else if (ns && nw) lerp_backward<T, true, false, true>(n, gp, sp, ep, wp, gsp, gep, gwp);
      else if (ne && nw) lerp_backward<T, false, true, true>(n, gp, sp, ep, wp, gsp, gep, gwp);
      else if (ns) lerp_backward<T, true, false, false>(n, gp, sp, ep, wp, gsp, gep, gwp);
      else if (ne) lerp_backward<T, false, true, false>(n, gp, sp, ep, wp, gsp, gep, gwp);
      else lerp_backward<T, false, false, true>(n, gp, sp, ep, wp, gsp, gep, gwp);
    });
    return Grads{gs, ge, gw};
  }, {saved_s, saved_e, saved_w});
}

Tensor lerp(const Tensor& start, const Tensor& end, double weight) {
  require_defined(start, "lerp");
  return lerp(start, end, scalar_like(weight, start, "lerp"));
}

Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
Tensor operator-(const Tensor& a) { return neg(a); }
Tensor operator+(const Tensor& a, double b) { return add(a, scalar_like(b, a, "add")); }
Tensor operator-(const Tensor& a, double b) { return sub(a, scalar_like(b, a, "sub")); }
Tensor operator*(const Tensor& a, double b) { return mul(a, scalar_like(b, a, "mul")); }
Tensor operator/(const Tensor& a, double b) { return div(a, scalar_like(b, a, "div")); }
Tensor operator+(double a, const Tensor& b) { return add(scalar_like(a, b, "add"), b); }
Tensor operator-(double a, const Tensor& b) { return sub(scalar_like(a, b, "sub"), b); }
Tensor operator*(double a, const Tensor& b) { return mul(scalar_like(a, b, "mul"), b); }
Tensor operator/(double a, const Tensor& b) { return div(scalar_like(a, b, "div"), b); }

Tensor eq(const Tensor& a, const Tensor& b) { return compare(a, b, "eq", [](auto&& x, auto&& y) { return xt::equal(x, y); }); }
Tensor ne(const Tensor& a, const Tensor& b) { return compare(a, b, "ne", [](auto&& x, auto&& y) { return xt::not_equal(x, y); }); }
Tensor lt(const Tensor& a, const Tensor& b) { return compare(a, b, "lt", [](auto&& x, auto&& y) { return xt::less(x, y); }); }
Tensor le(const Tensor& a, const Tensor& b) { return compare(a, b, "le", [](auto&& x, auto&& y) { return xt::less_equal(x, y); }); }
Tensor gt(const Tensor& a, const Tensor& b) { return compare(a, b, "gt", [](auto&& x, auto&& y) { return xt::greater(x, y); }); }
Tensor ge(const Tensor& a, const Tensor& b) { return compare(a, b, "ge", [](auto&& x, auto&& y) { return xt::greater_equal(x, y); }); }

Tensor eq(const Tensor& a, double b) { return eq(a, scalar_like(b, a, "eq")); }
Tensor ne(const Tensor& a, double b) { return ne(a, scalar_like(b, a, "ne")); }
Tensor lt(const Tensor& a, double b) { return lt(a, scalar_like(b, a, "lt")); }
Tensor le(const Tensor& a, double b) { return le(a, scalar_like(b, a, "le")); }
Tensor gt(const Tensor& a, double b) { return gt(a, scalar_like(b, a, "gt")); }
Tensor ge(const Tensor& a, double b) { return ge(a, scalar_like(b, a, "ge")); }
Tensor operator<(const Tensor& a, double b) { return lt(a, b); }
Tensor operator<=(const Tensor& a, double b) { return le(a, b); }
Tensor operator>(const Tensor& a, double b) { return gt(a, b); }
Tensor operator>=(const Tensor& a, double b) { return ge(a, b); }

bool has_nonfinite(const Tensor& a) {
  require_defined(a, "has_nonfinite");
  if (!is_floating(a.dtype())) return false;
  const Tensor x = dense(a);
  return dispatch_floating(a.dtype(), "has_nonfinite", [&]<class T>() {
    const T* p = impl_of(x).data<T>();
    for (std::int64_t i = 0; i < impl_of(x).numel; ++i)
      if (!std::isfinite(p[i])) return true;
    return false;
  });
}

bool allclose(const Tensor& a, const Tensor& b, double rtol, double atol) {
  require_defined(a, "allclose");
  require_defined(b, "allclose");
  if (a.shape() != b.shape()) return false;
  auto x = a.to_vector<double>(), y = b.to_vector<double>();
  for (std::size_t i = 0; i < x.size(); ++i)
    if (!(std::abs(x[i] - y[i]) <= atol + rtol * std::abs(y[i]))) return false;
  return true;
}

}  // namespace xgrad
