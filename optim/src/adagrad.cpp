#include <xgrad/optim/adagrad.hpp>

#include <cmath>

#include "util.hpp"

namespace xgrad::optim {

std::span<const OptionField<AdagradOptions>> AdagradOptions::fields() {
  using O = AdagradOptions;
  static const OptionField<O> table[] = {
      field<&O::lr_>("lr"),
      field<&O::lr_decay_>("lr_decay"),
      field<&O::weight_decay_>("weight_decay"),
      field<&O::initial_accumulator_value_>("initial_accumulator_value"),
      field<&O::eps_>("eps"),
      field<&O::maximize_>("maximize"),
  };
  return table;
}

Adagrad::Adagrad(std::vector<Tensor> params, const AdagradOptions& defaults)
    : Adagrad(std::vector<ParamGroup>{ParamGroup(std::move(params))}, defaults) {}

Adagrad::Adagrad(std::vector<ParamGroup> groups, const AdagradOptions& defaults)
    : Optimizer("Adagrad", defaults.clone()) {
  init(std::move(groups));
}

void Adagrad::validate(const OptimizerOptions& options) const {
  const auto& o = detail::options_as<AdagradOptions>(options, name(), "AdagradOptions");
  detail::check(o.lr() >= 0.0, name(), "learning rate", o.lr(), ">= 0");
  detail::check(o.lr_decay() >= 0.0, name(), "lr_decay", o.lr_decay(), ">= 0");
  detail::check(o.weight_decay() >= 0.0, name(), "weight_decay", o.weight_decay(), ">= 0");
  detail::check(o.initial_accumulator_value() >= 0.0, name(), "initial_accumulator_value",
                o.initial_accumulator_value(), ">= 0");
  detail::check(o.eps() >= 0.0, name(), "epsilon", o.eps(), ">= 0");
}

// torch.optim._single_tensor_adagrad (1.13), dense gradients.
void Adagrad::update(Tensor& param, const Tensor& grad, ParamState& state, const OptimizerOptions& options) {
  const auto& o = static_cast<const AdagradOptions&>(options);
  Tensor sum = detail::buffer(state, "sum", param, o.initial_accumulator_value());
  const std::int64_t step = ++state.step;
  const double clr = o.lr() / (1.0 + static_cast<double>(step - 1) * o.lr_decay());
  detail::dispatch_float(param.dtype(), [&]<class T>() {
    const T weight_decay = static_cast<T>(o.weight_decay()), eps = static_cast<T>(o.eps());
    const T neg_clr = static_cast<T>(-clr);
    T* p = param.mutable_data<T>();
    const T* g = grad.data<T>();
    T* s = sum.mutable_data<T>();
    for (std::int64_t i = 0, n = param.numel(); i < n; ++i) {
      T gi = o.maximize() ? -g[i] : g[i];
      if (o.weight_decay() != 0.0) gi = gi + weight_decay * p[i];
      s[i] = s[i] + gi * gi;
      const T std_dev = std::sqrt(s[i]) + eps;
      p[i] = p[i] + neg_clr * (gi / std_dev);
    }
  });
}

}  // namespace xgrad::optim
