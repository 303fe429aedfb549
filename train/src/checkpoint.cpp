// Checkpoints: model, optimizer, scheduler, generator state and metadata in one safetensors file.
#include <xgrad/train/checkpoint.hpp>

#include <charconv>

#include <xgrad/core/creation.hpp>
#include <xgrad/core/error.hpp>
#include <xgrad/core/io.hpp>

namespace xgrad::train {

namespace {

constexpr const char* kRngKey = "xgrad.rng_state";
constexpr const char* kOptimizerKey = "xgrad.optimizer";
constexpr const char* kSchedulerKey = "xgrad.scheduler";

void add_prefixed(NamedTensors& out, const std::string& prefix, const NamedTensors& state) {
  for (const auto& [name, t] : state) out.emplace_back(prefix + name, t);
}

// The tensors whose names start with `prefix`, with the prefix removed.
NamedTensors take_prefixed(const NamedTensors& all, const std::string& prefix) {
  NamedTensors out;
  for (const auto& [name, t] : all)
    if (name.compare(0, prefix.size(), prefix) == 0) out.emplace_back(name.substr(prefix.size()), t);
  return out;
}

}  // namespace

std::int64_t CheckpointInfo::integer(const std::string& key) const {
  const auto it = metadata.find(key);
  if (it == metadata.end()) throw Error("checkpoint: no metadata '" + key + "'");
  std::int64_t v = 0;
  const auto [ptr, ec] = std::from_chars(it->second.data(), it->second.data() + it->second.size(), v);
  if (it->second.empty() || ec != std::errc() || ptr != it->second.data() + it->second.size())
    throw Error("checkpoint: metadata '" + key + "' = '" + it->second + "' is not an integer");
  return v;
}

double CheckpointInfo::number(const std::string& key) const {
  const auto it = metadata.find(key);
  if (it == metadata.end()) throw Error("checkpoint: no metadata '" + key + "'");
  double v = 0;
  const auto [ptr, ec] = std::from_chars(it->second.data(), it->second.data() + it->second.size(), v);
  if (it->second.empty() || ec != std::errc() || ptr != it->second.data() + it->second.size())
    throw Error("checkpoint: metadata '" + key + "' = '" + it->second + "' is not a number");
  return v;
}

void save_checkpoint(const std::string& path, const nn::Module& model, const optim::Optimizer* optimizer,
                     const optim::LRScheduler* scheduler, const std::map<std::string, std::string>& metadata) {
  NamedTensors tensors;
  add_prefixed(tensors, "model.", model.state_dict());
  std::map<std::string, std::string> meta = metadata;
  meta[kRngKey] = rng_state();
  if (optimizer != nullptr) {
    add_prefixed(tensors, "optimizer.", optimizer->state_dict());
    meta[kOptimizerKey] = optimizer->name();
  }
  if (scheduler != nullptr) {
    add_prefixed(tensors, "scheduler.", scheduler->state_dict());
    meta[kSchedulerKey] = scheduler->name();
  }
  save_safetensors(path, tensors, meta);
}

CheckpointInfo load_checkpoint(const std::string& path, nn::Module& model, optim::Optimizer* optimizer,
                               optim::LRScheduler* scheduler) {
  const SafetensorsFile file = load_safetensors(path);
  auto require = [&](const char* key, const std::string& expected, const char* what) {
    const auto it = file.metadata.find(key);
    if (it == file.metadata.end())
      throw Error("load_checkpoint: '" + path + "' holds no " + what + " state (metadata '" + key + "' is missing)");
    if (it->second != expected)
      throw Error("load_checkpoint: '" + path + "' holds the state of a " + it->second + " " + what + ", not of a " + expected);
  };
  const auto rng = file.metadata.find(kRngKey);
  if (rng == file.metadata.end())
    throw Error("load_checkpoint: '" + path + "' is not a training checkpoint (it has no '" + kRngKey +
                "' metadata): a weights file, written by Module::save or ModelCheckpoint, loads with model.load(path)");
  if (optimizer != nullptr) require(kOptimizerKey, optimizer->name(), "optimizer");
  if (scheduler != nullptr) require(kSchedulerKey, scheduler->name(), "scheduler");
  // All or nothing: each part checks everything it loads before it changes anything, and the
  // parts loaded before a failing one are put back, so a bad file leaves every object as it was.
  // The model goes last (its strict load checks every key and shape first).
  const NamedTensors optimizer_before = optimizer != nullptr ? optimizer->state_dict() : NamedTensors{};
  const NamedTensors scheduler_before = scheduler != nullptr ? scheduler->state_dict() : NamedTensors{};
  const std::string rng_before = rng_state();
  try {
    set_rng_state(rng->second);
    if (optimizer != nullptr) optimizer->load_state_dict(take_prefixed(file.tensors, "optimizer."));
    if (scheduler != nullptr) scheduler->load_state_dict(take_prefixed(file.tensors, "scheduler."));
    model.load_state_dict(take_prefixed(file.tensors, "model."), true);
  } catch (const Error& e) {
    set_rng_state(rng_before);
    if (optimizer != nullptr) optimizer->load_state_dict(optimizer_before);
    if (scheduler != nullptr) scheduler->load_state_dict(scheduler_before);
    throw Error("load_checkpoint: '" + path + "': " + e.what());
  }
  CheckpointInfo info{file.metadata};
  info.metadata.erase(kRngKey);
  info.metadata.erase(kOptimizerKey);
  info.metadata.erase(kSchedulerKey);
  return info;
}

}  // namespace xgrad::train
