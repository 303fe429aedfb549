#pragma once
/// \file
/// Module: the base class of every layer and model. It owns nothing but names: the
/// parameters, buffers and submodules registered with it, in registration order.
#include <cstdint>
#include <functional>
#include <iosfwd>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include <xgrad/core/gradcheck.hpp>
#include <xgrad/core/io.hpp>
#include <xgrad/core/tensor.hpp>

namespace xgrad::nn {

/// What load_state_dict did not match (only ever non-empty when `strict` is false).
struct LoadStateDictResult {
  std::vector<std::string> missing_keys;     ///< in the module, absent from the state dict
  std::vector<std::string> unexpected_keys;  ///< in the state dict, absent from the module
};

/// Base class of layers and models, spelled as PyTorch's C++ frontend.
///
/// A module registers its parameters, buffers and submodules by name in its constructor;
/// registration order is identity: `parameters()` and `state_dict()` follow it, and dotted
/// names equal PyTorch's state-dict keys (`lstm.weight_ih_l0`, `head.bias`), so weights
/// trained in PyTorch load by name.
///
/// Registered tensors are handles shared with the member that holds them. Change their
/// values in place (`copy_`, `set_data`, the `nn::init` functions), never by assigning a new
/// tensor to the member: the registry would keep the old one.
///
/// Modules are not copyable. They move when every submodule is owned (registered through a
/// `std::shared_ptr`, as the built-in layers' are), so a function can return an `nn::LSTM`
/// or a `Sequential` by value; moving a module with a member registered by reference throws,
/// naming it (the parent holds a pointer to the member, which would stay behind).
///
/// Example:
///
///     struct Forecaster : nn::Module {
///       nn::LSTM lstm{nn::LSTMOptions(1, 64).num_layers(2).batch_first(true)};
///       nn::Linear head{64, 1};
///       Forecaster() { register_module("lstm", lstm); register_module("head", head); }
///       Tensor forward(const Tensor& x) { auto [out, state] = lstm(x); return head(out.select(1, -1)); }
///     };
class Module {
 public:
  Module() = default;
  virtual ~Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;
  /// Takes over `other`'s parameters, buffers and submodules (same tensors, same names);
  /// throws, naming it, when `other` holds a member registered by reference.
  Module(Module&& other);
  /// As the move constructor.
  Module& operator=(Module&& other);

  // --- registration ---------------------------------------------------------------------
  /// Registers `tensor` as a parameter called `name` and returns the handle to keep in the
  /// member (the same tensor, made a leaf that requires grad unless `requires_grad` is false).
  /// Names are unique per module, non-empty and without '.'.
  /// Example: `weight = register_parameter("weight", empty({out, in}));`
  Tensor register_parameter(std::string name, Tensor tensor, bool requires_grad = true);

  /// Registers a tensor that is state but not a parameter (running statistics, masks). It
  /// is saved in `state_dict()` unless `persistent` is false, and converted by `to(dtype)`
  /// when floating-point.
  /// Example: `steps = register_buffer("steps", zeros({}, DType::i64));`
  Tensor register_buffer(std::string name, Tensor tensor, bool persistent = true);

  /// Registers a member submodule (non-owning: the member must outlive its registration,
  /// which it does as a member). Returns the member.
  /// Example: `nn::Linear head{64, 1};  Model() { register_module("head", head); }`
  template <class M>
  M& register_module(std::string name, M& module) {
    static_assert(std::is_base_of_v<Module, M>, "register_module: M must derive from nn::Module");
    add_child(std::move(name), static_cast<Module*>(&module), nullptr);
    return module;
  }

  /// Registers a submodule this module shares ownership of. Returns it.
  /// Example: `auto fc = register_module("fc", std::make_shared<nn::Linear>(4, 2));`
  template <class M>
  std::shared_ptr<M> register_module(std::string name, std::shared_ptr<M> module) {
    static_assert(std::is_base_of_v<Module, M>, "register_module: M must derive from nn::Module");
    Module* raw = module.get();
    add_child(std::move(name), raw, std::static_pointer_cast<Module>(module));
    return module;
  }

