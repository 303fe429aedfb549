#include <xgrad/optim/sgd.hpp>

#include "util.hpp"

namespace xgrad::optim {

std::span<const OptionField<SGDOptions>> SGDOptions::fields() {
  using O = SGDOptions;
  static const OptionField<O> table[] = {
      field<&O::lr_>("lr"),
      field<&O::momentum_>("momentum"),
      field<&O::dampening_>("dampening"),
      field<&O::weight_decay_>("weight_decay"),
      field<&O::nesterov_>("nesterov"),
      field<&O::maximize_>("maximize"),
  };
  return table;
}

SGD::SGD(std::vector<Tensor> params, const SGDOptions& defaults)
    : SGD(std::vector<ParamGroup>{ParamGroup(std::move(params))}, defaults) {}

SGD::SGD(std::vector<ParamGroup> groups, const SGDOptions& defaults)
    : Optimizer("SGD", defaults.clone()) {
  init(std::move(groups));
}

void SGD::validate(const OptimizerOptions& options) const {
  const auto& o = detail::options_as<SGDOptions>(options, name(), "SGDOptions");
  detail::check(o.lr() >= 0.0, name(), "learning rate", o.lr(), ">= 0");
  detail::check(o.momentum() >= 0.0, name(), "momentum", o.momentum(), ">= 0");
  detail::check(o.weight_decay() >= 0.0, name(), "weight_decay", o.weight_decay(), ">= 0");
  if (o.nesterov() && (o.momentum() <= 0.0 || o.dampening() != 0.0))
    fail(fmt::format("Nesterov momentum requires a momentum > 0 and zero dampening (got momentum {}, dampening {})",
                     o.momentum(), o.dampening()));
}

void SGD::update(Tensor& param, const Tensor& grad, ParamState& state, const OptimizerOptions& options) {
  const auto& o = static_cast<const SGDOptions&>(options);
  ++state.step;
  const bool use_momentum = o.momentum() != 0.0;
  bool first = false;
  Tensor buf = use_momentum ? detail::buffer(state, "momentum_buffer", param, 0.0, &first) : Tensor();
  detail::dispatch_float(param.dtype(), [&]<class T>() {
    // Each scalar is rounded to T once, as PyTorch does with a Python number and a T tensor.
    const T weight_decay = static_cast<T>(o.weight_decay());
    const T momentum = static_cast<T>(o.momentum());
    const T one_minus_dampening = static_cast<T>(1.0 - o.dampening());
    const T neg_lr = static_cast<T>(-o.lr());
    T* p = param.mutable_data<T>();
    const T* g = grad.data<T>();
    T* b = use_momentum ? buf.mutable_data<T>() : nullptr;
    for (std::int64_t i = 0, n = param.numel(); i < n; ++i) {
      T d = o.maximize() ? -g[i] : g[i];
      if (o.weight_decay() != 0.0) d = d + weight_decay * p[i];
      if (use_momentum) {
        b[i] = first ? d : b[i] * momentum + one_minus_dampening * d;
        d = o.nesterov() ? d + momentum * b[i] : b[i];
      }
      p[i] = p[i] + neg_lr * d;
    }
  });
}

}  // namespace xgrad::optim
