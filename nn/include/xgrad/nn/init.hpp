#pragma once
/// \file
/// nn::init: in-place initialisation of parameters, as `torch.nn.init`. Every function
/// fills the tensor it is given (under NoGradGuard, so parameters can be passed directly),
/// draws from core's generator (seed it with `manual_seed`), and returns the same handle.
#include <cstdint>
#include <utility>

#include <xgrad/core/tensor.hpp>

namespace xgrad::nn::init {

/// The nonlinearity that follows a layer, for `calculate_gain` and the kaiming functions.
enum class Nonlinearity { linear, conv1d, conv2d, conv3d, sigmoid, tanh, relu, leaky_relu, selu };

/// Which fan the kaiming functions preserve: `fan_in` keeps the forward pass's variance,
/// `fan_out` the backward pass's.
enum class FanMode { fan_in, fan_out };

/// The recommended gain for `nonlinearity` (PyTorch's table): 1 for linear, conv and sigmoid,
/// 5/3 for tanh, √2 for relu, √(2 / (1 + param²)) for leaky_relu (param = negative slope,
/// 0.01 when negative), 3/4 for selu.
/// Example: `double g = nn::init::calculate_gain(nn::init::Nonlinearity::tanh);  // 5/3`
double calculate_gain(Nonlinearity nonlinearity, double param = -1.0);

/// (fan_in, fan_out) of a weight of at least 2 dimensions: (size(1), size(0)) times the
/// product of the remaining extents. Throws for fewer than 2 dimensions.
/// Example: `auto [fan_in, fan_out] = nn::init::calculate_fan_in_and_fan_out(w);`
std::pair<std::int64_t, std::int64_t> calculate_fan_in_and_fan_out(const Tensor& tensor);

/// Fills with U(low, high).
/// Example: `nn::init::uniform_(w, -0.1, 0.1);`
Tensor uniform_(Tensor tensor, double low = 0.0, double high = 1.0);
/// Fills with N(mean, std²).
/// Example: `nn::init::normal_(w, 0.0, 0.02);`
Tensor normal_(Tensor tensor, double mean = 0.0, double std = 1.0);
/// Fills with `value`.
/// Example: `nn::init::constant_(forget_bias, 1.0);`
Tensor constant_(Tensor tensor, double value);
/// Fills with 0.
/// Example: `nn::init::zeros_(fc.bias);`
Tensor zeros_(Tensor tensor);
/// Fills with 1.
/// Example: `nn::init::ones_(norm.weight);`
Tensor ones_(Tensor tensor);

/// Glorot uniform: U(-a, a) with a = gain·√(6 / (fan_in + fan_out)).
/// Example: `nn::init::xavier_uniform_(fc.weight);`
Tensor xavier_uniform_(Tensor tensor, double gain = 1.0);
/// Glorot normal: N(0, std²) with std = gain·√(2 / (fan_in + fan_out)).
/// Example: `nn::init::xavier_normal_(fc.weight, nn::init::calculate_gain(nn::init::Nonlinearity::tanh));`
Tensor xavier_normal_(Tensor tensor, double gain = 1.0);

/// He uniform: U(-b, b) with b = gain·√(3 / fan), gain = calculate_gain(nonlinearity, a).
/// PyTorch's Linear uses `kaiming_uniform_(w, √5)`.
/// Example: `nn::init::kaiming_uniform_(w, 0.0, nn::init::FanMode::fan_in, nn::init::Nonlinearity::relu);`
Tensor kaiming_uniform_(Tensor tensor, double a = 0.0, FanMode mode = FanMode::fan_in,
                        Nonlinearity nonlinearity = Nonlinearity::leaky_relu);
/// He normal: N(0, std²) with std = gain / √fan.
/// Example: `nn::init::kaiming_normal_(w, 0.0, nn::init::FanMode::fan_out, nn::init::Nonlinearity::relu);`
Tensor kaiming_normal_(Tensor tensor, double a = 0.0, FanMode mode = FanMode::fan_in,
                       Nonlinearity nonlinearity = Nonlinearity::leaky_relu);

/// A (semi-)orthogonal matrix times `gain`, from the QR decomposition of a standard normal
/// draw (signs fixed so that R has a positive diagonal, as PyTorch). A tensor of more than
/// 2 dimensions is treated as (size(0), numel / size(0)). Rows are orthonormal when
/// rows ≤ columns, columns otherwise.
/// Example: `nn::init::orthogonal_(rnn_weight_hh);`
Tensor orthogonal_(Tensor tensor, double gain = 1.0);

}  // namespace xgrad::nn::init
