#include <xgrad/optim/optimizer.hpp>

#include <algorithm>
#include <cmath>

#include <charconv>
#include <set>

#include <xgrad/core/autograd.hpp>
#include <xgrad/core/ops.hpp>
#include <xgrad/core/creation.hpp>

#include "util.hpp"

namespace xgrad::optim {

void detail::unknown_value(std::string_view options, const std::string& name) {
  throw Error(std::string(options) + ": no hyper-parameter called '" + name + "'");
}

// --- ParamGroup --------------------------------------------------------------------------------

ParamGroup::ParamGroup(const ParamGroup& other)
    : initial_lr(other.initial_lr),
      params_(other.params_),
      options_(other.options_ ? other.options_->clone() : nullptr) {}

ParamGroup& ParamGroup::operator=(const ParamGroup& other) {
  if (this != &other) {
    params_ = other.params_;
    options_ = other.options_ ? other.options_->clone() : nullptr;
    initial_lr = other.initial_lr;
  }
  return *this;
}

OptimizerOptions& ParamGroup::options() {
  if (!options_) throw Error("ParamGroup: the group has no options (it takes the optimizer's defaults when added)");
  return *options_;
}

const OptimizerOptions& ParamGroup::options() const { return const_cast<ParamGroup*>(this)->options(); }

// --- Optimizer ---------------------------------------------------------------------------------

Optimizer::Optimizer(std::string name, std::unique_ptr<OptimizerOptions> defaults)
    : name_(std::move(name)), defaults_(std::move(defaults)) {}

void Optimizer::fail(const std::string& message) const { throw Error(name_ + ": " + message); }

void Optimizer::init(std::vector<ParamGroup> groups) {
  validate(*defaults_);
  std::size_t total = 0;
  for (const auto& g : groups) total += g.params().size();
  if (total == 0) fail("got an empty parameter list");
  for (auto& g : groups) add_param_group(std::move(g));
}

void Optimizer::add_param_group(ParamGroup group) {
  const std::size_t g = groups_.size();
  if (!group.has_options()) group.set_options(defaults_->clone());
  validate(group.options());

  // Where each tensor already optimized lives, to name the first place of a duplicate.
  std::unordered_map<const void*, std::string> seen;
  for (std::size_t j = 0; j < groups_.size(); ++j)
    for (std::size_t i = 0; i < groups_[j].params().size(); ++i)
      seen.emplace(groups_[j].params()[i].impl().get(), "parameter " + std::to_string(i) + " of group " + std::to_string(j));

  for (std::size_t i = 0; i < group.params().size(); ++i) {
    const Tensor& p = group.params()[i];
    const std::string where = "parameter " + std::to_string(i) + " of group " + std::to_string(g);
    if (!p.defined()) fail(where + " is an undefined tensor");
    if (!is_floating(p.dtype()))
      fail(where + " has dtype " + std::string(dtype_name(p.dtype())) +
           "; only float32 and float64 tensors can be optimized");
    if (!p.is_leaf())
      fail(where + " is not a leaf tensor (it was computed by '" + p.grad_fn_name() +
           "'); optimize the tensors it was computed from, or detach() it");
    auto [it, inserted] = seen.emplace(p.impl().get(), where);
    if (!inserted) fail(where + " is given twice (it is also " + it->second + ")");
  }
  groups_.push_back(std::move(group));
}

std::vector<Tensor> Optimizer::parameters() const {
  std::vector<Tensor> out;
  for (const auto& g : groups_) out.insert(out.end(), g.params().begin(), g.params().end());
  return out;
}

void Optimizer::zero_grad(bool set_to_none) {
  for (auto& g : groups_)
    for (auto& p : g.params()) p.zero_grad(set_to_none);
}

void Optimizer::step() {
  NoGradGuard no_grad;
  for (auto& g : groups_) {
    validate(g.options());
    for (auto& p : g.params()) {
      Tensor grad = p.grad();
      if (!grad.defined()) continue;
      // The update kernels run over consecutive elements: a parameter laid out otherwise (a
      // transposed view made a leaf, say) is updated in a dense copy, then written back.
      // contiguous() is the tensor itself when it already is.
      Tensor dense = p.contiguous();
      update(dense, grad.contiguous(), state_[p.impl().get()], g.options());
      if (dense.impl() != p.impl()) p.copy_(dense);
    }
  }
}

Tensor Optimizer::step(const std::function<Tensor()>& closure) {
  Tensor loss = closure();
  step();
  return loss;
}

const ParamState* Optimizer::state(const Tensor& param) const {
  if (!param.defined()) return nullptr;
  auto it = state_.find(param.impl().get());
  return it == state_.end() ? nullptr : &it->second;
}

// --- state dict --------------------------------------------------------------------------------

NamedTensors Optimizer::state_dict() const {
  NamedTensors out;
  std::int64_t index = 0;
  std::vector<std::pair<std::int64_t, const ParamState*>> states;
  for (std::size_t g = 0; g < groups_.size(); ++g) {
    const std::string prefix = "param_groups." + std::to_string(g) + ".";
    std::vector<std::int64_t> ids;
    for (const auto& p : groups_[g].params()) {
      if (const ParamState* s = state(p)) states.emplace_back(index, s);
      ids.push_back(index++);
    }
    out.emplace_back(prefix + "params", from_vector(ids, {static_cast<std::int64_t>(ids.size())}));
    for (const auto& [name, value] : groups_[g].options().values())
      out.emplace_back(prefix + name, scalar(value, DType::f64));
    if (groups_[g].initial_lr) out.emplace_back(prefix + "initial_lr", scalar(*groups_[g].initial_lr, DType::f64));
  }
  for (const auto& [i, s] : states) {
    const std::string prefix = "state." + std::to_string(i) + ".";
    out.emplace_back(prefix + "step", detail::int_scalar(s->step));
    for (const auto& [name, buffer] : s->buffers) out.emplace_back(prefix + name, buffer.detach().clone());
  }
  return out;
}

namespace {

// "12.exp_avg" → (12, "exp_avg"); nullopt when the text does not start with a number and a dot.
std::optional<std::pair<std::int64_t, std::string>> split_index(const std::string& rest) {
  const auto dot = rest.find('.');
  if (dot == std::string::npos || dot == 0 || dot + 1 == rest.size()) return std::nullopt;
  std::int64_t index = 0;
  auto [end, ec] = std::from_chars(rest.data(), rest.data() + dot, index);
  if (ec != std::errc() || end != rest.data() + dot || index < 0) return std::nullopt;
  return std::make_pair(index, rest.substr(dot + 1));
}

// A state dict being loaded: its entries by key and which of them were read, since every key
// must be by the end. Errors read "<optimizer>: load_state_dict: ...".
class StateReader {
 public:
  StateReader(const NamedTensors& state, std::string who) : who_(std::move(who)) {
    for (const auto& [key, t] : state) {
      if (!t.defined()) fail("'" + key + "' is an undefined tensor");
      if (!entries_.emplace(key, t).second) fail("key '" + key + "' appears twice");
    }
  }
  [[noreturn]] void fail(const std::string& message) const { throw Error(who_ + ": load_state_dict: " + message); }
  const std::string& who() const { return who_; }
  const std::map<std::string, Tensor>& entries() const { return entries_; }
  bool contains(const std::string& key) const { return entries_.count(key) > 0; }
  // The entry `key` (nullptr when absent), marked as read.
  const Tensor* take(const std::string& key) {
    auto it = entries_.find(key);
    if (it == entries_.end()) return nullptr;
    used_.insert(key);
    return &it->second;
  }
  void mark_read(const std::string& key) { used_.insert(key); }
  void check_all_read() const {
    for (const auto& [key, t] : entries_)
      if (!used_.count(key)) fail("unexpected key '" + key + "'");
  }

