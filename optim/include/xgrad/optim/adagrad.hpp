#pragma once
/// \file
/// Adagrad: per-element learning rates from the sum of squared gradients.
#include <xgrad/optim/optimizer.hpp>

namespace xgrad::optim {

/// Adagrad's hyper-parameters, with PyTorch's defaults.
/// Example: `optim::AdagradOptions(0.1).lr_decay(1e-3).initial_accumulator_value(0.1)`
struct AdagradOptions : public OptionsBase<AdagradOptions> {
  /// PyTorch's defaults with learning rate `lr`.
  explicit AdagradOptions(double lr = 1e-2) : lr_(lr) {}
  /// The step size before decay.
  XGRAD_ARG(double, lr);
  /// At step t the step size is lr / (1 + (t - 1) * lr_decay).
  XGRAD_ARG(double, lr_decay) = 0.0;
  /// L2 penalty: weight_decay * p is added to the gradient.
  XGRAD_ARG(double, weight_decay) = 0.0;
  /// Starting value of every element of the sum of squared gradients.
  XGRAD_ARG(double, initial_accumulator_value) = 0.0;
  /// Added to the square root of the sum, for numerical stability.
  XGRAD_ARG(double, eps) = 1e-10;
  /// Ascend instead of descend (the gradient is negated).
  XGRAD_ARG(bool, maximize) = false;

 public:
  /// "AdagradOptions", as errors name it.
  static constexpr const char* type_name = "AdagradOptions";
  /// Every XGRAD_ARG above, in state-dict order, as `values()` and the state dict name them.
  /// Example: `for (const auto& f : optim::AdagradOptions::fields()) fmt::print("{} ", f.key);`
  static std::span<const OptionField<AdagradOptions>> fields();
};

/// Adagrad, exactly torch.optim.Adagrad (1.13). For each parameter p with gradient g
/// (negated when `maximize`), at step t = 1, 2, ...:
///
///     g = g + weight_decay * p                          (weight_decay != 0)
///     sum = sum + g * g                                 (sum starts at initial_accumulator_value)
///     p = p - lr / (1 + (t - 1) * lr_decay) * g / (sqrt(sum) + eps)
///
/// Errors: negative lr, lr_decay, weight_decay, initial_accumulator_value or eps.
/// State: "sum" and the step count, created at a parameter's first update (PyTorch creates
/// them in the constructor; the values are the same).
///
/// Example:
///
///     optim::Adagrad opt(model.parameters(), optim::AdagradOptions(0.1));
class Adagrad : public Optimizer {
 public:
  /// One group of `params` with `defaults`.
  /// Example: `optim::Adagrad opt(model.parameters(), optim::AdagradOptions(0.1));`
  Adagrad(std::vector<Tensor> params, const AdagradOptions& defaults = AdagradOptions());
  /// Several groups; a group without options takes `defaults`.
  /// Example (a smaller learning rate for b):
  ///
  ///     optim::Adagrad opt({optim::ParamGroup({w}), optim::ParamGroup({b}, optim::AdagradOptions(0.01))},
  ///                        optim::AdagradOptions(0.1));
  Adagrad(std::vector<ParamGroup> groups, const AdagradOptions& defaults = AdagradOptions());

 protected:
  void validate(const OptimizerOptions& options) const override;
  std::vector<std::string> state_buffer_names() const override { return {"sum"}; }
  void update(Tensor& param, const Tensor& grad, ParamState& state,
              const OptimizerOptions& options) override;
};

}  // namespace xgrad::optim
