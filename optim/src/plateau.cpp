#include <xgrad/optim/plateau.hpp>

#include <algorithm>
#include <limits>

#include <fmt/format.h>

#include "util.hpp"

namespace xgrad::optim {

// PyTorch 1.13's ReduceLROnPlateau, decision for decision.

ReduceLROnPlateau::ReduceLROnPlateau(Optimizer& optimizer, const ReduceLROnPlateauOptions& options)
    : optimizer_(&optimizer), options_(options) {
  if (!(options.factor() < 1.0)) throw Error(fmt::format("ReduceLROnPlateau: factor must be < 1, got {}", options.factor()));
  if (options.mode() == Mode::automatic)
    throw Error("ReduceLROnPlateau: mode automatic needs the monitored value's name; give Mode::min or Mode::max "
                "(train::ReduceLROnPlateau resolves automatic from its monitor)");
  const std::size_t groups = optimizer.param_groups().size();
  if (options.min_lr().size() == 1)
    min_lrs_.assign(groups, options.min_lr()[0]);
  else if (options.min_lr().size() == groups)
    min_lrs_ = options.min_lr();
  else
    throw Error(fmt::format("ReduceLROnPlateau: expected 1 or {} min_lr values (one per parameter group), got {}",
                            groups, options.min_lr().size()));
  best_ = options.mode() == Mode::min ? std::numeric_limits<double>::infinity()
                                             : -std::numeric_limits<double>::infinity();
  for (const auto& g : optimizer.param_groups()) last_lr_.push_back(g.lr());
}

bool ReduceLROnPlateau::is_better(double a, double best) const {
  const double t = options_.threshold();
  const bool rel = options_.threshold_mode() == ThresholdMode::rel;
  if (options_.mode() == Mode::min) return rel ? a < best * (1. - t) : a < best - t;
  return rel ? a > best * (t + 1.) : a > best + t;
}

void ReduceLROnPlateau::step(double metric) {
  ++last_epoch_;
  if (is_better(metric, best_)) {
    best_ = metric;
    num_bad_epochs_ = 0;
  } else {
    ++num_bad_epochs_;
  }
  if (cooldown_counter_ > 0) {
    --cooldown_counter_;
    num_bad_epochs_ = 0;  // bad epochs in cooldown do not count
  }
  if (num_bad_epochs_ > options_.patience()) {
    reduce_lr();
    cooldown_counter_ = options_.cooldown();
    num_bad_epochs_ = 0;
  }
  last_lr_.clear();
  for (const auto& g : optimizer_->param_groups()) last_lr_.push_back(g.lr());
}

void ReduceLROnPlateau::reduce_lr() {
  auto& groups = optimizer_->param_groups();
  if (groups.size() != min_lrs_.size())
    throw Error(fmt::format("ReduceLROnPlateau: the optimizer has {} parameter groups, the scheduler was built for {}",
                            groups.size(), min_lrs_.size()));
  for (std::size_t i = 0; i < groups.size(); ++i) {
    const double old_lr = groups[i].lr();
    const double new_lr = std::max(old_lr * options_.factor(), min_lrs_.at(i));
    if (old_lr - new_lr > options_.eps()) groups[i].set_lr(new_lr);
  }
}

NamedTensors ReduceLROnPlateau::state_dict() const {
  return {{"best", scalar(best_, DType::f64)},
          {"last_epoch", detail::int_scalar(last_epoch_)},
          {"num_bad_epochs", detail::int_scalar(num_bad_epochs_)},
          {"cooldown_counter", detail::int_scalar(cooldown_counter_)},
          {"last_lr", from_vector(last_lr_, {static_cast<std::int64_t>(last_lr_.size())})}};
}

void ReduceLROnPlateau::load_state_dict(const NamedTensors& state) {
  std::map<std::string, Tensor> entries(state.begin(), state.end());
  auto get = [&](const char* key) -> const Tensor& {
    auto it = entries.find(key);
    if (it == entries.end()) throw Error(std::string("ReduceLROnPlateau.load_state_dict: missing key '") + key + "'");
    return it->second;
  };
  // One int64 number each, non-negative (last_epoch from -1); checked before anything is applied.
  auto count = [&](const char* key, std::int64_t lowest) {
    return detail::count_value(get(key), "ReduceLROnPlateau.load_state_dict", key, lowest);
  };
  const Tensor& best_t = get("best");
  if (best_t.numel() != 1 || !is_floating(best_t.dtype()))
    throw Error("ReduceLROnPlateau.load_state_dict: 'best' must be one floating-point number, got shape " +
                shape_str(best_t.shape()));
  const double best = best_t.item();
  const auto last_epoch = count("last_epoch", -1);
  const auto bad = count("num_bad_epochs", 0);
  const auto cooldown = count("cooldown_counter", 0);
  auto last_lr = get("last_lr").to_vector<double>();
  best_ = best;
  last_epoch_ = last_epoch;
  num_bad_epochs_ = bad;
  cooldown_counter_ = cooldown;
  last_lr_ = std::move(last_lr);
}

void ReduceLROnPlateau::save(const std::string& path) const {
  save_safetensors(path, state_dict(), {{"xgrad.scheduler", "ReduceLROnPlateau"}});
}

void ReduceLROnPlateau::load(const std::string& path) {
  SafetensorsFile file = load_safetensors(path);
  auto it = file.metadata.find("xgrad.scheduler");
  if (it != file.metadata.end() && it->second != "ReduceLROnPlateau")
    throw Error("ReduceLROnPlateau: load: '" + path + "' holds the state of a " + it->second + " scheduler");
  try {
    load_state_dict(file.tensors);
  } catch (const Error& e) {  // name the file too
    std::string message = e.what();
    if (message.rfind("ReduceLROnPlateau.", 0) == 0) message.erase(0, 18);
    throw Error("ReduceLROnPlateau: load: '" + path + "': " + message);
  }
}

}  // namespace xgrad::optim
