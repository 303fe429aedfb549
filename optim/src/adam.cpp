#include <xgrad/optim/adam.hpp>

#include <algorithm>
#include <cmath>

#include "util.hpp"

namespace xgrad::optim {

namespace {

// The hyper-parameters Adam and AdamW share; `decoupled` selects AdamW's weight decay.
struct AdamParams {
  double lr, beta1, beta2, eps, weight_decay;
  bool amsgrad, maximize, decoupled;
};

template <class O>
AdamParams adam_params(const O& o, bool decoupled) {
  return {o.lr(), o.betas().first, o.betas().second, o.eps(), o.weight_decay(), o.amsgrad(), o.maximize(), decoupled};
}

template <class O>
void adam_validate(const O& o, const std::string& name) {
  detail::check(o.lr() >= 0.0, name, "learning rate", o.lr(), ">= 0");
  detail::check(o.eps() >= 0.0, name, "epsilon", o.eps(), ">= 0");
  detail::check(o.betas().first >= 0.0 && o.betas().first < 1.0, name, "beta1", o.betas().first, "in [0, 1)");
  detail::check(o.betas().second >= 0.0 && o.betas().second < 1.0, name, "beta2", o.betas().second, "in [0, 1)");
  detail::check(o.weight_decay() >= 0.0, name, "weight_decay", o.weight_decay(), ">= 0");
}

// torch.optim._single_tensor_adam / _single_tensor_adamw (1.13), one operation at a time in
// the parameter's dtype so that every intermediate is rounded where PyTorch rounds it.
void adam_update(Tensor& param, const Tensor& grad, ParamState& state, const AdamParams& a) {
  Tensor exp_avg = detail::buffer(state, "exp_avg", param, 0.0);
  Tensor exp_avg_sq = detail::buffer(state, "exp_avg_sq", param, 0.0);
  Tensor max_exp_avg_sq = a.amsgrad ? detail::buffer(state, "max_exp_avg_sq", param, 0.0) : Tensor();
  const std::int64_t step = ++state.step;
  // Bias corrections in double, as PyTorch computes them in Python floats.
  const double bias_correction1 = 1.0 - std::pow(a.beta1, static_cast<double>(step));
  const double bias_correction2 = 1.0 - std::pow(a.beta2, static_cast<double>(step));
  const double step_size = a.lr / bias_correction1;
  const double bias_correction2_sqrt = std::sqrt(bias_correction2);
  detail::dispatch_float(param.dtype(), [&]<class T>() {
    const T beta1 = static_cast<T>(a.beta1), one_minus_beta1 = static_cast<T>(1.0 - a.beta1);
    const T beta2 = static_cast<T>(a.beta2), one_minus_beta2 = static_cast<T>(1.0 - a.beta2);
    const T weight_decay = static_cast<T>(a.weight_decay);
    const T decay_factor = static_cast<T>(1.0 - a.lr * a.weight_decay);
    const T eps = static_cast<T>(a.eps), bc2_sqrt = static_cast<T>(bias_correction2_sqrt);
    const T neg_step_size = static_cast<T>(-step_size);
    T* p = param.mutable_data<T>();
    const T* g = grad.data<T>();
    T* m = exp_avg.mutable_data<T>();
    T* v = exp_avg_sq.mutable_data<T>();
    T* v_max = a.amsgrad ? max_exp_avg_sq.mutable_data<T>() : nullptr;
    for (std::int64_t i = 0, n = param.numel(); i < n; ++i) {
      T gi = a.maximize ? -g[i] : g[i];
      if (a.decoupled)
        p[i] = p[i] * decay_factor;
      else if (a.weight_decay != 0.0)
        gi = gi + weight_decay * p[i];
      m[i] = m[i] * beta1 + one_minus_beta1 * gi;
      v[i] = v[i] * beta2 + one_minus_beta2 * gi * gi;
      T second = v[i];
      if (a.amsgrad) second = v_max[i] = std::max(v_max[i], v[i]);
      const T denom = std::sqrt(second) / bc2_sqrt + eps;
      p[i] = p[i] + neg_step_size * (m[i] / denom);
    }
  });
}

}  // namespace

std::span<const OptionField<AdamOptions>> AdamOptions::fields() {
  using O = AdamOptions;
  static const OptionField<O> table[] = {
      field<&O::lr_>("lr"),
      pair_field<&O::betas_, 0>("betas", "beta1"),
      pair_field<&O::betas_, 1>("betas", "beta2"),
      field<&O::eps_>("eps"),
      field<&O::weight_decay_>("weight_decay"),
      field<&O::amsgrad_>("amsgrad"),
      field<&O::maximize_>("maximize"),
  };
  return table;
}

std::span<const OptionField<AdamWOptions>> AdamWOptions::fields() {
  using O = AdamWOptions;
  static const OptionField<O> table[] = {
      field<&O::lr_>("lr"),
      pair_field<&O::betas_, 0>("betas", "beta1"),
      pair_field<&O::betas_, 1>("betas", "beta2"),
      field<&O::eps_>("eps"),
      field<&O::weight_decay_>("weight_decay"),
      field<&O::amsgrad_>("amsgrad"),
      field<&O::maximize_>("maximize"),
  };
  return table;
}

Adam::Adam(std::vector<Tensor> params, const AdamOptions& defaults)
    : Adam(std::vector<ParamGroup>{ParamGroup(std::move(params))}, defaults) {}

Adam::Adam(std::vector<ParamGroup> groups, const AdamOptions& defaults) : Optimizer("Adam", defaults.clone()) {
  init(std::move(groups));
}

void Adam::validate(const OptimizerOptions& options) const {
  adam_validate(detail::options_as<AdamOptions>(options, name(), "AdamOptions"), name());
}

void Adam::update(Tensor& param, const Tensor& grad, ParamState& state, const OptimizerOptions& options) {
  adam_update(param, grad, state, adam_params(static_cast<const AdamOptions&>(options), false));
}

AdamW::AdamW(std::vector<Tensor> params, const AdamWOptions& defaults)
    : AdamW(std::vector<ParamGroup>{ParamGroup(std::move(params))}, defaults) {}

AdamW::AdamW(std::vector<ParamGroup> groups, const AdamWOptions& defaults) : Optimizer("AdamW", defaults.clone()) {
  init(std::move(groups));
}

void AdamW::validate(const OptimizerOptions& options) const {
  adam_validate(detail::options_as<AdamWOptions>(options, name(), "AdamWOptions"), name());
}

void AdamW::update(Tensor& param, const Tensor& grad, ParamState& state, const OptimizerOptions& options) {
  adam_update(param, grad, state, adam_params(static_cast<const AdamWOptions&>(options), true));
}

}  // namespace xgrad::optim
