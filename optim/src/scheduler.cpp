#include <xgrad/optim/scheduler.hpp>

#include <algorithm>
#include <cmath>
#include <numbers>

#include <fmt/format.h>

#include "util.hpp"

namespace xgrad::optim {

// Every formula below is PyTorch 1.13's (torch/optim/lr_scheduler.py), written with the same
// operation order so that the learning rates agree to the last bit.

namespace {

Tensor f64_vector(const std::vector<double>& v) { return from_vector(v, {static_cast<std::int64_t>(v.size())}); }

const Tensor& require(const NamedTensors& state, const std::string& key, const std::string& who) {
  for (const auto& [name, t] : state)
    if (name == key) return t;
  throw Error(who + ".load_state_dict: missing key '" + key + "'");
}

// The entries under "<prefix>" with the prefix removed.
NamedTensors with_prefix_removed(const NamedTensors& state, const std::string& prefix) {
  NamedTensors out;
  for (const auto& [name, t] : state)
    if (name.rfind(prefix, 0) == 0) out.emplace_back(name.substr(prefix.size()), t);
  return out;
}

// A count saved by state_dict(), checked (detail::count_value).
std::int64_t count_entry(const NamedTensors& state, const std::string& key, const std::string& who,
                         std::int64_t lowest) {
  return detail::count_value(require(state, key, who), who + ": load_state_dict", key, lowest);
}

// Learning rates saved by state_dict(): one finite, non-negative number per parameter group.
std::vector<double> lr_entry(const NamedTensors& state, const std::string& key, const std::string& who,
                             std::size_t groups) {
  const Tensor& t = require(state, key, who);
  if (t.dim() != 1 || !is_floating(t.dtype()) || t.numel() != static_cast<std::int64_t>(groups))
    throw Error(fmt::format("{}: load_state_dict: '{}' must hold {} learning rates (one per parameter group) in a "
                            "1-D floating-point tensor, got shape {} and dtype {}",
                            who, key, groups, shape_str(t.shape()), dtype_name(t.dtype())));
  std::vector<double> lrs = t.to(DType::f64).to_vector<double>();
  for (double lr : lrs)
    if (!std::isfinite(lr) || lr < 0)
      throw Error(fmt::format("{}: load_state_dict: '{}' holds the learning rate {}, not a finite number >= 0", who,
                              key, lr));
  return lrs;
}

// Loads each scheduler's part of `state` (under "schedulers.<i>."), all or nothing: when one
// part is refused, the schedulers loaded before it get their previous state back.
void load_parts(const std::vector<std::shared_ptr<LRScheduler>>& schedulers, const NamedTensors& state) {
  std::vector<NamedTensors> before;
  for (const auto& s : schedulers) before.push_back(s->state_dict());
  std::size_t loaded = 0;
  try {
    for (; loaded < schedulers.size(); ++loaded)
      schedulers[loaded]->load_state_dict(with_prefix_removed(state, "schedulers." + std::to_string(loaded) + "."));
  } catch (...) {
    for (std::size_t i = 0; i < loaded; ++i) schedulers[i]->load_state_dict(before[i]);
    throw;
  }
}


}  // namespace

// --- LRScheduler -------------------------------------------------------------------------------

LRScheduler::LRScheduler(Optimizer& optimizer, std::string name) : optimizer_(&optimizer), name_(std::move(name)) {
  for (auto& g : optimizer.param_groups()) {
    if (!g.initial_lr) g.initial_lr = g.lr();
    base_lrs_.push_back(*g.initial_lr);
  }
  last_lr_ = group_lrs();
}

void LRScheduler::fail(const std::string& message) const { throw Error(name_ + ": " + message); }

std::vector<double> LRScheduler::group_lrs() const {
  std::vector<double> lrs;
  for (const auto& g : optimizer_->param_groups()) lrs.push_back(g.lr());
  return lrs;
}

void LRScheduler::apply(const std::vector<double>& lrs) {
  auto& groups = optimizer_->param_groups();
  if (lrs.size() != groups.size())
    fail(fmt::format("the optimizer has {} parameter groups, the scheduler was built for {}", groups.size(),
                     lrs.size()));
  for (std::size_t i = 0; i < groups.size(); ++i) groups[i].set_lr(lrs[i]);
  last_lr_ = lrs;
}

void LRScheduler::initial_step() {
  step_count_ = 0;
  step();
}

void LRScheduler::step() {
  ++step_count_;
  ++last_epoch_;
  apply(get_lr());
}

void LRScheduler::step_to(std::int64_t epoch) {
  ++step_count_;
  last_epoch_ = epoch;
  apply(closed_form_lr());
}

NamedTensors LRScheduler::state_dict() const {
  return {{"last_epoch", detail::int_scalar(last_epoch_)},
          {"step_count", detail::int_scalar(step_count_)},
          {"base_lrs", f64_vector(base_lrs_)},
          {"last_lr", f64_vector(last_lr_)}};
}

void LRScheduler::load_state_dict(const NamedTensors& state) {
  // Everything is checked before anything is applied: a refused state changes nothing.
  const std::size_t groups = optimizer_->param_groups().size();
  const auto epoch = count_entry(state, "last_epoch", name_, -1);
  const auto steps = count_entry(state, "step_count", name_, 0);
  auto base_lrs = lr_entry(state, "base_lrs", name_, groups);
  auto last_lr = lr_entry(state, "last_lr", name_, groups);
  last_epoch_ = epoch;
  step_count_ = steps;
  base_lrs_ = std::move(base_lrs);
  last_lr_ = std::move(last_lr);
}

void LRScheduler::save(const std::string& path) const { save_safetensors(path, state_dict(), {{"xgrad.scheduler", name_}}); }

void LRScheduler::load(const std::string& path) {
  SafetensorsFile file = load_safetensors(path);
  auto it = file.metadata.find("xgrad.scheduler");
  if (it != file.metadata.end() && it->second != name_)
    fail("load: '" + path + "' holds the state of a " + it->second + " scheduler");
  try {
    load_state_dict(file.tensors);
  } catch (const Error& e) {  // name the file too: "StepLR: load: '<path>': load_state_dict: ..."
    std::string message = e.what();
    if (message.rfind(name_, 0) == 0 && message.size() > name_.size() + 1 &&
        (message[name_.size()] == ':' || message[name_.size()] == '.'))
      message.erase(0, name_.size() + (message[name_.size()] == ':' ? 2 : 1));
    fail("load: '" + path + "': " + message);
  }
}

// --- StepLR ------------------------------------------------------------------------------------

StepLR::StepLR(Optimizer& optimizer, std::int64_t step_size, double gamma)
    : LRScheduler(optimizer, "StepLR"), step_size_(step_size), gamma_(gamma) {
  if (step_size <= 0) fail(fmt::format("step_size must be positive, got {}", step_size));
  initial_step();
}

std::vector<double> StepLR::get_lr() const {
  std::vector<double> lrs = group_lrs();
  if (last_epoch_ == 0 || last_epoch_ % step_size_ != 0) return lrs;
  for (double& lr : lrs) lr = lr * gamma_;
  return lrs;
}

std::vector<double> StepLR::closed_form_lr() const {
  std::vector<double> lrs;
  for (double base : base_lrs_) lrs.push_back(base * std::pow(gamma_, static_cast<double>(last_epoch_ / step_size_)));
  return lrs;
}

// --- MultiStepLR -------------------------------------------------------------------------------

MultiStepLR::MultiStepLR(Optimizer& optimizer, std::vector<std::int64_t> milestones, double gamma)
    : LRScheduler(optimizer, "MultiStepLR"), milestones_(std::move(milestones)), gamma_(gamma) {
  std::sort(milestones_.begin(), milestones_.end());
  initial_step();
}

std::vector<double> MultiStepLR::get_lr() const {
  std::vector<double> lrs = group_lrs();
  const auto hits = std::count(milestones_.begin(), milestones_.end(), last_epoch_);
  if (hits == 0) return lrs;
  for (double& lr : lrs) lr = lr * std::pow(gamma_, static_cast<double>(hits));
  return lrs;
}

std::vector<double> MultiStepLR::closed_form_lr() const {
  // bisect_right: the number of milestones <= last_epoch.
  const auto passed = std::upper_bound(milestones_.begin(), milestones_.end(), last_epoch_) - milestones_.begin();
  std::vector<double> lrs;
  for (double base : base_lrs_) lrs.push_back(base * std::pow(gamma_, static_cast<double>(passed)));
  return lrs;
}

// --- ExponentialLR -----------------------------------------------------------------------------

ExponentialLR::ExponentialLR(Optimizer& optimizer, double gamma) : LRScheduler(optimizer, "ExponentialLR"), gamma_(gamma) {
  initial_step();
}

std::vector<double> ExponentialLR::get_lr() const {
  std::vector<double> lrs = group_lrs();
  if (last_epoch_ == 0) return lrs;
  for (double& lr : lrs) lr = lr * gamma_;
  return lrs;
}

std::vector<double> ExponentialLR::closed_form_lr() const {
  std::vector<double> lrs;
  for (double base : base_lrs_) lrs.push_back(base * std::pow(gamma_, static_cast<double>(last_epoch_)));
  return lrs;
}

// --- CosineAnnealingLR -------------------------------------------------------------------------

CosineAnnealingLR::CosineAnnealingLR(Optimizer& optimizer, std::int64_t T_max, double eta_min)
    : LRScheduler(optimizer, "CosineAnnealingLR"), T_max_(T_max), eta_min_(eta_min) {
  if (T_max <= 0) fail(fmt::format("T_max must be positive, got {}", T_max));
  initial_step();
}

std::vector<double> CosineAnnealingLR::get_lr() const {
  constexpr double pi = std::numbers::pi;
  const auto T = static_cast<double>(T_max_);
  const auto e = static_cast<double>(last_epoch_);
  std::vector<double> lrs = group_lrs();
  if (last_epoch_ == 0) return lrs;
  if (step_count_ == 1 && last_epoch_ > 0) {  // first step of a scheduler resumed mid-way
    for (std::size_t i = 0; i < lrs.size(); ++i)
      lrs[i] = eta_min_ + (base_lrs_[i] - eta_min_) * (1 + std::cos(e * pi / T)) / 2;
    return lrs;
  }
  if ((last_epoch_ - 1 - T_max_) % (2 * T_max_) == 0) {  // the bottom of a cycle: climb back
    for (std::size_t i = 0; i < lrs.size(); ++i)
      lrs[i] = lrs[i] + (base_lrs_[i] - eta_min_) * (1 - std::cos(pi / T)) / 2;
    return lrs;
  }
  for (double& lr : lrs) lr = (1 + std::cos(pi * e / T)) / (1 + std::cos(pi * (e - 1) / T)) * (lr - eta_min_) + eta_min_;
  return lrs;
}

std::vector<double> CosineAnnealingLR::closed_form_lr() const {
  constexpr double pi = std::numbers::pi;
  std::vector<double> lrs;
  for (double base : base_lrs_)
    lrs.push_back(eta_min_ + (base - eta_min_) *
                                 (1 + std::cos(pi * static_cast<double>(last_epoch_) / static_cast<double>(T_max_))) / 2);
  return lrs;
}

// --- LinearLR ----------------------------------------------------------------------------------

LinearLR::LinearLR(Optimizer& optimizer, const LinearLROptions& options)
    : LRScheduler(optimizer, "LinearLR"), options_(options) {
  if (!(options.start_factor() > 0.0 && options.start_factor() <= 1.0))
    fail(fmt::format("start_factor must be in (0, 1], got {}", options.start_factor()));
  if (!(options.end_factor() >= 0.0 && options.end_factor() <= 1.0))
    fail(fmt::format("end_factor must be in [0, 1], got {}", options.end_factor()));
  if (options.total_iters() <= 0) fail(fmt::format("total_iters must be positive, got {}", options.total_iters()));
  initial_step();
}

std::vector<double> LinearLR::get_lr() const {
  const double start = options_.start_factor(), end = options_.end_factor();
  const auto total = static_cast<double>(options_.total_iters());
  std::vector<double> lrs = group_lrs();
  if (last_epoch_ == 0) {
    for (double& lr : lrs) lr = lr * start;
    return lrs;
  }
  if (last_epoch_ > options_.total_iters()) return lrs;
  const double factor =
      1. + (end - start) / (total * start + static_cast<double>(last_epoch_ - 1) * (end - start));
  for (double& lr : lrs) lr = lr * factor;
  return lrs;
}

std::vector<double> LinearLR::closed_form_lr() const {
  const double start = options_.start_factor(), end = options_.end_factor();
  const auto progress = static_cast<double>(std::min(options_.total_iters(), last_epoch_));
  std::vector<double> lrs;
  for (double base : base_lrs_)
    lrs.push_back(base * (start + (end - start) * progress / static_cast<double>(options_.total_iters())));
  return lrs;
}

// --- SequentialLR ------------------------------------------------------------------------------

SequentialLR::SequentialLR(Optimizer& optimizer, std::vector<std::shared_ptr<LRScheduler>> schedulers,
                           std::vector<std::int64_t> milestones)
    : LRScheduler(optimizer, "SequentialLR"), schedulers_(std::move(schedulers)), milestones_(std::move(milestones)) {
  if (schedulers_.empty()) fail("needs at least one scheduler");
  for (std::size_t i = 0; i < schedulers_.size(); ++i) {
    if (!schedulers_[i]) fail(fmt::format("scheduler {} is null", i));
    if (&schedulers_[i]->optimizer() != &optimizer)
      fail(fmt::format("scheduler {} ({}) belongs to another optimizer", i, schedulers_[i]->name()));
  }
  if (milestones_.size() + 1 != schedulers_.size())
    fail(fmt::format("expects one milestone fewer than schedulers, got {} schedulers and {} milestones",
                     schedulers_.size(), milestones_.size()));
  if (!std::is_sorted(milestones_.begin(), milestones_.end())) fail("milestones must be increasing");

  // As PyTorch: undo the initial steps the schedulers took when they were built, restore the
  // initial learning rates, then take only the first scheduler's initial step.
  last_epoch_ = 0;
  for (auto& g : optimizer.param_groups()) g.set_lr(*g.initial_lr);
  for (auto& s : schedulers_) s->last_epoch_ -= 1;
  schedulers_[0]->initial_step();
  last_lr_ = schedulers_[0]->get_last_lr();
}

void SequentialLR::step() {
  ++last_epoch_;
  const auto idx =
      static_cast<std::size_t>(std::upper_bound(milestones_.begin(), milestones_.end(), last_epoch_) - milestones_.begin());
  LRScheduler& s = *schedulers_[idx];
  if (idx > 0 && milestones_[idx - 1] == last_epoch_)
    s.step_to(0);
  else
    s.step();
  last_lr_ = s.get_last_lr();
}

NamedTensors SequentialLR::state_dict() const {
  NamedTensors out = {{"last_epoch", detail::int_scalar(last_epoch_)}, {"last_lr", f64_vector(last_lr_)}};
  for (std::size_t i = 0; i < schedulers_.size(); ++i)
    for (auto& [name, t] : schedulers_[i]->state_dict())
      out.emplace_back("schedulers." + std::to_string(i) + "." + name, t);
  return out;
}

void SequentialLR::load_state_dict(const NamedTensors& state) {
  const auto epoch = count_entry(state, "last_epoch", name_, -1);
  auto last_lr = lr_entry(state, "last_lr", name_, optimizer_->param_groups().size());
  load_parts(schedulers_, state);
  last_epoch_ = epoch;
  last_lr_ = std::move(last_lr);
}

// --- ChainedScheduler --------------------------------------------------------------------------

namespace {
Optimizer& first_optimizer(const std::vector<std::shared_ptr<LRScheduler>>& schedulers) {
  if (schedulers.empty() || !schedulers[0]) throw Error("ChainedScheduler: needs at least one scheduler");
  return schedulers[0]->optimizer();
}
}  // namespace

ChainedScheduler::ChainedScheduler(std::vector<std::shared_ptr<LRScheduler>> schedulers)
    : LRScheduler(first_optimizer(schedulers), "ChainedScheduler"), schedulers_(std::move(schedulers)) {
  for (std::size_t i = 1; i < schedulers_.size(); ++i) {
    if (!schedulers_[i]) fail(fmt::format("scheduler {} is null", i));
    if (&schedulers_[i]->optimizer() != optimizer_)
      fail(fmt::format("scheduler {} ({}) belongs to another optimizer than scheduler 0", i, schedulers_[i]->name()));
  }
}

void ChainedScheduler::step() {
  for (auto& s : schedulers_) s->step();
  last_lr_ = group_lrs();
}

NamedTensors ChainedScheduler::state_dict() const {
  NamedTensors out = {{"last_lr", f64_vector(last_lr_)}};
  for (std::size_t i = 0; i < schedulers_.size(); ++i)
    for (auto& [name, t] : schedulers_[i]->state_dict())
      out.emplace_back("schedulers." + std::to_string(i) + "." + name, t);
  return out;
}

void ChainedScheduler::load_state_dict(const NamedTensors& state) {
  auto last_lr = lr_entry(state, "last_lr", name_, optimizer_->param_groups().size());
  load_parts(schedulers_, state);
  last_lr_ = std::move(last_lr);
}

}  // namespace xgrad::optim
