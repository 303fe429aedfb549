#include <xgrad/optim/rmsprop.hpp>

#include <cmath>

#include "util.hpp"

namespace xgrad::optim {

RMSpropOptions RMSpropOptions::keras(double lr) {
  return RMSpropOptions(lr).alpha(0.9).eps(1e-7).convention(RMSpropConvention::keras);
}

std::span<const OptionField<RMSpropOptions>> RMSpropOptions::fields() {
  using O = RMSpropOptions;
  static const OptionField<O> table[] = {
      field<&O::lr_>("lr"),
      field<&O::alpha_>("alpha"),
      field<&O::eps_>("eps"),
      field<&O::weight_decay_>("weight_decay"),
      field<&O::momentum_>("momentum"),
      field<&O::centered_>("centered"),
      field<&O::maximize_>("maximize"),
      // Saved as a flag named "keras" (files written before the field table load unchanged).
      {"convention", "keras",
       [](const O& o) { return o.convention() == RMSpropConvention::keras ? 1.0 : 0.0; },
       [](O& o, double v) { o.convention(v != 0.0 ? RMSpropConvention::keras : RMSpropConvention::pytorch); }},
  };
  return table;
}

RMSprop::RMSprop(std::vector<Tensor> params, const RMSpropOptions& defaults)
    : RMSprop(std::vector<ParamGroup>{ParamGroup(std::move(params))}, defaults) {}

RMSprop::RMSprop(std::vector<ParamGroup> groups, const RMSpropOptions& defaults)
    : Optimizer("RMSprop", defaults.clone()) {
  init(std::move(groups));
}

void RMSprop::validate(const OptimizerOptions& options) const {
  const auto& o = detail::options_as<RMSpropOptions>(options, name(), "RMSpropOptions");
  detail::check(o.lr() >= 0.0, name(), "learning rate", o.lr(), ">= 0");
  detail::check(o.eps() >= 0.0, name(), "epsilon", o.eps(), ">= 0");
  detail::check(o.momentum() >= 0.0, name(), "momentum", o.momentum(), ">= 0");
  detail::check(o.weight_decay() >= 0.0, name(), "weight_decay", o.weight_decay(), ">= 0");
  detail::check(o.alpha() >= 0.0, name(), "alpha", o.alpha(), ">= 0");
}

void RMSprop::update(Tensor& param, const Tensor& grad, ParamState& state, const OptimizerOptions& options) {
  const auto& o = static_cast<const RMSpropOptions&>(options);
  const bool keras = o.convention() == RMSpropConvention::keras;
  const bool use_momentum = o.momentum() > 0.0;
  ++state.step;
  Tensor square_avg = detail::buffer(state, "square_avg", param, 0.0);
  Tensor grad_avg = o.centered() ? detail::buffer(state, "grad_avg", param, 0.0) : Tensor();
  Tensor momentum_buffer = use_momentum ? detail::buffer(state, "momentum_buffer", param, 0.0) : Tensor();
  detail::dispatch_float(param.dtype(), [&]<class T>() {
    const T alpha = static_cast<T>(o.alpha()), one_minus_alpha = static_cast<T>(1.0 - o.alpha());
    const T eps = static_cast<T>(o.eps()), momentum = static_cast<T>(o.momentum());
    const T weight_decay = static_cast<T>(o.weight_decay());
    const T lr = static_cast<T>(o.lr()), neg_lr = static_cast<T>(-o.lr());
    T* p = param.mutable_data<T>();
    const T* g = grad.data<T>();
    T* v = square_avg.mutable_data<T>();
    T* a = o.centered() ? grad_avg.mutable_data<T>() : nullptr;
    T* b = use_momentum ? momentum_buffer.mutable_data<T>() : nullptr;
    const std::int64_t n = param.numel();
    if (!keras) {
      // torch.optim._single_tensor_rmsprop (1.13).
      for (std::int64_t i = 0; i < n; ++i) {
        T gi = o.maximize() ? -g[i] : g[i];
        if (o.weight_decay() != 0.0) gi = gi + weight_decay * p[i];
        v[i] = v[i] * alpha + one_minus_alpha * gi * gi;
        T avg;
        if (o.centered()) {
          a[i] = a[i] * alpha + one_minus_alpha * gi;
          avg = std::sqrt(v[i] + T(-1) * a[i] * a[i]);
        } else {
          avg = std::sqrt(v[i]);
        }
        avg = avg + eps;
        if (use_momentum) {
          b[i] = b[i] * momentum + gi / avg;
          p[i] = p[i] + neg_lr * b[i];
        } else {
          p[i] = p[i] + neg_lr * (gi / avg);
        }
      }
    } else {
      // keras.optimizers.RMSprop.update_step (Keras 3), after Keras's decoupled weight decay.
      for (std::int64_t i = 0; i < n; ++i) {
        const T gi = o.maximize() ? -g[i] : g[i];
        if (o.weight_decay() != 0.0) p[i] = p[i] - p[i] * weight_decay * lr;
        v[i] = alpha * v[i] + one_minus_alpha * (gi * gi);
        T denom;
        if (o.centered()) {
          a[i] = alpha * a[i] + one_minus_alpha * gi;
          denom = v[i] - a[i] * a[i] + eps;
        } else {
          denom = v[i] + eps;
        }
        const T increment = lr * gi / std::sqrt(denom);
        if (use_momentum) {
          b[i] = momentum * b[i] + increment;
          p[i] = p[i] - b[i];
        } else {
          p[i] = p[i] - increment;
        }
      }
    }
  });
}

}  // namespace xgrad::optim
