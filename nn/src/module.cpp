#include <xgrad/nn/module.hpp>

#include <cxxabi.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <ostream>
#include <set>
#include <sstream>
#include <typeinfo>

#include <xgrad/core/autograd.hpp>

namespace xgrad::nn {

namespace {

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& s : items) out += (out.empty() ? "" : ", ") + ("'" + s + "'");
  return out;
}

std::string dotted(const std::string& prefix, const std::string& name) {
  return prefix.empty() ? name : prefix + "." + name;
}

// Every line after the first indented by `spaces` (PyTorch's _addindent).
std::string indent_tail(const std::string& s, int spaces) {
  std::string out;
  for (char c : s) {
    out += c;
    if (c == '\n') out += std::string(static_cast<std::size_t>(spaces), ' ');
  }
  return out;
}

}  // namespace

// --- moving ------------------------------------------------------------------------------------

void Module::check_movable() const {
  for (const auto& c : children_)
    if (!c.owner)
      throw Error(type_name() + ": cannot move a module whose submodule '" + c.name +
                  "' is a member registered by reference (the registry would point at the moved-from member); "
                  "register it through a std::shared_ptr, or keep the module in place");
}

Module::Module(Module&& other) { *this = std::move(other); }

Module& Module::operator=(Module&& other) {
  if (this == &other) return *this;
  other.check_movable();
  parameters_ = std::move(other.parameters_);
  buffers_ = std::move(other.buffers_);
  children_ = std::move(other.children_);
  training_ = other.training_;
  other.parameters_.clear();
  other.buffers_.clear();
  other.children_.clear();
  return *this;
}

// --- registration ---------------------------------------------------------------------------

void Module::check_new_name(const std::string& name, const char* what) const {
  if (name.empty()) throw Error(std::string(what) + ": the name must not be empty");
  if (name.find('.') != std::string::npos)
    throw Error(std::string(what) + ": name '" + name + "' must not contain '.'");
  bool taken = false;
  for (const auto& [n, t] : parameters_) taken |= n == name;
  for (const auto& b : buffers_) taken |= b.name == name;
  for (const auto& c : children_) taken |= c.name == name;
  if (taken) throw Error(std::string(what) + ": '" + name + "' is already registered in " + type_name());
}

Tensor Module::register_parameter(std::string name, Tensor tensor, bool requires_grad) {
  check_new_name(name, "register_parameter");
  if (!tensor.defined()) throw Error("register_parameter: '" + name + "' is an undefined tensor");
  if (!is_floating(tensor.dtype()))
    throw Error("register_parameter: '" + name + "' must be floating-point, got " +
                std::string(dtype_name(tensor.dtype())));
  // A parameter is a leaf: a tensor computed by ops is cut out of its graph first.
  if (!tensor.is_leaf()) tensor = tensor.detach();
  tensor.requires_grad_(requires_grad);
  parameters_.emplace_back(std::move(name), tensor);
  return tensor;
}

Tensor Module::register_buffer(std::string name, Tensor tensor, bool persistent) {
  check_new_name(name, "register_buffer");
  if (!tensor.defined()) throw Error("register_buffer: '" + name + "' is an undefined tensor");
  buffers_.push_back({std::move(name), tensor, persistent});
  return tensor;
}

void Module::add_child(std::string name, Module* module, std::shared_ptr<Module> owner, std::string key_suffix,
                       bool inlined) {
  check_new_name(name, "register_module");
  if (module == nullptr) throw Error("register_module: '" + name + "' is null");
  for (const auto& [path, m] : module->named_modules())
    if (m == this) throw Error("register_module: '" + name + "' contains " + type_name() + " itself: modules form a tree");
  children_.push_back({std::move(name), module, std::move(owner), std::move(key_suffix), inlined});
}

// --- traversal -------------------------------------------------------------------------------

Module::KeyFn Module::child_keys(const KeyFn& key, const Child& c) {
  if (!c.inlined) return [key, name = c.name](const std::string& entry) { return key(name + "." + entry); };
  return [key, suffix = c.key_suffix](const std::string& entry) {
    std::string flat = entry;
    std::replace(flat.begin(), flat.end(), '.', '_');
    return key(flat + suffix);
  };
}

void Module::walk(const KeyFn& key, const std::function<void(const KeyFn&, const Module&)>& fn) const {
  // Pre-order; a module shared under two names is visited once, under the first (as PyTorch).
  std::set<const Module*> seen;
  std::vector<std::pair<KeyFn, const Module*>> stack{{key, this}};
  while (!stack.empty()) {
    auto [k, m] = std::move(stack.back());
    stack.pop_back();
    if (!seen.insert(m).second) continue;
    fn(k, *m);
    for (auto it = m->children_.rbegin(); it != m->children_.rend(); ++it) stack.emplace_back(child_keys(k, *it), it->module);
  }
}

