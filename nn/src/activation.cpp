#include <xgrad/nn/activation.hpp>

#include <cmath>
#include <numbers>

#include <fmt/format.h>

#include <xgrad/core/creation.hpp>
#include <xgrad/core/ops.hpp>

namespace xgrad::nn {

Tensor ReLU::forward(const Tensor& input) { return relu(input); }
Tensor Tanh::forward(const Tensor& input) { return tanh(input); }
Tensor Sigmoid::forward(const Tensor& input) { return sigmoid(input); }

GELU::GELU(std::string approximate) : approximate_(std::move(approximate)) {
  if (approximate_ != "none" && approximate_ != "tanh")
    throw Error("GELU: approximate must be \"none\" or \"tanh\", got \"" + approximate_ + "\"");
}

Tensor GELU::forward(const Tensor& input) {
  if (approximate_ == "none") return gelu(input);
  const double k = std::sqrt(2.0 / std::numbers::pi);
  return 0.5 * input * (1.0 + tanh(k * (input + 0.044715 * input * input * input)));
}

std::string GELU::extra_repr() const { return "approximate='" + approximate_ + "'"; }

Tensor LeakyReLU::forward(const Tensor& input) { return leaky_relu(input, negative_slope_); }

std::string LeakyReLU::extra_repr() const { return fmt::format("negative_slope={}", negative_slope_); }

Tensor Softplus::forward(const Tensor& input) {
  Tensor scaled = beta_ == 1.0 ? input : input * beta_;
  Tensor soft = beta_ == 1.0 ? softplus(scaled) : softplus(scaled) / beta_;
  // Linear above the threshold, exactly as PyTorch (the two differ by < e^-threshold there).
  return where(gt(scaled, full({}, threshold_, input.dtype())), input, soft);
}

std::string Softplus::extra_repr() const { return fmt::format("beta={}, threshold={}", beta_, threshold_); }

}  // namespace xgrad::nn
