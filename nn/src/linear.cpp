#include <xgrad/nn/linear.hpp>

#include <cmath>

#include <xgrad/core/creation.hpp>
#include <xgrad/core/ops.hpp>
#include <xgrad/nn/init.hpp>

namespace xgrad::nn {

Linear::Linear(std::int64_t in_features, std::int64_t out_features, bool with_bias)
    : in_features_(in_features), out_features_(out_features) {
  if (in_features < 0 || out_features < 0)
    throw Error("Linear: features must be non-negative, got in_features=" + std::to_string(in_features) +
                ", out_features=" + std::to_string(out_features));
  weight = register_parameter("weight", empty({out_features, in_features}));
  if (with_bias) bias = register_parameter("bias", empty({out_features}));
  reset_parameters();
}

void Linear::reset_parameters() {
  init::kaiming_uniform_(weight, std::sqrt(5.0));
  if (bias.defined()) {
    const double bound = in_features_ > 0 ? 1.0 / std::sqrt(static_cast<double>(in_features_)) : 0.0;
    init::uniform_(bias, -bound, bound);
  }
}

Tensor Linear::forward(const Tensor& input) {
  if (input.dim() == 0 || input.size(-1) != in_features_)
    throw Error("Linear: expected input (..., " + std::to_string(in_features_) + "), got " + shape_str(input.shape()));
  return linear(input, weight, bias);  // (..., out), one GEMM
}

std::string Linear::extra_repr() const {
  return "in_features=" + std::to_string(in_features_) + ", out_features=" + std::to_string(out_features_) +
         ", bias=" + (bias.defined() ? "true" : "false");
}

}  // namespace xgrad::nn