namespace {
const auto identity_key = [](const std::string& entry) { return entry; };
}  // namespace

NamedTensors Module::named_parameters(bool recurse) const {
  NamedTensors out;
  std::set<const void*> seen;
  auto add = [&](const KeyFn& key, const Module& m) {
    for (const auto& [name, p] : m.parameters_)
      if (seen.insert(p.impl().get()).second) out.emplace_back(key(name), p);
  };
  if (recurse) walk(identity_key, add);
  else add(identity_key, *this);
  return out;
}

std::vector<Tensor> Module::parameters(bool recurse) const {
  std::vector<Tensor> out;
  for (auto& [name, p] : named_parameters(recurse)) out.push_back(p);
  return out;
}

NamedTensors Module::named_buffers(bool recurse) const {
  NamedTensors out;
  std::set<const void*> seen;
  auto add = [&](const KeyFn& key, const Module& m) {
    for (const auto& b : m.buffers_)
      if (seen.insert(b.tensor.impl().get()).second) out.emplace_back(key(b.name), b.tensor);
  };
  if (recurse) walk(identity_key, add);
  else add(identity_key, *this);
  return out;
}

std::vector<Tensor> Module::buffers(bool recurse) const {
  std::vector<Tensor> out;
  for (auto& [name, b] : named_buffers(recurse)) out.push_back(b);
  return out;
}

std::vector<std::pair<std::string, Module*>> Module::named_children() const {
  std::vector<std::pair<std::string, Module*>> out;
  for (const auto& c : children_) out.emplace_back(c.name, c.module);
  return out;
}

std::vector<Module*> Module::children() const {
  std::vector<Module*> out;
  for (const auto& c : children_) out.push_back(c.module);
  return out;
}

std::vector<std::pair<std::string, Module*>> Module::named_modules() const {
  // Iterative pre-order walk (a module shared under two names is listed once, as PyTorch).
  std::vector<std::pair<std::string, Module*>> out;
  std::set<const Module*> seen;
  std::vector<std::pair<std::string, Module*>> stack{{"", const_cast<Module*>(this)}};
  while (!stack.empty()) {
    auto [prefix, m] = stack.back();
    stack.pop_back();
    if (!seen.insert(m).second) continue;
    out.emplace_back(prefix, m);
    for (auto it = m->children_.rbegin(); it != m->children_.rend(); ++it)
      stack.emplace_back(dotted(prefix, it->name), it->module);
  }
  return out;
}

void Module::apply(const std::function<void(Module&)>& fn) {
  for (auto& c : children_) c.module->apply(fn);
  fn(*this);
}

// --- mode and state --------------------------------------------------------------------------

void Module::train(bool on) {
  training_ = on;
  for (auto& c : children_) c.module->train(on);
}

void Module::zero_grad(bool set_to_none) {
  for (auto& p : parameters())
    if (p.grad().defined()) p.zero_grad(set_to_none);
}

Module& Module::to(DType dtype) {
  if (!is_floating(dtype))
    throw Error("Module::to: modules convert to f32 or f64, not " + std::string(dtype_name(dtype)));
  NoGradGuard no_grad;
  for (auto& p : parameters())
    if (p.dtype() != dtype) p.set_data(p.to(dtype));
  for (auto& b : buffers())
    if (is_floating(b.dtype()) && b.dtype() != dtype) b.set_data(b.to(dtype));
  return *this;
}

std::int64_t Module::num_parameters(bool trainable_only) const {
  std::int64_t n = 0;
  for (const auto& p : parameters())
    if (!trainable_only || p.requires_grad()) n += p.numel();
  return n;
}

// --- checkpoints -------------------------------------------------------------------------------

void Module::collect_state(const KeyFn& key, NamedTensors& out) const {
  // PyTorch's order: each module's parameters, then its persistent buffers, then children.
  // Unlike named_modules(), a module registered under two names is saved under both.
  // (Recursion depth is the nesting depth; add_child keeps the tree free of cycles.)
  for (const auto& [name, p] : parameters_) out.emplace_back(key(name), p.detach());
  for (const auto& b : buffers_)
    if (b.persistent) out.emplace_back(key(b.name), b.tensor.detach());
  for (const auto& c : children_) c.module->collect_state(child_keys(key, c), out);
}

NamedTensors Module::state_dict() const {
  NamedTensors out;
  collect_state(identity_key, out);
  return out;
}

