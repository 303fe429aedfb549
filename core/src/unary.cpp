// Unary math and activations, plus the dtype conversion and clone primitives.
// Backward rules save the output where it is cheaper than the input (exp, sigmoid, tanh).
#include <xgrad/core/creation.hpp>
#include <xgrad/core/ops.hpp>

#include <cmath>
#include <cstring>

#include "kernels.hpp"
#include "trace_hook.hpp"

namespace xgrad {

Tensor exp(const Tensor& a) {
  Tensor out = map1(a, "exp", [](auto&& x) { return xt::exp(x); });
  if (!any_requires_grad({&a})) return out;
  const Tensor y = out.detach();
  return record_op("exp", {a}, out, [y](const Tensor& g) { return Grads{g * y}; }, {y});
}

Tensor log(const Tensor& a) {
  Tensor out = map1(a, "log", [](auto&& x) { return xt::log(x); });
  if (!any_requires_grad({&a})) return out;
  const Tensor x = a.detach();
  return record_op("log", {a}, out, [x](const Tensor& g) { return Grads{g / x}; }, {x});
}

Tensor sqrt(const Tensor& a) {
  Tensor out = map1(a, "sqrt", [](auto&& x) { return xt::sqrt(x); });
  if (!any_requires_grad({&a})) return out;
  const Tensor y = out.detach();
  return record_op("sqrt", {a}, out, [y](const Tensor& g) {
    return Grads{map2(g, y, "sqrt_backward", [](auto&& gg, auto&& yy) { return gg / (yy + yy); })};
  }, {y});
}

Tensor abs(const Tensor& a) {
  Tensor out = map1(a, "abs", [](auto&& x) { return xt::abs(x); });
  if (!any_requires_grad({&a})) return out;
  const Tensor x = a.detach();
  return record_op("abs", {a}, out, [x](const Tensor& g) {
    return Grads{map2(g, x, "abs_backward", [](auto&& gg, auto&& xx) { return gg * xt::sign(xx); })};
  }, {x});
}

Tensor clamp(const Tensor& a, double lo, double hi) {
  if (lo > hi) throw Error("clamp: min " + std::to_string(lo) + " is above max " + std::to_string(hi));
  Tensor out = map1(a, "clamp", [&](auto&& x) {
    using T = value_of<decltype(x)>;
    return xt::clip(x, static_cast<T>(lo), static_cast<T>(hi));
  });
  if (!any_requires_grad({&a})) return out;
  const Tensor x = a.detach();
  if (trace::tracing()) trace::annotate("clamp", {{"min", lo}, {"max", hi}});
  return record_op("clamp", {a}, out, [x, lo, hi](const Tensor& g) {
    return Grads{map2(g, x, "clamp_backward", [&](auto&& gg, auto&& xx) {
      using T = value_of<decltype(xx)>;
      return xt::where(xx >= static_cast<T>(lo) && xx <= static_cast<T>(hi), gg, static_cast<T>(0));
    })};
  }, {x});
}

Tensor sigmoid(const Tensor& a) {
  Tensor out = map1(a, "sigmoid", [](auto&& x) {
    using T = value_of<decltype(x)>;
    return T(1) / (T(1) + xt::exp(-x));
  });
  if (!any_requires_grad({&a})) return out;
  const Tensor y = out.detach();
  return record_op("sigmoid", {a}, out, [y](const Tensor& g) {
    return Grads{map2(g, y, "sigmoid_backward", [](auto&& gg, auto&& yy) {
      using T = value_of<decltype(yy)>;
      return gg * yy * (T(1) - yy);
    })};
  }, {y});
}

Tensor tanh(const Tensor& a) {
  Tensor out = map1(a, "tanh", [](auto&& x) { return xt::tanh(x); });
  if (!any_requires_grad({&a})) return out;
  const Tensor y = out.detach();
  return record_op("tanh", {a}, out, [y](const Tensor& g) {
    return Grads{map2(g, y, "tanh_backward", [](auto&& gg, auto&& yy) {
      using T = value_of<decltype(yy)>;
      return gg * (T(1) - yy * yy);
    })};
  }, {y});
}

Tensor relu(const Tensor& a) {
  // where(x < 0, 0, x) rather than max(x, 0): a NaN stays NaN, as in PyTorch.
  Tensor out = map1(a, "relu", [](auto&& x) {
    using T = value_of<decltype(x)>;
    return xt::where(x < T(0), T(0), x);
  });
  if (!any_requires_grad({&a})) return out;
  const Tensor y = out.detach();
  return record_op("relu", {a}, out, [y](const Tensor& g) {
    return Grads{map2(g, y, "relu_backward", [](auto&& gg, auto&& yy) {
      using T = value_of<decltype(yy)>;
      return xt::where(yy > T(0), gg, T(0));
    })};
  }, {y});
}

Tensor leaky_relu(const Tensor& a, double negative_slope) {
  Tensor out = map1(a, "leaky_relu", [negative_slope](auto&& x) {
    using T = value_of<decltype(x)>;
    return xt::where(x > T(0), x, static_cast<T>(negative_slope) * x);
  });
  if (!any_requires_grad({&a})) return out;
  const Tensor x = a.detach();
  if (trace::tracing()) trace::annotate("leaky_relu", {{"negative_slope", negative_slope}});
  return record_op("leaky_relu", {a}, out, [x, negative_slope](const Tensor& g) {
    return Grads{map2(g, x, "leaky_relu_backward", [negative_slope](auto&& gg, auto&& xx) {
      using T = value_of<decltype(xx)>;
      return xt::where(xx > T(0), gg, static_cast<T>(negative_slope) * gg);
    })};
  }, {x});
}

Tensor gelu(const Tensor& a) {
  // gelu(x) = x·Φ(x), Φ(x) = (1 + erf(x/√2)) / 2; d/dx = Φ(x) + x·φ(x).
  Tensor out = map1(a, "gelu", [](auto&& x) {
    using T = value_of<decltype(x)>;
    return T(0.5) * x * (T(1) + xt::erf(x * T(M_SQRT1_2)));
  });
  if (!any_requires_grad({&a})) return out;
  const Tensor x = a.detach();
  return record_op("gelu", {a}, out, [x](const Tensor& g) {
    return Grads{map2(g, x, "gelu_backward", [](auto&& gg, auto&& xx) {
      using T = value_of<decltype(xx)>;
      // One expression: named sub-expressions would dangle once this lambda returns.
      return gg * (T(0.5) * (T(1) + xt::erf(xx * T(M_SQRT1_2))) +
                   xx * xt::exp(T(-0.5) * xx * xx) * T(0.5 * M_2_SQRTPI * M_SQRT1_2));
    })};
  }, {x});
}

Tensor softplus(const Tensor& a) {
  // ln(1 + e^x) = max(x, 0) + ln(1 + e^-|x|): never overflows. d/dx = sigmoid(x).
  Tensor out = map1(a, "softplus", [](auto&& x) {
    using T = value_of<decltype(x)>;
    return xt::maximum(x, T(0)) + xt::log1p(xt::exp(-xt::abs(x)));
  });
  if (!any_requires_grad({&a})) return out;
  const Tensor x = a.detach();
  return record_op("softplus", {a}, out, [x](const Tensor& g) {
    return Grads{map2(g, x, "softplus_backward", [](auto&& gg, auto&& xx) {
      using T = value_of<decltype(xx)>;
      return gg / (T(1) + xt::exp(-xx));
    })};
  }, {x});
}

Tensor Tensor::to(DType target) const {
  require_defined(*this, "to");
  if (dtype() == target) return *this;
  Tensor out = make_empty(shape(), target);
  copy_elements(*impl_, impl_of(out));
  if (!any_requires_grad({this}) || !is_floating(target)) return out;
  return record_op("to", {*this}, out, [source = dtype()](const Tensor& g) { return Grads{g.to(source)}; }, {});
}

Tensor Tensor::clone() const {
  require_defined(*this, "clone");
  Tensor out = make_empty(shape(), dtype());
  copy_elements(*impl_, impl_of(out));
  if (!any_requires_grad({this})) return out;
  return record_op("clone", {*this}, out, [](const Tensor& g) { return Grads{g}; }, {});
}

}  // namespace xgrad
