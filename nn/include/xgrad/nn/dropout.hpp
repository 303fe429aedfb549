#pragma once
/// \file
/// Dropout: inverted dropout, active only in training mode.
#include <string>

#include <xgrad/nn/module.hpp>

namespace xgrad::nn {

/// Inverted dropout: in training, each element is zeroed with probability p and the rest
/// are scaled by 1/(1-p), so evaluation needs no rescaling; in eval mode it is the identity.
/// Masks come from core's generator (`manual_seed` makes them reproducible).
///
/// Example:
///
///     nn::Dropout drop(0.5);
///     Tensor y = drop(x);   // training: about half of x zeroed, the rest doubled
///     drop.eval();  y = drop(x);   // y is x
class Dropout : public UnaryModule {
 public:
  /// `p`: the probability of zeroing an element, in [0, 1]; throws outside.
  explicit Dropout(double p = 0.5);
  Tensor forward(const Tensor& input) override;
  std::string extra_repr() const override;
  /// The drop probability.
  double p() const { return p_; }

 private:
  double p_;
};

/// The functional form: `dropout(x, 0.1, is_training())`. Identity when not `training` or p = 0;
/// all zeros when p = 1.
Tensor dropout(const Tensor& input, double p, bool training);

}  // namespace xgrad::nn
