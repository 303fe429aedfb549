// fit, evaluate, predict and the callbacks: a training loop written with train's public
// pieces (DataLoader, Metric, ProgressBar, checkpoints), as a user's own loop would be.
#include <xgrad/train/fit.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <optional>
#include <numeric>
#include <sstream>

#include <fmt/format.h>

#include <xgrad/core/autograd.hpp>
#include <xgrad/core/error.hpp>
#include <xgrad/core/ops.hpp>
#include <xgrad/nn/utils.hpp>
#include <xgrad/core/io.hpp>
#include <xgrad/train/checkpoint.hpp>
#include <xgrad/train/plot.hpp>
#include <xgrad/train/progress.hpp>

#include "checked.hpp"

namespace xgrad::train {

// --- History and metrics by name -------------------------------------------------------------------

namespace {

// "loss, val_loss, ...": the names a Logs holds, for error messages.
std::string names_in(const Logs& logs) {
  std::string names;
  for (const auto& [key, value] : logs) names += (names.empty() ? "" : ", ") + key;
  return names;
}

}  // namespace

const Logs& History::epoch(std::int64_t number) const {
  if (number < 1 || number > static_cast<std::int64_t>(epochs.size()))
    throw Error(fmt::format("History: no epoch {} (epochs are numbered 1 to {})", number, epochs.size()));
  return epochs[static_cast<std::size_t>(number - 1)];
}

std::vector<double> History::values(const std::string& name) const {
  std::vector<double> out;
  for (const Logs& logs : epochs) {
    auto it = logs.find(name);
    if (it == logs.end()) throw Error("History: no '" + name + "' in the logs (they hold: " + names_in(logs) + ")");
    out.push_back(it->second);
  }
  return out;
}

std::unique_ptr<Metric> make_metric(const std::string& name) {
  if (name == "accuracy") return std::make_unique<Accuracy>();
  if (name == "binary_accuracy") return std::make_unique<BinaryAccuracy>();
  if (name == "mae") return std::make_unique<MeanAbsoluteError>();
  if (name == "rmse") return std::make_unique<RootMeanSquaredError>();
  if (name == "bpc") return std::make_unique<BitsPerCharacter>();
  throw Error("make_metric: unknown metric '" + name + "' (accuracy, binary_accuracy, mae, rmse, bpc)");
}

namespace {

std::vector<std::unique_ptr<Metric>> make_metrics(const std::vector<std::string>& names) {
  std::vector<std::unique_ptr<Metric>> out;
  for (const auto& name : names) out.push_back(make_metric(name));
  return out;
}

// Restores the module's mode on scope exit.
struct ModeGuard {
  nn::Module& model;
  bool training;
  explicit ModeGuard(nn::Module& m) : model(m), training(m.is_training()) {}
  ~ModeGuard() { model.train(training); }
};

// The history as checkpoint metadata: one line per epoch, "name=value" pairs with exact
// (round-trip) numbers.
std::string encode_history(const History& history) {
  std::string out;
  for (const Logs& logs : history.epochs) {
    for (const auto& [name, value] : logs) out += fmt::format("{}={};", name, value);
    out += '\n';
  }
  return out;
}

History decode_history(const std::string& text, const std::string& path) {
  History h;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    Logs logs;
    std::istringstream items(line);
    for (std::string item; std::getline(items, item, ';');) {
      const auto eq = item.find('=');
      if (eq == std::string::npos) throw Error("fit: checkpoint '" + path + "' has a malformed history entry '" + item + "'");
      try {
        logs[item.substr(0, eq)] = std::stod(item.substr(eq + 1));
      } catch (const std::exception&) {
        throw Error("fit: checkpoint '" + path + "' has a malformed history value '" + item + "'");
      }
    }
    h.epochs.push_back(std::move(logs));
  }
  return h;
}

// metrics.csv of a log_dir: one row per epoch, the columns of the first epoch's logs (a
// value an epoch lacks is left empty).
void write_history_csv(const History& history, const std::string& path) {
  std::vector<std::string> names;
  for (const auto& [name, value] : history.epochs.front()) names.push_back(name);
  std::string csv = "epoch";
  for (const auto& name : names) csv += "," + name;
  csv += "\n";
  for (std::size_t e = 0; e < history.epochs.size(); ++e) {
    csv += std::to_string(e + 1);
    for (const auto& name : names) {
      auto it = history.epochs[e].find(name);
      csv += it == history.epochs[e].end() ? "," : fmt::format(",{}", it->second);
    }
    csv += "\n";
  }
  write_file_atomic(path, csv);
}

// loss.png of a log_dir: the loss and val_loss columns of metrics.csv against the epoch.
void plot_history(const History& history, const std::string& dir) {
  std::vector<int> columns;
  int column = 2;  // gnuplot counts from 1, and column 1 is the epoch
  for (const auto& [name, value] : history.epochs.front()) {
    if (name == "loss" || name == "val_loss") columns.push_back(column);
    ++column;
  }
  if (!plot_csv(dir + "/metrics.csv", dir + "/loss.png",
                PlotOptions().title("loss per epoch").xlabel("epoch").y_columns(columns).points(true)))
    fmt::print("{}\n", gnuplot_notice());
}

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
    throw Error(std::string(who) + ": the logs have no '" + monitor + "' (they hold: " + names_in(logs) +
                "); validation data gives val_loss and val_<metric>");
  return it->second;
}

}  // namespace

