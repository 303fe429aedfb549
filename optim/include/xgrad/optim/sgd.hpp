#pragma once
/// \file
/// Stochastic gradient descent with momentum, dampening, Nesterov, weight decay.
#include <xgrad/optim/optimizer.hpp>

namespace xgrad::optim {

/// SGD's hyper-parameters; `lr` is required, as in PyTorch.
/// Example: `optim::SGDOptions(0.1).momentum(0.9).nesterov(true).weight_decay(1e-4)`
struct SGDOptions : public OptionsBase<SGDOptions> {
  /// The learning rate, required (SGD has no default).
  explicit SGDOptions(double lr) : lr_(lr) {}
  /// The step size: p = p - lr * g.
  XGRAD_ARG(double, lr);
  /// Momentum factor; 0 disables the buffer.
  XGRAD_ARG(double, momentum) = 0.0;
  /// The fraction of the new gradient left out of the momentum buffer.
  XGRAD_ARG(double, dampening) = 0.0;
  /// L2 penalty: weight_decay * p is added to the gradient.
  XGRAD_ARG(double, weight_decay) = 0.0;
  /// Nesterov momentum (needs momentum > 0 and dampening 0).
  XGRAD_ARG(bool, nesterov) = false;
  /// Ascend instead of descend (the gradient is negated).
  XGRAD_ARG(bool, maximize) = false;

 public:
  /// "SGDOptions", as errors name it.
  static constexpr const char* type_name = "SGDOptions";
  /// Every XGRAD_ARG above, in state-dict order, as `values()` and the state dict name them.
  /// Example: `for (const auto& f : optim::SGDOptions::fields()) fmt::print("{} ", f.key);`
  static std::span<const OptionField<SGDOptions>> fields();
};

/// Stochastic gradient descent, exactly torch.optim.SGD (1.13). For each parameter p with
/// gradient g (negated when `maximize`):
///
///     g = g + weight_decay * p                          (weight_decay != 0)
///     buf = g  (first step),  buf = momentum * buf + (1 - dampening) * g  (momentum != 0)
///     g = nesterov ? g + momentum * buf : buf           (momentum != 0)
///     p = p - lr * g
///
/// Errors: negative lr, momentum or weight_decay; nesterov without momentum or with
/// dampening. State: "momentum_buffer" (when momentum != 0).
///
/// Example:
///
///     optim::SGD opt(model.parameters(), optim::SGDOptions(0.1).momentum(0.9));
///     loss.backward(); opt.step(); opt.zero_grad();
class SGD : public Optimizer {
 public:
  /// One group of `params` with `defaults`.
  /// Example: `optim::SGD opt(model.parameters(), optim::SGDOptions(0.1).momentum(0.9));`
  SGD(std::vector<Tensor> params, const SGDOptions& defaults);
  /// Several groups; a group without options takes `defaults`.
  /// Example (a smaller learning rate for b):
  ///
  ///     optim::SGD opt({optim::ParamGroup({w}), optim::ParamGroup({b}, optim::SGDOptions(0.01))},
  ///                    optim::SGDOptions(0.1));
  SGD(std::vector<ParamGroup> groups, const SGDOptions& defaults);

 protected:
  void validate(const OptimizerOptions& options) const override;
  std::vector<std::string> state_buffer_names() const override { return {"momentum_buffer"}; }
  void update(Tensor& param, const Tensor& grad, ParamState& state,
              const OptimizerOptions& options) override;
};

}  // namespace xgrad::optim