  /// Registers a submodule whose entries are keyed in this module's own namespace, as
  /// `<entry><key_suffix>` with dots in nested names turned into '_' — how PyTorch's RNN
  /// names its per-layer weights (`weight_ih_l0`, `bias_hh_l1_reverse`). It is a child like
  /// any other for train()/eval(), to(), apply(), children() and named_modules(); only the
  /// keys of named_parameters(), named_buffers() and state_dict() differ, and repr() leaves
  /// it to this module's own line. Returns it.
  /// Example: `register_inlined_module("cell_l0", cell, "_l0");   // cell.weight_ih → weight_ih_l0`
  template <class M>
  std::shared_ptr<M> register_inlined_module(std::string name, std::shared_ptr<M> module, std::string key_suffix) {
    static_assert(std::is_base_of_v<Module, M>, "register_inlined_module: M must derive from nn::Module");
    Module* raw = module.get();
    add_child(std::move(name), raw, std::static_pointer_cast<Module>(module), std::move(key_suffix), true);
    return module;
  }

  // --- traversal ---------------------------------------------------------------------------
  /// The parameters in registration order, this module's first, then each child's
  /// (recursively unless `recurse` is false). A tensor registered twice appears once.
  /// Example: `optim::SGD opt(model.parameters(), optim::SGDOptions(0.1));`
  std::vector<Tensor> parameters(bool recurse = true) const;
  /// The parameters with dotted names equal to PyTorch's state-dict keys.
  /// Example: `for (auto& [name, p] : model.named_parameters()) fmt::print("{} {}\n", name, shape_str(p.shape()));`
  NamedTensors named_parameters(bool recurse = true) const;
  /// The buffers, in the same order and naming as parameters.
  /// Example: `for (auto& b : model.buffers()) fmt::print("{}\n", b);`
  std::vector<Tensor> buffers(bool recurse = true) const;
  /// Example: `auto named = model.named_buffers();  // {"bn.running_mean", ...}`
  NamedTensors named_buffers(bool recurse = true) const;
  /// The direct submodules in registration order.
  /// Example: `for (nn::Module* child : model.children()) fmt::print("{}\n", child->type_name());`
  std::vector<Module*> children() const;
  /// The direct submodules with their registration names.
  std::vector<std::pair<std::string, Module*>> named_children() const;
  /// This module (named "") and every descendant, depth first, with dotted names.
  std::vector<std::pair<std::string, Module*>> named_modules() const;
  /// Calls `fn` on every submodule (depth first, children before parents) and on this one.
  /// Example: `model.apply([](nn::Module& m) { if (auto* l = dynamic_cast<nn::Linear*>(&m)) nn::init::zeros_(l->bias); });`
  void apply(const std::function<void(Module&)>& fn);

  // --- mode and state ----------------------------------------------------------------------
  /// Sets training mode on this module and every descendant (Dropout and the recurrent
  /// layers' inter-layer dropout act only in training). Modules start in training mode.
  /// Example: `model.eval();  auto y = model(x);  model.train();`
  virtual void train(bool on = true);
  /// Same as `train(false)`.
  void eval() { train(false); }
  /// True in training mode (the default), false after eval().
  bool is_training() const { return training_; }

  /// Clears every parameter's gradient: undefined if `set_to_none` (PyTorch's default),
  /// else zeros.
  void zero_grad(bool set_to_none = true);

  /// Converts every parameter and every floating-point buffer to `dtype` (f32 or f64) in
  /// place: the handles held by members stay valid. Gradients are dropped. Returns *this.
  /// Example: `model.to(DType::f64);  // for gradcheck`
  Module& to(DType dtype);

  /// Number of parameter elements (only those that require grad if `trainable_only`).
  /// Example: `nn::Linear(64, 1).num_parameters() == 65`
  std::int64_t num_parameters(bool trainable_only = false) const;

  // --- checkpoints -------------------------------------------------------------------------
  /// Parameters and persistent buffers by dotted name, as PyTorch's `state_dict()`: for
  /// each module its parameters, then its buffers, then its children's entries (a module
  /// registered under two names appears under both). The tensors share data with the module
  /// but are detached from the graph.
  /// Example: `save_safetensors("model.safetensors", model.state_dict());`
  NamedTensors state_dict() const;

  /// Copies values from `state` into the parameters and buffers by name. Throws an Error
  /// naming the key for a shape or dtype mismatch and, when `strict`, for missing or
  /// unexpected keys; nothing is copied when it throws. Non-strict loads return the keys
  /// that did not match.
  /// Example: `model.load_state_dict(load_safetensors("torch_weights.safetensors").tensors);`
  LoadStateDictResult load_state_dict(const NamedTensors& state, bool strict = true);