// --- evaluate and predict ---------------------------------------------------------------------------

namespace {

// Sums the loss and the metrics' (sum, count) over the processes of `group`, in place.
void reduce(const ProcessGroup* group, double& loss_sum, std::int64_t& samples, std::vector<std::unique_ptr<Metric>>& metrics) {
  if (group == nullptr || group->size() == 1) return;
  std::vector<double> values{loss_sum, static_cast<double>(samples)};
  for (const auto& m : metrics) values.insert(values.end(), {m->sum(), m->count()});
  group->sum(values);
  loss_sum = values[0];
  samples = static_cast<std::int64_t>(values[1]);
  for (std::size_t i = 0; i < metrics.size(); ++i) {
    metrics[i]->reset();
    metrics[i]->add(values[2 + 2 * i], values[3 + 2 * i]);
  }
}

// Every process must run the same number of batches, or one would wait forever for the
// others' gradients: each one's count goes in its own slot of a sum, and all compare.
void check_same_batch_count(const ProcessGroup& group, std::int64_t epoch, std::size_t count) {
  std::vector<double> counts(static_cast<std::size_t>(group.size()), 0.0);
  counts[static_cast<std::size_t>(group.rank())] = static_cast<double>(count);
  group.sum(counts);
  if (std::all_of(counts.begin(), counts.end(), [&](double c) { return c == counts[0]; })) return;
  std::string each;
  for (std::size_t r = 0; r < counts.size(); ++r) each += fmt::format("{}rank {}: {}", r ? ", " : "", r, counts[r]);
  throw Error(fmt::format("fit: epoch {}: the processes have different numbers of batches ({}); every process must run "
                          "the same number (distributed::DistributedSampler gives every rank an equal share)",
                          epoch, each));
}

}  // namespace

Logs evaluate(nn::Module& model, const Forward& forward, const Loss& loss, const DataLoader& data,
              const std::vector<std::string>& metric_names, const ProcessGroup* group) {
  ModeGuard mode(model);
  model.eval();
  NoGradGuard no_grad;
  auto metrics = make_metrics(metric_names);
  double loss_sum = 0.0;
  std::int64_t samples = 0;
  for (const Batch& b : data.epoch(0)) {
    const Tensor predictions = forward(b);
    loss_sum += loss(predictions, b.targets).item() * static_cast<double>(b.size());
    samples += b.size();
    for (auto& m : metrics) m->update(predictions, b.targets);
  }
  reduce(group, loss_sum, samples, metrics);
  if (samples == 0) throw Error("evaluate: the loader gave no batch");
  Logs logs{{"loss", loss_sum / static_cast<double>(samples)}};
  for (const auto& m : metrics) logs[m->name()] = m->value();
  return logs;
}

