#include <xgrad/nn/layernorm.hpp>

#include <fmt/format.h>

#include <xgrad/core/creation.hpp>
#include <xgrad/core/ops.hpp>
#include <xgrad/nn/init.hpp>

namespace xgrad::nn {

Tensor layer_norm(const Tensor& input, const Shape& normalized_shape, const Tensor& weight, const Tensor& bias,
                  double eps) {
  const auto k = static_cast<std::int64_t>(normalized_shape.size());
  bool ok = input.defined() && input.dim() >= k && k > 0;
  for (std::int64_t i = 0; ok && i < k; ++i) ok = input.size(input.dim() - k + i) == normalized_shape[i];
  if (!ok)
    throw Error("layer_norm: input of shape " + (input.defined() ? shape_str(input.shape()) : std::string("undefined")) +
                " does not end with normalized_shape " + shape_str(normalized_shape));
  std::vector<std::int64_t> dims;
  for (std::int64_t i = 0; i < k; ++i) dims.push_back(input.dim() - k + i);
  Tensor centered = input - input.mean(dims, true);
  Tensor var = (centered * centered).mean(dims, true);  // biased, as PyTorch
  Tensor y = centered / sqrt(var + eps);
  if (weight.defined()) y = y * weight;
  if (bias.defined()) y = y + bias;
  return y;
}

LayerNorm::LayerNorm(const LayerNormOptions& options) : options_(options) {
  if (options.normalized_shape().empty()) throw Error("LayerNorm: normalized_shape must not be empty");
  if (options.elementwise_affine()) {
    weight = register_parameter("weight", empty(options.normalized_shape()));
    bias = register_parameter("bias", empty(options.normalized_shape()));
  }
  reset_parameters();
}

void LayerNorm::reset_parameters() {
  if (weight.defined()) init::ones_(weight);
  if (bias.defined()) init::zeros_(bias);
}

Tensor LayerNorm::forward(const Tensor& input) {
  return layer_norm(input, options_.normalized_shape(), weight, bias, options_.eps());
}

std::string LayerNorm::extra_repr() const {
  const Shape& s = options_.normalized_shape();
  std::string shape = "(";
  for (std::size_t i = 0; i < s.size(); ++i) shape += (i ? ", " : "") + std::to_string(s[i]);
  shape += s.size() == 1 ? ",)" : ")";
  return fmt::format("{}, eps={}, elementwise_affine={}", shape, options_.eps(),
                     options_.elementwise_affine() ? "true" : "false");
}

}  // namespace xgrad::nn