LoadStateDictResult Module::load_state_dict(const NamedTensors& state, bool strict) {
  std::map<std::string, const Tensor*> given;
  for (const auto& [name, t] : state) {
    if (!given.emplace(name, &t).second) throw Error("load_state_dict: key '" + name + "' appears twice");
    if (!t.defined()) throw Error("load_state_dict: '" + name + "' is an undefined tensor");
  }

  // Validate everything before copying anything, so a failed load leaves the module as it was.
  LoadStateDictResult result;
  std::vector<std::pair<Tensor, const Tensor*>> copies;
  std::set<std::string> used;
  for (auto& [key, target] : state_dict()) {
    auto it = given.find(key);
    if (it == given.end()) {
      result.missing_keys.push_back(key);
      continue;
    }
    const Tensor& source = *it->second;
    used.insert(key);
    if (source.shape() != target.shape())
      throw Error("load_state_dict: shape mismatch for '" + key + "': the state dict has " +
                  shape_str(source.shape()) + ", the module has " + shape_str(target.shape()));
    if (source.dtype() != target.dtype())
      throw Error("load_state_dict: dtype mismatch for '" + key + "': the state dict has " +
                  std::string(dtype_name(source.dtype())) + ", the module has " +
                  std::string(dtype_name(target.dtype())));
    copies.emplace_back(target, &source);
  }
  for (const auto& [name, t] : state)
    if (!used.count(name)) result.unexpected_keys.push_back(name);

  if (strict && (!result.missing_keys.empty() || !result.unexpected_keys.empty())) {
    std::string msg = "load_state_dict: error(s) loading the state dict of " + type_name() + ":";
    if (!result.missing_keys.empty()) msg += " missing key(s) " + join(result.missing_keys) + ".";
    if (!result.unexpected_keys.empty()) msg += " unexpected key(s) " + join(result.unexpected_keys) + ".";
    throw Error(msg);
  }

  NoGradGuard no_grad;
  for (auto& [target, source] : copies) target.copy_(*source);
  return result;
}

void Module::save(const std::string& path) const { save_safetensors(path, state_dict(), {{"format", "pt"}}); }

LoadStateDictResult Module::load(const std::string& path, bool strict) {
  SafetensorsFile file = load_safetensors(path);
  // A training checkpoint holds the model's weights under "model." beside the optimizer's
  // state; its generator state marks it (train/checkpoint.cpp writes it into every one).
  if (file.metadata.count("xgrad.rng_state") != 0)
    throw Error("Module::load: '" + path + "' is a training checkpoint (weights, optimizer state and progress, "
                "written by train::save_checkpoint or FitOptions::checkpoint), not a weights file: load it with "
                "train::load_checkpoint(path, model)");
  return load_state_dict(file.tensors, strict);
}

// --- printing ------------------------------------------------------------------------------------

std::string Module::type_name() const {
  const char* mangled = typeid(*this).name();
  int status = 0;
  char* demangled = abi::__cxa_demangle(mangled, nullptr, nullptr, &status);
  std::string name = status == 0 && demangled ? demangled : mangled;
  std::free(demangled);
  // Drop namespaces outside template arguments: "xgrad::nn::Linear" → "Linear".
  int depth = 0;
  std::size_t start = 0;
  for (std::size_t i = 0; i < name.size(); ++i) {
    if (name[i] == '<') ++depth;
    else if (name[i] == '>') --depth;
    else if (depth == 0 && name[i] == ':' && i + 1 < name.size() && name[i + 1] == ':') start = i + 2;
  }
  return name.substr(start);
}

std::string Module::repr() const {
  // PyTorch's Module.__repr__: extra_repr lines, then "(name): child" lines, indented by 2.
  std::vector<std::string> lines;
  const std::string extra = extra_repr();
  if (!extra.empty()) {
    std::istringstream in(extra);
    for (std::string line; std::getline(in, line);) lines.push_back(line);
  }
  bool only_extra = true;
  for (const auto& c : children_) {
    if (c.inlined) continue;  // shown by this module's own line (an RNN's cells)
    only_extra = false;
    lines.push_back("(" + c.name + "): " + indent_tail(c.module->repr(), 2));
  }

  std::string out = type_name() + "(";
  if (!lines.empty()) {
    if (only_extra && lines.size() == 1) {
      out += lines[0];
    } else {
      out += "\n";
      for (const auto& l : lines) out += "  " + l + "\n";
    }
  }
  return out + ")";
}

std::ostream& operator<<(std::ostream& os, const Module& module) { return os << module.repr(); }

}  // namespace xgrad::nn
