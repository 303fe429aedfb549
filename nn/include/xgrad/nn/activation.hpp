#pragma once
/// \file
/// Activation modules: the core activations as layers, for Sequential.
#include <string>

#include <xgrad/nn/module.hpp>

namespace xgrad::nn {

/// max(x, 0). Example: `nn::ReLU relu;  Tensor y = relu(x);`
class ReLU : public UnaryModule {
 public:
  Tensor forward(const Tensor& input) override;
};

/// tanh(x). Example: `nn::Tanh act;  Tensor y = act(x);`
class Tanh : public UnaryModule {
 public:
  Tensor forward(const Tensor& input) override;
};

/// 1 / (1 + e^-x). Example: `nn::Sigmoid act;  Tensor p = act(logits);`
class Sigmoid : public UnaryModule {
 public:
  Tensor forward(const Tensor& input) override;
};

/// x·Φ(x) (exact, the default) or, with approximate "tanh",
/// 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))), as PyTorch's GELU.
/// Example: `nn::GELU act;  nn::GELU fast("tanh");`
class GELU : public UnaryModule {
 public:
  /// `approximate`: "none" (exact) or "tanh"; anything else throws.
  explicit GELU(std::string approximate = "none");
  Tensor forward(const Tensor& input) override;
  std::string extra_repr() const override;

 private:
  std::string approximate_;
};

/// x for x > 0, negative_slope·x otherwise.
/// Example: `nn::LeakyReLU act(0.2);`
class LeakyReLU : public UnaryModule {
 public:
  /// The slope of the line below zero.
  explicit LeakyReLU(double negative_slope = 0.01) : negative_slope_(negative_slope) {}
  Tensor forward(const Tensor& input) override;
  std::string extra_repr() const override;

 private:
  double negative_slope_;
};

/// ln(1 + e^(beta·x)) / beta, and x itself where beta·x > threshold, as PyTorch's Softplus.
/// Example: `nn::Softplus act;  nn::Softplus sharp(2.0, 20.0);`
class Softplus : public UnaryModule {
 public:
  /// `beta` sharpens the curve; where beta·x > `threshold` the output is x itself.
  explicit Softplus(double beta = 1.0, double threshold = 20.0) : beta_(beta), threshold_(threshold) {}
  Tensor forward(const Tensor& input) override;
  std::string extra_repr() const override;

 private:
  double beta_, threshold_;
};

}  // namespace xgrad::nn
