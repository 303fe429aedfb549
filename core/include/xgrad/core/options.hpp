#pragma once
/// \file
/// XGRAD_ARG: the one way every xgrad options struct declares an option (the PyTorch
/// C++ frontend's TORCH_ARG shape).

namespace xgrad::detail {

/// What an option's setter returns: the options struct itself, or, when the struct declares
/// `using options_type = Derived;` (a CRTP base such as nn::RecurrentOptionsBase<Derived>),
/// the derived struct, so a chain keeps the derived type across base and derived setters.
/// Example: `return ::xgrad::detail::options_self(*this);`
template <class Self>
constexpr auto& options_self(Self& self) noexcept {
  if constexpr (requires { typename Self::options_type; })
    return static_cast<typename Self::options_type&>(self);
  else
    return self;
}

}  // namespace xgrad::detail

/// Declares an option of an options struct: a chained setter `name(value)` that returns the
/// struct (its `options_type` when it names one), a getter `name()`, and the private member
/// `name##_`, whose default follows the macro. T may be any type spelled without a
/// top-level comma (name a pair through an alias, as optim::Betas). Declarations after the
/// macro are private: write `public:` again before anything else public.
/// Example:
///
///     struct MyOptions {
///       explicit MyOptions(double lr) : lr_(lr) {}
///       XGRAD_ARG(double, lr);
///       XGRAD_ARG(int, steps) = 10;
///     };
///     MyOptions o = MyOptions(0.1).steps(20);   // o.lr() == 0.1, o.steps() == 20
#define XGRAD_ARG(T, name)                                           \
 public:                                                             \
  auto& name(const std::type_identity_t<T>& new_value) {             \
    this->name##_ = new_value;                                       \
    return ::xgrad::detail::options_self(*this);                     \
  }                                                                  \
  const std::type_identity_t<T>& name() const noexcept {             \
    return this->name##_;                                            \
  }                                                                  \
                                                                     \
 private:                                                            \
  T name##_