 private:
  std::string who_;
  std::map<std::string, Tensor> entries_;
  std::set<std::string> used_;
};

// Group g's "params": the ids of its parameters, one per parameter.
std::vector<std::int64_t> read_group_ids(StateReader& reader, const std::string& prefix, std::size_t g,
                                         std::size_t groups, std::size_t params) {
  const Tensor* ids = reader.take(prefix + "params");
  if (!ids)
    reader.fail("missing '" + prefix + "params' (the optimizer has " + std::to_string(groups) + " parameter groups)");
  if (ids->dtype() != DType::i64 || ids->dim() != 1)
    reader.fail("'" + prefix + "params' must be a 1-D int64 tensor of parameter ids, got shape " +
                shape_str(ids->shape()) + " and dtype " + std::string(dtype_name(ids->dtype())));
  if (ids->numel() != static_cast<std::int64_t>(params))
    reader.fail("'" + prefix + "params' lists " + std::to_string(ids->numel()) + " parameters, but group " +
                std::to_string(g) + " has " + std::to_string(params));
  return ids->to_vector<std::int64_t>();
}

// A group's hyper-parameters, read into a copy of its current options (validated by the caller).
std::unique_ptr<OptimizerOptions> read_group_options(StateReader& reader, const std::string& prefix,
                                                     const OptimizerOptions& current) {
  auto opts = current.clone();
  for (const auto& [name, old_value] : opts->values()) {
    const Tensor* v = reader.take(prefix + name);
    if (!v) reader.fail("missing hyper-parameter '" + prefix + name + "'");
    if (v->numel() != 1) reader.fail("'" + prefix + name + "' has shape " + shape_str(v->shape()) + ", expected a scalar");
    if (!std::isfinite(v->item())) reader.fail("'" + prefix + name + "' is not a finite number");
    opts->set_value(name, v->item());
  }
  return opts;
}

// A group's "initial_lr", which only a scheduler sets.
std::optional<double> read_initial_lr(StateReader& reader, const std::string& prefix) {
  const Tensor* init = reader.take(prefix + "initial_lr");
  if (!init) return std::nullopt;
  if (init->numel() != 1 || !is_floating(init->dtype()))
    reader.fail("'" + prefix + "initial_lr' has shape " + shape_str(init->shape()) + " and dtype " +
                std::string(dtype_name(init->dtype())) + ", expected one floating-point number");
  if (!(std::isfinite(init->item()) && init->item() >= 0.0))
    reader.fail("'" + prefix + "initial_lr' is " + std::to_string(init->item()) + ", not a finite number >= 0");
  return init->item();
}

std::int64_t read_step(const StateReader& reader, const std::string& key, const Tensor& t) {
  if (t.numel() != 1 || t.dtype() != DType::i64) reader.fail("'" + key + "' must be an integer scalar");
  const std::int64_t step = t.to_vector<std::int64_t>()[0];
  if (step < 0) reader.fail("'" + key + "' is " + std::to_string(step) + ", a step count cannot be negative");
  if (step > detail::kMaxCount)
    reader.fail("'" + key + "' is " + std::to_string(step) + ", more steps than a run can take (limit 2^53)");
  return step;
}

// A buffer of parameter `p`, as a copy of p's dtype, once it is known to be one this optimizer
// keeps (`buffers`) and to be usable.
Tensor read_buffer(const StateReader& reader, const std::string& key, const std::string& name, const Tensor& t,
                   const Tensor& p, const std::vector<std::string>& buffers) {
  if (std::find(buffers.begin(), buffers.end(), name) == buffers.end()) {
    std::string buffer_list;
    for (const auto& b : buffers) buffer_list += ", " + b;
    reader.fail("unknown state entry '" + key + "' (" + reader.who() + " keeps step" + buffer_list + ")");
  }
  if (t.shape() != p.shape())
    reader.fail("'" + key + "' has shape " + shape_str(t.shape()) + ", but its parameter has shape " +
                shape_str(p.shape()));
  if (!is_floating(t.dtype()))
    reader.fail("'" + key + "' has dtype " + std::string(dtype_name(t.dtype())) + ", expected a float tensor");
  if (has_nonfinite(t)) reader.fail("'" + key + "' holds NaN or Inf");
  // Running means of squares (and Adagrad's sum of them) are never negative: a negative one
  // would put NaN into the weights at the next step (a square root of it).
  if ((name == "exp_avg_sq" || name == "max_exp_avg_sq" || name == "square_avg" || name == "sum") &&
      min(t).item() < 0.0)
    reader.fail("'" + key + "' has negative entries, which a running mean of squares cannot");
  return t.dtype() == p.dtype() ? t.detach().clone() : t.detach().to(p.dtype());
}

// Per-parameter state: the step count and the buffers this optimizer keeps, nothing else.
std::unordered_map<const void*, ParamState> read_param_states(StateReader& reader,
                                                              const std::map<std::int64_t, Tensor>& param_of_id,
                                                              const std::vector<std::string>& buffers) {
  std::unordered_map<const void*, ParamState> states;
  for (const auto& [key, t] : reader.entries()) {
    if (key.rfind("state.", 0) != 0) continue;
    reader.mark_read(key);
    auto parsed = split_index(key.substr(6));
    if (!parsed) reader.fail("malformed state key '" + key + "'");
    const auto& [id, name] = *parsed;
    auto it = param_of_id.find(id);
    if (it == param_of_id.end()) reader.fail("'" + key + "' refers to no parameter of any group");
    const Tensor& p = it->second;
    ParamState& s = states[p.impl().get()];
    if (name == "step")
      s.step = read_step(reader, key, t);
    else
      s.buffers[name] = read_buffer(reader, key, name, t, p, buffers);
  }
  return states;
}

}  // namespace

void Optimizer::load_state_dict(const NamedTensors& state) {
  StateReader reader(state, name_);
  // Groups: hyper-parameters into fresh option objects, saved parameter ids → parameters.
  std::vector<std::unique_ptr<OptimizerOptions>> options;
  std::vector<std::optional<double>> initial_lrs;
  std::map<std::int64_t, Tensor> param_of_id;
  for (std::size_t g = 0; g < groups_.size(); ++g) {
    const std::string prefix = "param_groups." + std::to_string(g) + ".";
    const auto& params = groups_[g].params();
    const std::vector<std::int64_t> ids = read_group_ids(reader, prefix, g, groups_.size(), params.size());
    for (std::size_t i = 0; i < params.size(); ++i)
      if (!param_of_id.emplace(ids[i], params[i]).second)
        reader.fail("parameter id " + std::to_string(ids[i]) + " is listed twice");
    options.push_back(read_group_options(reader, prefix, groups_[g].options()));
    validate(*options.back());
    initial_lrs.push_back(read_initial_lr(reader, prefix));
  }
  if (reader.contains("param_groups." + std::to_string(groups_.size()) + ".params"))
    reader.fail("the state has more than the optimizer's " + std::to_string(groups_.size()) + " parameter groups");
  std::unordered_map<const void*, ParamState> new_state = read_param_states(reader, param_of_id, state_buffer_names());
  reader.check_all_read();

  // Everything checked: commit.
  for (std::size_t g = 0; g < groups_.size(); ++g) {
    groups_[g].set_options(std::move(options[g]));
    groups_[g].initial_lr = initial_lrs[g];
  }
  state_ = std::move(new_state);
}

void Optimizer::save(const std::string& path) const {
  save_safetensors(path, state_dict(), {{"xgrad.optimizer", name_}});
}

void Optimizer::load(const std::string& path) {
  SafetensorsFile file = load_safetensors(path);
  auto it = file.metadata.find("xgrad.optimizer");
  if (it != file.metadata.end() && it->second != name_)
    fail("load: '" + path + "' holds the state of a " + it->second + " optimizer");
  try {
    load_state_dict(file.tensors);
  } catch (const Error& e) {
    // "Adam: load_state_dict: ..." → "Adam: load: '<path>': load_state_dict: ...": the file too.
    std::string message = e.what();
    if (message.rfind(name_ + ": ", 0) == 0) message.erase(0, name_.size() + 2);
    fail("load: '" + path + "': " + message);
  }
}

}  // namespace xgrad::optim
