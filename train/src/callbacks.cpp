// The callbacks fit runs: Keras's EarlyStopping, ModelCheckpoint, ReduceLROnPlateau,
// CSVLogger (CsvLog) and TerminateOnNaN, each written with train's public pieces.
#include <xgrad/train/callbacks.hpp>

#include <cmath>

#include <fmt/format.h>

#include <xgrad/core/error.hpp>

#include "logs.hpp"

namespace xgrad::train {

namespace {

bool maximizes(Mode mode, const std::string& monitor) {
  return mode == Mode::max || (mode == Mode::automatic && monitor.find("acc") != std::string::npos);
}

// The value to beat before any epoch: none is worse (Keras's np.Inf start), so the first
// number is an improvement and NaN never is (every comparison with NaN is false).
double worst_value(Mode mode, const std::string& monitor) {
  return maximizes(mode, monitor) ? -INFINITY : INFINITY;
}

bool better(Mode mode, const std::string& monitor, double value, double best, double min_delta) {
  return maximizes(mode, monitor) ? value > best + min_delta : value < best - min_delta;
}

double monitored(const Logs& logs, const std::string& monitor, const char* who) {
  auto it = logs.find(monitor);
  if (it == logs.end())
    throw Error(std::string(who) + ": the logs have no '" + monitor + "' (they hold: " + detail::names_in(logs) +
                "); validation data gives val_loss and val_<metric>");
  return it->second;
}

}  // namespace

EarlyStopping::EarlyStopping(EarlyStoppingOptions options) : options_(std::move(options)) {
  if (options_.patience() < 0) throw Error(fmt::format("EarlyStopping: patience must be >= 0, got {}", options_.patience()));
  if (options_.min_delta() < 0) throw Error(fmt::format("EarlyStopping: min_delta must be >= 0, got {}", options_.min_delta()));
}

void EarlyStopping::on_train_begin(FitState&) {
  wait_ = 0;
  best_ = worst_value(options_.mode(), options_.monitor());
  best_epoch_ = 0;
  stopped_epoch_ = 0;
  best_weights_.clear();
}

// Keras's rule: `patience` epochs in a row without improvement stop training (never at the
// first epoch), and NaN is never an improvement.
void EarlyStopping::on_epoch_end(FitState& state, std::int64_t epoch, Logs& logs) {
  const double value = monitored(logs, options_.monitor(), "EarlyStopping");
  ++wait_;
  if (better(options_.mode(), options_.monitor(), value, best_, options_.min_delta())) {
    best_ = value;
    best_epoch_ = epoch;
    wait_ = 0;
    if (options_.restore_best_weights()) {
      best_weights_.clear();
      for (auto& [name, t] : state.model.state_dict()) best_weights_.emplace_back(name, t.clone());
    }
    return;
  }
  if (wait_ >= options_.patience() && epoch > 1) {
    stopped_epoch_ = epoch;
    state.stop_training = true;
  }
}

void EarlyStopping::on_train_end(FitState& state) {
  if (options_.restore_best_weights() && !best_weights_.empty()) state.model.load_state_dict(best_weights_);
}

ModelCheckpoint::ModelCheckpoint(std::string path, std::string monitor, bool save_best_only, Mode mode)
    : path_(std::move(path)), monitor_(std::move(monitor)), save_best_only_(save_best_only), mode_(mode),
      best_(worst_value(mode_, monitor_)) {}

void ModelCheckpoint::on_epoch_end(FitState& state, std::int64_t epoch, Logs& logs) {
  if (save_best_only_) {  // NaN never improves on the best, not even on the first epoch
    const double value = monitored(logs, monitor_, "ModelCheckpoint");
    if (!better(mode_, monitor_, value, best_, 0.0)) return;
    best_ = value;
  }
  // atomic: a temporary file renamed over the old one; with several processes, rank 0 writes
  // (saved_epochs() is the same on all).
  if (state.main_process()) state.model.save(path_);
  saved_.push_back(epoch);
}

ReduceLROnPlateau::ReduceLROnPlateau(optim::ReduceLROnPlateauOptions options, std::string monitor)
    : options_(std::move(options)), monitor_(std::move(monitor)) {}

void ReduceLROnPlateau::on_train_begin(FitState& state) {
  optim::ReduceLROnPlateauOptions options = options_;
  if (options.mode() == Mode::automatic) options.mode(maximizes(Mode::automatic, monitor_) ? Mode::max : Mode::min);
  scheduler_ = std::make_unique<optim::ReduceLROnPlateau>(state.optimizer, options);
}

void ReduceLROnPlateau::on_epoch_end(FitState& state, std::int64_t, Logs& logs) {
  scheduler_->step(monitored(logs, monitor_, "ReduceLROnPlateau"));
  logs["lr"] = state.optimizer.param_groups()[0].lr();
}

void CsvLog::on_epoch_end(FitState& state, std::int64_t epoch, Logs& logs) {
  if (!state.main_process()) return;
  if (!logger_) {
    std::vector<std::string> columns{"epoch"};
    for (const auto& [name, value] : logs) columns.push_back(name);
    logger_ = std::make_unique<CsvLogger>(path_, columns);
  }
  Metrics row{{"epoch", static_cast<double>(epoch)}};
  for (const auto& [name, value] : logs) row.emplace_back(name, value);
  logger_->log_metrics(row);
}

void TerminateOnNaN::on_batch_end(FitState& state, std::int64_t batch, const Logs& logs) {
  auto it = logs.find("loss");
  if (it != logs.end() && !std::isfinite(it->second)) {
    fmt::print(stderr, "TerminateOnNaN: batch {} has loss {}; stopping\n", batch, it->second);
    state.stop_training = true;
  }
}

}  // namespace xgrad::train
