#include <xgrad/nn/dropout.hpp>

#include <fmt/format.h>

#include <xgrad/core/creation.hpp>
#include <xgrad/core/ops.hpp>

namespace xgrad::nn {

Tensor dropout(const Tensor& input, double p, bool training) {
  if (!(p >= 0.0 && p <= 1.0)) throw Error(fmt::format("dropout: probability must be in [0, 1], got {}", p));
  if (!training || p == 0.0) return input;
  if (!is_floating(input.dtype()))
    throw Error("dropout: needs a floating-point input, got " + std::string(dtype_name(input.dtype())));
  if (p == 1.0) return input * zeros({}, input.dtype());
  // keep ~ Bernoulli(1 - p), scaled so the expectation is unchanged.
  Tensor mask = bernoulli(input.shape(), 1.0 - p, input.dtype()) * (1.0 / (1.0 - p));
  return input * mask;
}

Dropout::Dropout(double p) : p_(p) {
  if (!(p >= 0.0 && p <= 1.0)) throw Error(fmt::format("Dropout: probability must be in [0, 1], got {}", p));
}

Tensor Dropout::forward(const Tensor& input) { return dropout(input, p_, is_training()); }

std::string Dropout::extra_repr() const { return fmt::format("p={}", p_); }

}  // namespace xgrad::nn