Tensor predict(nn::Module& model, const Forward& forward, const DataLoader& data) {
  ModeGuard mode(model);
  model.eval();
  NoGradGuard no_grad;
  std::vector<Tensor> parts;
  for (const Batch& b : data.epoch(0)) parts.push_back(forward(b));
  if (parts.empty()) throw Error("predict: the loader gave no batch");
  return cat(parts, 0);
}

// --- fit -------------------------------------------------------------------------------------------------

Forward forward_of(nn::UnaryModule& model) {
  return [&model](const Batch& b) { return model(b.inputs); };
}

History fit(nn::UnaryModule& model, const Loss& loss, optim::Optimizer& optimizer, const DataLoader& train,
            const FitOptions& options) {
  return fit(model, forward_of(model), loss, optimizer, train, options);
}

History fit(nn::Module& model, const Forward& forward, const Loss& loss, optim::Optimizer& optimizer,
            const DataLoader& train_in, const FitOptions& options) {
  if (options.epochs() < 0) throw Error(fmt::format("fit: epochs must be >= 0, got {}", options.epochs()));
  if (!(options.validation_split() >= 0.0 && options.validation_split() < 1.0))
    throw Error(fmt::format("fit: validation_split must be in [0, 1), got {}", options.validation_split()));
  if (options.validation_split() > 0.0 && options.validation())
    throw Error("fit: give validation data or a validation_split, not both");
  if (options.clip_grad_norm() && !(*options.clip_grad_norm() > 0.0 && std::isfinite(*options.clip_grad_norm())))
    throw Error(fmt::format("fit: clip_grad_norm must be a positive finite number, got {}", *options.clip_grad_norm()));
  const ProcessGroup* group = options.process_group().get();
  const bool distributed = group != nullptr && group->size() > 1;
  if (distributed && options.validation_split() > 0.0)
    throw Error("fit: validation_split cannot shard the data across processes; pass validation data whose loader has a "
                "distributed::DistributedSampler (even(false))");
  const bool main_process = group == nullptr || group->rank() == 0;
  const bool verbose = options.verbose() && main_process;
  const bool log_files = !options.log_dir().empty() && main_process;
  if (log_files) detail::create_directories(options.log_dir(), "fit: log_dir");

  // Keras's validation_split: the last fraction of the samples, before shuffling.
  const DataLoader* train = &train_in;
  const DataLoader* validation = options.validation();
  std::unique_ptr<DataLoader> split_train, split_validation;
  if (options.validation_split() > 0.0) {
    const std::int64_t n = train_in.dataset().size();
    const auto n_val = static_cast<std::int64_t>(std::floor(static_cast<double>(n) * options.validation_split()));
    if (n_val == 0 || n_val == n)
      throw Error(fmt::format("fit: validation_split {} of {} samples leaves an empty part", options.validation_split(), n));
    std::vector<std::int64_t> first(static_cast<std::size_t>(n - n_val)), last(static_cast<std::size_t>(n_val));
    std::iota(first.begin(), first.end(), 0);
    std::iota(last.begin(), last.end(), n - n_val);
    const LoaderOptions& o = train_in.options();
    split_train = std::make_unique<DataLoader>(
        train_in.dataset(), std::make_shared<BatchSampler>(first, o.batch_size(), o.shuffle(), o.seed(), o.drop_last()), o);
    split_validation = std::make_unique<DataLoader>(
        train_in.dataset(), std::make_shared<BatchSampler>(last, o.batch_size(), false, 0, false), o);
    train = split_train.get();
    validation = split_validation.get();
  }

  History history;
  FitState state{model, optimizer, history, options.epochs()};
  state.group = group;
  std::int64_t first_epoch = 0;
  if (options.resume() && !options.checkpoint().empty() && detail::exists(options.checkpoint(), "fit: checkpoint")) {
    const CheckpointInfo info = load_checkpoint(options.checkpoint(), model, &optimizer);
    first_epoch = info.integer("fit.epochs_done");
    auto it = info.metadata.find("fit.history");
    if (it != info.metadata.end()) history = decode_history(it->second, options.checkpoint());
    if (verbose) fmt::print("resumed from {} after epoch {}\n", options.checkpoint(), first_epoch);
  }

  const auto& callbacks = options.callbacks();
  for (auto& cb : callbacks) cb->on_train_begin(state);
  const std::vector<Tensor> params = model.parameters();
  // Epochs are numbered from 1, as the progress bar, History, the CSV files and the callbacks
  // show them; the loader's shuffle takes the index from 0.
  for (std::int64_t epoch = first_epoch + 1; epoch <= options.epochs() && !state.stop_training; ++epoch) {
    for (auto& cb : callbacks) cb->on_epoch_begin(state, epoch);
    model.train();
    auto metrics = make_metrics(options.metrics());
    std::optional<ProgressBar> bar;
    if (verbose) bar.emplace(fmt::format("epoch {}/{}", epoch, options.epochs()), train->num_batches());
    const auto start = std::chrono::steady_clock::now();
    double train_seconds = 0.0;
    double loss_sum = 0.0;
    std::int64_t samples = 0, batch_index = 0;
    const DataLoader::Epoch batches = train->epoch(epoch - 1);
    if (distributed) check_same_batch_count(*group, epoch, batches.size());
    for (const Batch& b : batches) {
      for (auto& cb : callbacks) cb->on_batch_begin(state, batch_index);
      const Tensor predictions = forward(b);
      const Tensor batch_loss = loss(predictions, b.targets);
      optimizer.zero_grad();
      batch_loss.backward();
      if (options.clip_grad_norm()) nn::clip_grad_norm(params, *options.clip_grad_norm());
      optimizer.step();
      const double value = batch_loss.item();
      loss_sum += value * static_cast<double>(b.size());
      samples += b.size();
      Logs batch_logs{{"loss", value}};
      for (auto& m : metrics) m->update(predictions, b.targets);
      if (bar) bar->update(b.size(), {{"loss", value}});
      train_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      for (auto& cb : callbacks) cb->on_batch_end(state, batch_index, batch_logs);
      ++batch_index;
      if (distributed) {  // one process's stop stops all, so none waits for the others' gradients
        std::vector<double> stop{state.stop_training ? 1.0 : 0.0};
        group->sum(stop);
        state.stop_training = stop[0] > 0;
      }
      if (state.stop_training) break;
    }
    reduce(group, loss_sum, samples, metrics);
    if (samples == 0) throw Error("fit: the training loader gave no batch");
    Logs logs{{"loss", loss_sum / static_cast<double>(samples)}};
    for (const auto& m : metrics) logs[m->name()] = m->value();
    if (validation) {
      for (const auto& [name, value] : evaluate(model, forward, loss, *validation, options.metrics(), group))
        logs["val_" + name] = value;
    }
    logs["seconds"] = train_seconds;
    for (auto& cb : callbacks) cb->on_epoch_end(state, epoch, logs);
    if (bar) {
      Metrics shown;  // the training means are the bar's own; validation and lr are appended
      for (const auto& [name, value] : logs)
        if (name.rfind("val_", 0) == 0 || name == "lr") shown.emplace_back(name, value);
      bar->finish(shown);
    }
    history.epochs.push_back(logs);
    if (log_files) write_history_csv(history, options.log_dir() + "/metrics.csv");
    if (!options.checkpoint().empty() && main_process)
      save_checkpoint(options.checkpoint(), model, &optimizer, nullptr,
                      {{"fit.epochs_done", std::to_string(epoch)}, {"fit.history", encode_history(history)}});
  }
  for (auto& cb : callbacks) cb->on_train_end(state);
  if (log_files && history.size() > 0) plot_history(history, options.log_dir());
  return history;
}

// --- callbacks --------------------------------------------------------------------------------------------

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
