#pragma once
/// \file
/// The optimizer base: parameter groups with per-group options, per-parameter state,
/// zero_grad, step and the state dict shared by every algorithm.
#include <concepts>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include <xgrad/core/io.hpp>
#include <xgrad/core/options.hpp>
#include <xgrad/core/tensor.hpp>

namespace xgrad::optim {

/// The hyper-parameters of one algorithm (SGDOptions, AdamOptions, ...), as stored in each
/// parameter group. Every value is a number (booleans and enums as 0/1/...), so the whole
/// set is written to a state dict as named scalars.
///
/// Example:
///
///     OptimizerOptions& o = opt.param_groups()[0].options();
///     o.set_lr(o.get_lr() * 0.5);   // what a scheduler does
class OptimizerOptions {
 public:
  virtual ~OptimizerOptions() = default;
  /// A copy of the concrete options. Example: `auto copy = opt.defaults().clone();`
  virtual std::unique_ptr<OptimizerOptions> clone() const = 0;
  /// The learning rate. Example: `double lr = group.options().get_lr();`
  virtual double get_lr() const = 0;
  /// Example: `group.options().set_lr(1e-4);`
  virtual void set_lr(double lr) = 0;
  /// Every hyper-parameter as (name, value), e.g. {("lr", 1e-3), ("beta1", 0.9), ...}.
  /// Example: `for (auto& [name, v] : opt.defaults().values()) fmt::print("{}={}\n", name, v);`
  virtual std::vector<std::pair<std::string, double>> values() const = 0;
  /// Sets the hyper-parameter `name` (one of the names `values()` lists) to `value`; throws
  /// for an unknown name. Example: `options.set_value("beta2", 0.98);`
  virtual void set_value(const std::string& name, double value) = 0;
};

/// One hyper-parameter of an optimizer's options as `values()` and the state dict name it:
/// the XGRAD_ARG it belongs to (`arg`, "betas"), its key ("beta1": a pair is two keys), and
/// its conversion to and from that number. An options struct lists its fields once, in
/// `fields()`; `values()` and `set_value()` are derived from that list.
/// Example: `for (const auto& f : optim::AdamOptions::fields()) fmt::print("{} ", f.key);`
template <class Options>
struct OptionField {
  const char* arg;                  ///< the XGRAD_ARG's name, e.g. "betas"
  const char* key;                  ///< the name in values() and the state dict, e.g. "beta1"
  double (*get)(const Options&);    ///< reads the value as a number
  void (*set)(Options&, double);    ///< writes it from a number
};

namespace detail {
template <class Member>
struct member_of;
template <class O, class T>
struct member_of<T O::*> {
  using owner = O;
  using type = T;
};
[[noreturn]] void unknown_value(std::string_view options, const std::string& name);
}  // namespace detail

/// The field of a number or bool option, saved under its own name (a bool as 0 or 1; any
/// nonzero number loads as true).
/// Example (in `SGDOptions::fields()`): `optim::field<&SGDOptions::momentum_>("momentum")`
template <auto Member>
constexpr OptionField<typename detail::member_of<decltype(Member)>::owner> field(const char* name) {
  using O = typename detail::member_of<decltype(Member)>::owner;
  using T = typename detail::member_of<decltype(Member)>::type;
  static_assert(std::is_arithmetic_v<T>, "optim::field: a number or bool option (give other kinds their own get/set)");
  return {name, name, [](const O& o) { return static_cast<double>(o.*Member); },
          [](O& o, double v) {
            if constexpr (std::is_same_v<T, bool>)
              o.*Member = v != 0.0;
            else
              o.*Member = static_cast<T>(v);
          }};
}

/// The field of element I (0 or 1) of a pair option, saved under `key`.
/// Example (in `AdamOptions::fields()`): `optim::pair_field<&AdamOptions::betas_, 0>("betas", "beta1")`
template <auto Member, std::size_t I>
constexpr OptionField<typename detail::member_of<decltype(Member)>::owner> pair_field(const char* arg, const char* key) {
  using O = typename detail::member_of<decltype(Member)>::owner;
  return {arg, key, [](const O& o) { return static_cast<double>(std::get<I>(o.*Member)); },
          [](O& o, double v) { std::get<I>(o.*Member) = v; }};
}

/// Implements the OptimizerOptions interface of an options struct from its `lr()` and its
/// static `fields()` (a `std::span<const OptionField<Derived>>` naming every XGRAD_ARG) and
/// `type_name` ("AdamOptions", for errors).
/// Example:
///
///     struct MyOptions : public optim::OptionsBase<MyOptions> {
///       static constexpr const char* type_name = "MyOptions";
///       XGRAD_ARG(double, lr) = 0.1;
///      public:
///       static std::span<const optim::OptionField<MyOptions>> fields();  // {field<&MyOptions::lr_>("lr")}
///     };
template <class Derived>
class OptionsBase : public OptimizerOptions {
 public:
  /// A copy of the Derived options.
  std::unique_ptr<OptimizerOptions> clone() const override {
    return std::make_unique<Derived>(self());
  }
  /// Derived's `lr()`.
  double get_lr() const override { return self().lr(); }
  /// Sets Derived's `lr`.
  void set_lr(double lr) override { static_cast<Derived&>(*this).lr(lr); }
  /// (key, value) of every field in `Derived::fields()`, in that order.
  std::vector<std::pair<std::string, double>> values() const override {
    std::vector<std::pair<std::string, double>> out;
    for (const OptionField<Derived>& f : Derived::fields()) out.emplace_back(f.key, f.get(self()));
    return out;
  }
  /// Sets the field whose key is `name`; throws naming Derived::type_name for an unknown one.
  void set_value(const std::string& name, double value) override {
    for (const OptionField<Derived>& f : Derived::fields())
      if (name == f.key) return f.set(static_cast<Derived&>(*this), value);
    detail::unknown_value(Derived::type_name, name);
  }

