#pragma once
/// \file
/// Linear: y = x·Wᵀ + b.
#include <cstdint>
#include <string>

#include <xgrad/nn/module.hpp>

namespace xgrad::nn {

/// Applies y = x·Wᵀ + b to the last dimension: (..., in_features) → (..., out_features).
///
/// Parameters (PyTorch's names, shapes and default init):
/// - `weight` (out_features, in_features): kaiming_uniform_(a = √5), i.e. U(±1/√in_features);
/// - `bias` (out_features): U(±1/√in_features); not registered when `bias` is false.
///
/// Example:
///
///     nn::Linear fc(64, 1);
///     Tensor y = fc(randn({8, 64}));   // (8, 1)
class Linear : public UnaryModule {
 public:
  /// A layer from `in_features` to `out_features`, with a bias unless `bias` is false.
  Linear(std::int64_t in_features, std::int64_t out_features, bool bias = true);

  /// x (..., in_features) → (..., out_features).
  Tensor forward(const Tensor& input) override;
  /// Draws the parameters again with PyTorch's default initialisation.
  void reset_parameters();
  std::string extra_repr() const override;

  /// Size of each input sample (the last input dimension).
  std::int64_t in_features() const { return in_features_; }
  /// Size of each output sample.
  std::int64_t out_features() const { return out_features_; }

  Tensor weight;  ///< (out_features, in_features)
  Tensor bias;    ///< (out_features), undefined when constructed without bias

 private:
  std::int64_t in_features_, out_features_;
};

}  // namespace xgrad::nn
