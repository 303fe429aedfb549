#pragma once
/// \file
/// RMSprop, in PyTorch's convention (the default) or Keras's.
#include <xgrad/optim/optimizer.hpp>

namespace xgrad::optim {

/// Whose RMSprop update rule to follow (they differ in where epsilon, the learning rate and
/// weight decay enter; see RMSprop).
enum class RMSpropConvention { pytorch = 0, keras = 1 };

/// RMSprop's hyper-parameters, with PyTorch's defaults; `RMSpropOptions::keras()` gives
/// Keras's defaults and convention.
/// Example: `optim::RMSpropOptions(1e-3).alpha(0.9).momentum(0.9).centered(true)`
struct RMSpropOptions : public OptionsBase<RMSpropOptions> {
  /// PyTorch's defaults with learning rate `lr`.
  explicit RMSpropOptions(double lr = 1e-2) : lr_(lr) {}
  /// Keras's RMSprop: lr 1e-3, alpha (Keras's `rho`) 0.9, eps 1e-7, Keras's convention.
  /// Example: `optim::RMSprop opt(params, optim::RMSpropOptions::keras().momentum(0.9));`
  static RMSpropOptions keras(double lr = 1e-3);
  /// The step size.
  XGRAD_ARG(double, lr);
  /// Decay rate of the average of squared gradients (Keras calls it `rho`).
  XGRAD_ARG(double, alpha) = 0.99;
  /// Keeps the denominator away from zero (outside the square root in PyTorch's convention,
  /// inside it in Keras's).
  XGRAD_ARG(double, eps) = 1e-8;
  /// L2 penalty (PyTorch's convention) or decoupled decay (Keras's).
  XGRAD_ARG(double, weight_decay) = 0.0;
  /// Momentum factor; 0 disables the buffer.
  XGRAD_ARG(double, momentum) = 0.0;
  /// Normalise by an estimate of the gradient's variance instead of its second moment.
  XGRAD_ARG(bool, centered) = false;
  /// Ascend instead of descend (the gradient is negated).
  XGRAD_ARG(bool, maximize) = false;
  /// Whose update rule to follow (see RMSprop).
  XGRAD_ARG(RMSpropConvention, convention) = RMSpropConvention::pytorch;

 public:
  /// "RMSpropOptions", as errors name it.
  static constexpr const char* type_name = "RMSpropOptions";
  /// Every XGRAD_ARG above, in state-dict order, as `values()` and the state dict name them.
  /// Example: `for (const auto& f : optim::RMSpropOptions::fields()) fmt::print("{} ", f.key);`
  static std::span<const OptionField<RMSpropOptions>> fields();
};

/// RMSprop. For each parameter p with gradient g (negated when `maximize`):
///
/// PyTorch's convention (default; exactly torch.optim.RMSprop 1.13) — eps outside the
/// square root, lr applied after the momentum buffer, weight decay as an L2 term:
///
///     g = g + weight_decay * p                          (weight_decay != 0)
///     v = alpha * v + (1 - alpha) * g * g
///     a = alpha * a + (1 - alpha) * g                   (centered)
///     denom = sqrt(v - a * a) + eps   (centered)   or   sqrt(v) + eps
///     buf = momentum * buf + g / denom ; p = p - lr * buf          (momentum > 0)
///     p = p - lr * g / denom                                        (otherwise)
///
/// Keras's convention (`convention(RMSpropConvention::keras)`; exactly
/// keras.optimizers.RMSprop of Keras 3 / tf.keras >= 2.11, with alpha as `rho`) — eps
/// inside the square root, lr inside the momentum buffer, weight decay decoupled:
///
///     p = p - (p * weight_decay) * lr                   (weight_decay != 0, before the update)
///     v = alpha * v + (1 - alpha) * g * g
///     a = alpha * a + (1 - alpha) * g                   (centered)
///     denom = v - a * a + eps   (centered)   or   v + eps
///     inc = lr * g / sqrt(denom)
///     buf = momentum * buf + inc ; p = p - buf          (momentum > 0)
///     p = p - inc                                       (otherwise)
///
/// With a constant lr and no weight decay the two differ only in where eps sits.
/// Errors: negative lr, alpha, eps, momentum or weight_decay.
/// State: "square_avg", "grad_avg" (centered), "momentum_buffer" (momentum > 0), step count.
///
/// Example:
///
///     optim::RMSprop opt(model.parameters(), optim::RMSpropOptions(1e-3).momentum(0.9));
///     optim::RMSprop keras_like(model.parameters(), optim::RMSpropOptions::keras());
class RMSprop : public Optimizer {
 public:
  /// One group of `params` with `defaults`.
  /// Example: `optim::RMSprop opt(model.parameters(), optim::RMSpropOptions(1e-3));`
  RMSprop(std::vector<Tensor> params, const RMSpropOptions& defaults = RMSpropOptions());
  /// Several groups; a group without options takes `defaults`.
  /// Example (a smaller learning rate for b):
  ///
  ///     optim::RMSprop opt({optim::ParamGroup({w}), optim::ParamGroup({b}, optim::RMSpropOptions(1e-4))},
  ///                        optim::RMSpropOptions(1e-3));
  RMSprop(std::vector<ParamGroup> groups, const RMSpropOptions& defaults = RMSpropOptions());

 protected:
  void validate(const OptimizerOptions& options) const override;
  std::vector<std::string> state_buffer_names() const override { return {"square_avg", "grad_avg", "momentum_buffer"}; }
  void update(Tensor& param, const Tensor& grad, ParamState& state,
              const OptimizerOptions& options) override;
};

}  // namespace xgrad::optim