 private:
  const Derived& self() const { return static_cast<const Derived&>(*this); }
};

/// Tensors optimized together with one set of options. Without options the group takes the
/// optimizer's defaults when it is added; with options they replace the defaults entirely
/// (copy the defaults and change one field to override just that one).
///
/// Example:
///
///     std::vector<optim::ParamGroup> groups{optim::ParamGroup({w1, w2}),
///                                           optim::ParamGroup({b}, optim::AdamOptions(1e-2))};
///     optim::Adam opt(groups, optim::AdamOptions(1e-3));
class ParamGroup {
 public:
  /// A group that takes the optimizer's defaults. Example: `optim::ParamGroup({w, b})`
  ParamGroup(std::vector<Tensor> params) : params_(std::move(params)) {}  // NOLINT: implicit on purpose
  /// A group with its own options. Example: `optim::ParamGroup({b}, optim::SGDOptions(0.01))`
  template <class Options>
    requires std::derived_from<Options, OptimizerOptions>
  ParamGroup(std::vector<Tensor> params, const Options& options)
      : params_(std::move(params)), options_(options.clone()) {}
  /// Copies share the tensors and copy the options (clone()).
  ///@{
  ParamGroup(const ParamGroup& other);
  ParamGroup& operator=(const ParamGroup& other);
  ///@}
  /// Moves take the tensors and the options.
  ///@{
  ParamGroup(ParamGroup&&) noexcept = default;
  ParamGroup& operator=(ParamGroup&&) noexcept = default;
  ///@}
  ~ParamGroup() = default;

  /// The group's tensors, in order. Example: `for (Tensor& p : group.params()) ...`
  ///@{
  const std::vector<Tensor>& params() const { return params_; }
  std::vector<Tensor>& params() { return params_; }
  ///@}
  /// False until the group is added to an optimizer (or built with options).
  bool has_options() const { return options_ != nullptr; }
  /// The group's options; throws if it has none yet (before being added to an optimizer).
  /// Example: `dynamic_cast<optim::AdamOptions&>(opt.param_groups()[1].options()).weight_decay(0.0);`
  ///@{
  OptimizerOptions& options();
  const OptimizerOptions& options() const;
  ///@}
  /// Replaces the options (they must be the optimizer's kind; `step()` checks).
  /// Example: `group.set_options(optim::SGDOptions(0.1).clone());`
  void set_options(std::unique_ptr<OptimizerOptions> options) { options_ = std::move(options); }

  /// The group's current learning rate (what schedulers read and write).
  /// Example: `opt.param_groups()[0].set_lr(opt.param_groups()[0].lr() * 0.1);`
  double lr() const { return options().get_lr(); }
  /// Sets the group's learning rate (options().set_lr).
  void set_lr(double lr) { options().set_lr(lr); }
  /// The learning rate a scheduler started from (PyTorch's `initial_lr`); set by the first
  /// scheduler attached to the optimizer, saved in the state dict.
  std::optional<double> initial_lr;

 private:
  std::vector<Tensor> params_;
  std::unique_ptr<OptimizerOptions> options_;
};

/// What an optimizer remembers about one parameter: its step count and named buffers of the
/// parameter's shape and dtype ("exp_avg", "momentum_buffer", ...).
/// Example: `Tensor m = opt.state(w)->buffers.at("exp_avg");`
struct ParamState {
  std::int64_t step = 0;                  ///< updates applied to the parameter so far
  std::map<std::string, Tensor> buffers;  ///< by name, each of the parameter's shape and dtype
};

/// Base of every optimizer: holds parameter groups, per-parameter state aligned with the
/// parameters, and implements zero_grad, step's loop, and the state dict.
///
/// `step()` updates every parameter that has a gradient, in place, under NoGradGuard;
/// parameters without a gradient are left untouched and get no state.
///
/// Example:
///
///     optim::Adam opt(model.parameters(), optim::AdamOptions(1e-3));
///     opt.zero_grad(); loss.backward(); opt.step();
class Optimizer {
 public:
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  /// The algorithm's name, as used in error messages: "SGD", "Adam", ...
  /// Example: `fmt::print("optimizer: {}\n", opt.name());`
  const std::string& name() const { return name_; }

