#pragma once
/// \file
/// Adam (with AMSGrad and L2 weight decay) and AdamW (decoupled weight decay).
#include <utility>

#include <xgrad/optim/optimizer.hpp>

namespace xgrad::optim {

/// Decay rates (beta1, beta2) of Adam's first and second moment averages.
using Betas = std::pair<double, double>;

/// Adam's hyper-parameters, with PyTorch's defaults.
/// Example: `optim::AdamOptions(1e-3).betas({0.9, 0.999}).weight_decay(1e-2).amsgrad(true)`
struct AdamOptions : public OptionsBase<AdamOptions> {
  /// Adam's options with learning rate `lr`, the others at their defaults.
  explicit AdamOptions(double lr = 1e-3) : lr_(lr) {}
  /// The step size.
  XGRAD_ARG(double, lr);
  /// Decay rates (beta1, beta2) of the first and second moment averages, each in [0, 1).
  XGRAD_ARG(Betas, betas) = {0.9, 0.999};
  /// Added to the denominator's square root, for numerical stability.
  XGRAD_ARG(double, eps) = 1e-8;
  /// L2 penalty: weight_decay * p is added to the gradient.
  XGRAD_ARG(double, weight_decay) = 0.0;
  /// Divide by the largest second moment seen so far (the AMSGrad variant).
  XGRAD_ARG(bool, amsgrad) = false;
  /// Ascend instead of descend (the gradient is negated).
  XGRAD_ARG(bool, maximize) = false;

 public:
  /// "AdamOptions", as errors name it.
  static constexpr const char* type_name = "AdamOptions";
  /// Every XGRAD_ARG above, in state-dict order, as `values()` and the state dict name them.
  /// Example: `for (const auto& f : optim::AdamOptions::fields()) fmt::print("{} ", f.key);`
  static std::span<const OptionField<AdamOptions>> fields();
};

/// AdamW's hyper-parameters: Adam's, with PyTorch's AdamW default weight_decay of 1e-2.
/// Example: `optim::AdamWOptions(3e-4).weight_decay(0.1)`
struct AdamWOptions : public OptionsBase<AdamWOptions> {
  /// AdamW's options with learning rate `lr`, the others at their defaults.
  explicit AdamWOptions(double lr = 1e-3) : lr_(lr) {}
  /// The step size.
  XGRAD_ARG(double, lr);
  /// Decay rates (beta1, beta2) of the first and second moment averages, each in [0, 1).
  XGRAD_ARG(Betas, betas) = {0.9, 0.999};
  /// Added to the denominator's square root, for numerical stability.
  XGRAD_ARG(double, eps) = 1e-8;
  /// Decoupled decay: each step multiplies the weights by (1 - lr * weight_decay).
  XGRAD_ARG(double, weight_decay) = 1e-2;
  /// Divide by the largest second moment seen so far (the AMSGrad variant).
  XGRAD_ARG(bool, amsgrad) = false;
  /// Ascend instead of descend (the gradient is negated).
  XGRAD_ARG(bool, maximize) = false;

 public:
  /// "AdamWOptions", as errors name it.
  static constexpr const char* type_name = "AdamWOptions";
  /// Every XGRAD_ARG above, in state-dict order, as `values()` and the state dict name them.
  /// Example: `for (const auto& f : optim::AdamWOptions::fields()) fmt::print("{} ", f.key);`
  static std::span<const OptionField<AdamWOptions>> fields();
};

/// Adam, exactly torch.optim.Adam (1.13, single-tensor path). For each parameter p with
/// gradient g (negated when `maximize`), at step t = 1, 2, ...:
///
///     g = g + weight_decay * p                          (weight_decay != 0)
///     m = beta1 * m + (1 - beta1) * g
///     v = beta2 * v + (1 - beta2) * g * g
///     v_max = max(v_max, v)                             (amsgrad; v_max replaces v below)
///     denom = sqrt(v) / sqrt(1 - beta2^t) + eps
///     p = p - lr / (1 - beta1^t) * m / denom
///
/// Errors: negative lr, eps or weight_decay; a beta outside [0, 1).
/// State: "exp_avg", "exp_avg_sq", "max_exp_avg_sq" (amsgrad), and the step count.
///
/// Example:
///
///     optim::Adam opt(model.parameters(), optim::AdamOptions(1e-3).betas({0.9, 0.98}));
///     loss.backward(); opt.step(); opt.zero_grad();
class Adam : public Optimizer {
 public:
  /// One group of `params` with `defaults`.
  /// Example: `optim::Adam opt(model.parameters(), optim::AdamOptions(1e-3));`
  Adam(std::vector<Tensor> params, const AdamOptions& defaults = AdamOptions());
  /// Several groups; a group without options takes `defaults`.
  /// Example (a smaller learning rate for b):
  ///
  ///     optim::Adam opt({optim::ParamGroup({w}), optim::ParamGroup({b}, optim::AdamOptions(1e-4))},
  ///                     optim::AdamOptions(1e-3));
  Adam(std::vector<ParamGroup> groups, const AdamOptions& defaults = AdamOptions());

 protected:
  void validate(const OptimizerOptions& options) const override;
  std::vector<std::string> state_buffer_names() const override { return {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"}; }
  void update(Tensor& param, const Tensor& grad, ParamState& state,
              const OptimizerOptions& options) override;
};

/// AdamW, exactly torch.optim.AdamW (1.13): Adam without the L2 term, the weights decayed
/// directly before each update:
///
///     p = p * (1 - lr * weight_decay)
///     ... then Adam's update with weight_decay = 0.
///
/// Example:
///
///     optim::AdamW opt(model.parameters(), optim::AdamWOptions(1e-3).weight_decay(0.05));
class AdamW : public Optimizer {
 public:
  /// One group of `params` with `defaults`.
  /// Example: `optim::AdamW opt(model.parameters(), optim::AdamWOptions(1e-3));`
  AdamW(std::vector<Tensor> params, const AdamWOptions& defaults = AdamWOptions());
  /// Several groups; a group without options takes `defaults`.
  /// Example (no weight decay on the bias):
  ///
  ///     optim::AdamW opt({optim::ParamGroup({w}), optim::ParamGroup({b}, optim::AdamWOptions(1e-3).weight_decay(0))},
  ///                      optim::AdamWOptions(1e-3));
  AdamW(std::vector<ParamGroup> groups, const AdamWOptions& defaults = AdamWOptions());

 protected:
  void validate(const OptimizerOptions& options) const override;
  std::vector<std::string> state_buffer_names() const override { return {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"}; }
  void update(Tensor& param, const Tensor& grad, ParamState& state,
              const OptimizerOptions& options) override;
};

}  // namespace xgrad::optim