  /// Writes a *weights file*: `state_dict()` as a safetensors file (atomically), readable by
  /// Python's `safetensors` and loadable into the same PyTorch model with `load_state_dict`.
  /// (`train::ModelCheckpoint` writes the same kind of file. A *training checkpoint* —
  /// weights, optimizer, scheduler, epoch and random generator, for resuming — is
  /// `train::save_checkpoint`'s and `FitOptions::checkpoint`'s.)
  /// As `save_safetensors`: a device, FIFO or directory at `path` is refused, a symlink followed.
  /// Example: `model.save("model.safetensors");`
  void save(const std::string& path) const;
  /// Reads a weights file and loads it with `load_state_dict(…, strict)`. Handed a training
  /// checkpoint, throws naming `train::load_checkpoint`, which reads those.
  /// Example: `model.load("model.safetensors");`
  LoadStateDictResult load(const std::string& path, bool strict = true);

  // --- printing ----------------------------------------------------------------------------
  /// The type name shown by `repr()`: the class name without namespaces, e.g. "Linear".
  virtual std::string type_name() const;
  /// The layer's configuration shown inside the parentheses,
  /// e.g. "in_features=64, out_features=1, bias=true". Empty by default.
  virtual std::string extra_repr() const { return {}; }
  /// PyTorch-style description, children nested and indented:
  ///
  ///     Forecaster(
  ///       (lstm): LSTM(1, 64, num_layers=2, batch_first=true)
  ///       (head): Linear(in_features=64, out_features=1, bias=true)
  ///     )
  std::string repr() const;

 private:
  struct Child {
    std::string name;
    Module* module;
    std::shared_ptr<Module> owner;  // null for members registered by reference
    std::string key_suffix;         // for an inlined child: its entries are keyed <entry><suffix>
    bool inlined = false;
  };
  // Maps an entry name of some module to its key from the module a walk started at.
  using KeyFn = std::function<std::string(const std::string&)>;
  struct Buffer {
    std::string name;
    Tensor tensor;
    bool persistent;
  };

  void check_new_name(const std::string& name, const char* what) const;
  void check_movable() const;
  void add_child(std::string name, Module* module, std::shared_ptr<Module> owner, std::string key_suffix = {},
                 bool inlined = false);
  // The key function of child c, given this module's.
  static KeyFn child_keys(const KeyFn& key, const Child& c);
  // Calls fn(key, module) on this module and every submodule, pre-order; each module once.
  void walk(const KeyFn& key, const std::function<void(const KeyFn&, const Module&)>& fn) const;
  void collect_state(const KeyFn& key, NamedTensors& out) const;

  NamedTensors parameters_;
  std::vector<Buffer> buffers_;
  std::vector<Child> children_;
  bool training_ = true;
};

/// A module with one tensor in and one tensor out. Layers derive from it so that
/// Sequential can hold any of them; call it as a function. Modules with more inputs derive
/// from Module and define their own `forward(...)` (the convention: inputs first, then
/// optional state, then `const Lengths&`), as the recurrent layers do.
/// Example: `nn::Linear fc(4, 2);  Tensor y = fc(x);  // same as fc.forward(x)`
class UnaryModule : public Module {
 public:
  /// The layer's computation; override it in a derived class.
  virtual Tensor forward(const Tensor& input) = 0;
  /// Calls forward.
  Tensor operator()(const Tensor& input) { return forward(input); }
};

/// Prints `module.repr()`.
/// Example: `std::cout << model << "\n";`
std::ostream& operator<<(std::ostream& os, const Module& module);

/// gradcheck over every parameter of `module` (f64: call `module.to(DType::f64)` first): `fn`
/// runs the module, for instance a cell of yours through the sequence driver, and returns an
/// output; each parameter element is checked against central differences.
/// Example: `auto r = nn::gradcheck(lstm, [&] { return lstm(x).output; });  CHECK(r.ok);`
inline GradcheckResult gradcheck(Module& module, const std::function<Tensor()>& fn,
                                 const GradcheckOptions& options = {}) {
  return gradcheck_parameters(fn, module.parameters(), options);
}

}  // namespace xgrad::nn

// Kept out of the API reference: Doxygen cannot place a specialization in fmt's namespace.
/// \cond
/// `fmt::print("{}\n", model);` for every Module-derived type.
template <class M>
struct fmt::formatter<M, char, std::enable_if_t<std::is_base_of_v<xgrad::nn::Module, M>>>
    : fmt::formatter<std::string> {
  template <class FormatContext>
  auto format(const M& module, FormatContext& ctx) const {
    return fmt::formatter<std::string>::format(module.repr(), ctx);
  }
};
/// \endcond