  /// Adds a group (taking the defaults when it has no options). Throws an Error naming the
  /// optimizer when a parameter is undefined, not a floating-point tensor, not a leaf, or
  /// already optimized, or when an option is out of range.
  /// Example: `opt.add_param_group(optim::ParamGroup({head_w}, optim::SGDOptions(0.01)));`
  void add_param_group(ParamGroup group);
  /// The groups, in the order they were added. Example: `double lr = opt.param_groups()[0].lr();`
  ///@{
  const std::vector<ParamGroup>& param_groups() const { return groups_; }
  std::vector<ParamGroup>& param_groups() { return groups_; }
  ///@}
  /// The options a group without its own options takes.
  /// Example: `double lr = opt.defaults().get_lr();`
  const OptimizerOptions& defaults() const { return *defaults_; }
  /// Every parameter of every group, in order (the indices of the state dict).
  /// Example: `std::size_t n = opt.parameters().size();`
  std::vector<Tensor> parameters() const;

  /// Clears every parameter's gradient: undefined (`set_to_none`, the default, as PyTorch 2)
  /// or filled with zeros.
  /// Example: `opt.zero_grad();`
  void zero_grad(bool set_to_none = true);

  /// One update of every parameter that has a gradient, in place, recording no graph.
  /// Each group's options are checked first (a negative lr set by hand throws).
  /// Example: `loss.backward(); opt.step();`
  void step();
  /// Calls `closure` (which recomputes the loss and its gradients) with grad mode on, then
  /// steps; returns the closure's loss.
  /// Example: `Tensor loss = opt.step([&] { opt.zero_grad(); Tensor l = f(); l.backward(); return l; });`
  Tensor step(const std::function<Tensor()>& closure);

  /// The state of `param` (nullptr before its first update).
  /// Example: `std::int64_t steps = opt.state(w)->step;`
  const ParamState* state(const Tensor& param) const;

  /// Everything needed to resume: for each group g, "param_groups.g.params" (i64 indices of
  /// its parameters in `parameters()` order) and "param_groups.g.<hyper-parameter>" (0-d f64,
  /// e.g. "param_groups.0.lr", plus "initial_lr" when a scheduler set it); for each
  /// parameter i with state, "state.i.step" (0-d i64) and "state.i.<buffer>" (copies).
  /// Example: `save_safetensors("opt.safetensors", opt.state_dict());`
  NamedTensors state_dict() const;
  /// Restores a state dict from an optimizer of the same kind over parameters of the same
  /// groups, sizes, shapes and dtypes. Everything is checked before anything changes; a
  /// mismatch throws an Error naming the optimizer and the offending key.
  /// Example: `opt.load_state_dict(load_safetensors("opt.safetensors").tensors);`
  void load_state_dict(const NamedTensors& state);
  /// `state_dict()` written as a safetensors file whose metadata names the optimizer.
  /// Example: `opt.save("ckpt/optimizer.safetensors");`
  void save(const std::string& path) const;
  /// Loads a file written by `save()` (by the same kind of optimizer).
  /// Example: `opt.load("ckpt/optimizer.safetensors");`
  void load(const std::string& path);

 protected:
  /// For derived optimizers: `name` for errors, `defaults` for groups without options; the
  /// derived constructor then calls init().
  Optimizer(std::string name, std::unique_ptr<OptimizerOptions> defaults);
  /// Adds the groups; call it at the end of the derived constructor (it uses `validate`).
  void init(std::vector<ParamGroup> groups);
  /// Throws an Error naming the optimizer when `options` is of the wrong type or out of range.
  virtual void validate(const OptimizerOptions& options) const = 0;
  /// The names of every buffer `update` may keep in a ParamState (Adam: "exp_avg",
  /// "exp_avg_sq", "max_exp_avg_sq"); load_state_dict refuses any other, naming the key.
  virtual std::vector<std::string> state_buffer_names() const = 0;
  /// Updates one parameter with its gradient (same shape and dtype); `state` persists. Both
  /// are contiguous: `step` hands a parameter laid out otherwise over as a dense copy, and
  /// writes the copy back after.
  virtual void update(Tensor& param, const Tensor& grad, ParamState& state,
                      const OptimizerOptions& options) = 0;
  /// Throws "<name>: <message>".
  [[noreturn]] void fail(const std::string& message) const;

 private:
  std::string name_;
  std::unique_ptr<OptimizerOptions> defaults_;
  std::vector<ParamGroup> groups_;
  std::unordered_map<const void*, ParamState> state_;  // keyed by the parameter's TensorImpl
};

}  // namespace xgrad::optim
