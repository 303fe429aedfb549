// fit, evaluate and predict: a training loop written with train's public pieces (DataLoader,
// Metric, ProgressBar, checkpoints, the callbacks), as a user's own loop would be.
#include <xgrad/train/fit.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <optional>
#include <sstream>

#include <fmt/format.h>

#include <xgrad/core/autograd.hpp>
#include <xgrad/core/error.hpp>
#include <xgrad/core/ops.hpp>
#include <xgrad/nn/utils.hpp>
#include <xgrad/train/callbacks.hpp>
#include <xgrad/train/checkpoint.hpp>
#include <xgrad/train/plot.hpp>
#include <xgrad/train/progress.hpp>

#include "checked.hpp"
#include "csv.hpp"
#include "logs.hpp"

namespace xgrad::train {

// --- History ---------------------------------------------------------------------------------------

const Logs& History::epoch(std::int64_t number) const {
  if (number < 1 || number > static_cast<std::int64_t>(epochs.size()))
    throw Error(fmt::format("History: no epoch {} (epochs are numbered 1 to {})", number, epochs.size()));
  return epochs[static_cast<std::size_t>(number - 1)];
}

std::vector<double> History::values(const std::string& name) const {
  std::vector<double> out;
  for (const Logs& logs : epochs) {
    auto it = logs.find(name);
    if (it == logs.end())
      throw Error("History: no '" + name + "' in the logs (they hold: " + detail::names_in(logs) + ")");
    out.push_back(it->second);
  }
  return out;
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
  std::vector<std::string> columns{"epoch"};
  for (const auto& [name, value] : history.epochs.front()) columns.push_back(name);
  std::vector<std::string> rows;
  for (std::size_t e = 0; e < history.epochs.size(); ++e) {
    std::vector<std::string> cells{std::to_string(e + 1)};
    for (std::size_t c = 1; c < columns.size(); ++c) {
      auto it = history.epochs[e].find(columns[c]);
      cells.push_back(it == history.epochs[e].end() ? "" : detail::csv_number(it->second));
    }
    rows.push_back(detail::csv_line(cells));
  }
  detail::write_csv(path, columns, rows);
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

// --- evaluate and predict ---------------------------------------------------------------------------

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

// --- fit, in parts -------------------------------------------------------------------------------------

namespace {

// fit's options, checked before anything runs; each refusal names the option.
void check_fit_options(const FitOptions& options) {
  if (options.epochs() < 0) throw Error(fmt::format("fit: epochs must be >= 0, got {}", options.epochs()));
  if (!(options.validation_split() >= 0.0 && options.validation_split() < 1.0))
    throw Error(fmt::format("fit: validation_split must be in [0, 1), got {}", options.validation_split()));
  if (options.validation_split() > 0.0 && options.validation())
    throw Error("fit: give validation data or a validation_split, not both");
  if (options.clip_grad_norm() && !(*options.clip_grad_norm() > 0.0 && std::isfinite(*options.clip_grad_norm())))
    throw Error(fmt::format("fit: clip_grad_norm must be a positive finite number, got {}", *options.clip_grad_norm()));
  const ProcessGroup* group = options.process_group().get();
  if (group != nullptr && group->size() > 1 && options.validation_split() > 0.0)
    throw Error("fit: validation_split cannot shard the data across processes; pass validation data whose loader has a "
                "distributed::DistributedSampler (even(false))");
}

// With `resume` and an existing checkpoint: its weights, optimizer state and history are
// loaded; returns the number of epochs it had done (0 when fit starts afresh).
std::int64_t resume_from_checkpoint(const FitOptions& options, nn::Module& model, optim::Optimizer& optimizer,
                                    History& history, bool verbose) {
  if (!options.resume() || options.checkpoint().empty() || !detail::exists(options.checkpoint(), "fit: checkpoint"))
    return 0;
  const CheckpointInfo info = load_checkpoint(options.checkpoint(), model, &optimizer);
  const std::int64_t epochs_done = info.integer("fit.epochs_done");
  auto it = info.metadata.find("fit.history");
  if (it != info.metadata.end()) history = decode_history(it->second, options.checkpoint());
  if (verbose) fmt::print("resumed from {} after epoch {}\n", options.checkpoint(), epochs_done);
  return epochs_done;
}

// What every epoch of one fit call reads.
struct FitRun {
  nn::Module& model;
  const Forward& forward;
  const Loss& loss;
  optim::Optimizer& optimizer;
  const FitOptions& options;
  FitState& state;
  const ProcessGroup* group;
  bool distributed;  // more than one process
  bool verbose;      // this process shows progress
  bool log_files;    // this process writes the log_dir
  std::vector<Tensor> params;
};

// The training half of an epoch, summed over its batches.
struct EpochTotals {
  std::vector<std::unique_ptr<Metric>> metrics;
  double loss_sum = 0.0;
  std::int64_t samples = 0;
  double seconds = 0.0;  // until the last batch's step, without validation
};

// One optimisation step on `b`: forward, loss, backward, clipping, step. Adds the batch to
// the totals and returns its loss.
double train_step(FitRun& run, const Batch& b, EpochTotals& totals) {
  const Tensor predictions = run.forward(b);
  const Tensor batch_loss = run.loss(predictions, b.targets);
  run.optimizer.zero_grad();
  batch_loss.backward();
  if (run.options.clip_grad_norm()) nn::clip_grad_norm(run.params, *run.options.clip_grad_norm());
  run.optimizer.step();
  const double value = batch_loss.item();
  totals.loss_sum += value * static_cast<double>(b.size());
  totals.samples += b.size();
  for (auto& m : totals.metrics) m->update(predictions, b.targets);
  return value;
}

// The epoch's training batches, each between the callbacks' on_batch_begin and on_batch_end.
void train_batches(FitRun& run, const DataLoader& train, std::int64_t epoch, ProgressBar* bar, EpochTotals& totals) {
  const auto& callbacks = run.options.callbacks();
  const auto start = std::chrono::steady_clock::now();
  std::int64_t batch_index = 0;
  const DataLoader::Epoch batches = train.epoch(epoch - 1);
  if (run.distributed) check_same_batch_count(*run.group, epoch, batches.size());
  for (const Batch& b : batches) {
    for (auto& cb : callbacks) cb->on_batch_begin(run.state, batch_index);
    const double value = train_step(run, b, totals);
    Logs batch_logs{{"loss", value}};
    if (bar) bar->update(b.size(), {{"loss", value}});
    totals.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    for (auto& cb : callbacks) cb->on_batch_end(run.state, batch_index, batch_logs);
    ++batch_index;
    if (run.distributed) {  // one process's stop stops all, so none waits for the others' gradients
      std::vector<double> stop{run.state.stop_training ? 1.0 : 0.0};
      run.group->sum(stop);
      run.state.stop_training = stop[0] > 0;
    }
    if (run.state.stop_training) break;
  }
}

// The epoch's logs: the training loss and metrics over every process, validation's as
// "val_<name>", and the seconds the training batches took.
Logs epoch_logs(FitRun& run, EpochTotals& totals, const DataLoader* validation) {
  reduce(run.group, totals.loss_sum, totals.samples, totals.metrics);
  if (totals.samples == 0) throw Error("fit: the training loader gave no batch");
  Logs logs{{"loss", totals.loss_sum / static_cast<double>(totals.samples)}};
  for (const auto& m : totals.metrics) logs[m->name()] = m->value();
  if (validation) {
    for (const auto& [name, value] : evaluate(run.model, run.forward, run.loss, *validation, run.options.metrics(), run.group))
      logs["val_" + name] = value;
  }
  logs["seconds"] = totals.seconds;
  return logs;
}

// The bar's last line: the training means are the bar's own; validation and lr are appended.
void finish_bar(ProgressBar& bar, const Logs& logs) {
  Metrics shown;
  for (const auto& [name, value] : logs)
    if (name.rfind("val_", 0) == 0 || name == "lr") shown.emplace_back(name, value);
  bar.finish(shown);
}

// After each epoch: metrics.csv of the log_dir, and the checkpoint (rank 0 writes both).
void save_epoch(const FitRun& run, const History& history, std::int64_t epoch) {
  if (run.log_files) write_history_csv(history, run.options.log_dir() + "/metrics.csv");
  if (!run.options.checkpoint().empty() && run.state.main_process())
    save_checkpoint(run.options.checkpoint(), run.model, &run.optimizer, nullptr,
                    {{"fit.epochs_done", std::to_string(epoch)}, {"fit.history", encode_history(history)}});
}

// fit's validation_split, with fit's name on its errors.
SplitLoaders split_for_fit(const DataLoader& train, double fraction) {
  try {
    return validation_split(train, fraction);
  } catch (const Error& e) {
    throw Error(std::string("fit: ") + e.what());
  }
}

}  // namespace

Forward forward_of(nn::UnaryModule& model) {
  return [&model](const Batch& b) { return model(b.inputs); };
}

History fit(nn::UnaryModule& model, const Loss& loss, optim::Optimizer& optimizer, const DataLoader& train,
            const FitOptions& options) {
  return fit(model, forward_of(model), loss, optimizer, train, options);
}

History fit(nn::Module& model, const Forward& forward, const Loss& loss, optim::Optimizer& optimizer,
            const DataLoader& train_in, const FitOptions& options) {
  check_fit_options(options);
  History history;
  FitState state{model, optimizer, history, options.epochs()};
  state.group = options.process_group().get();
  FitRun run{model, forward, loss, optimizer, options, state, state.group,
             state.group != nullptr && state.group->size() > 1, options.verbose() && state.main_process(),
             !options.log_dir().empty() && state.main_process(), {}};
  if (run.log_files) detail::create_directories(options.log_dir(), "fit: log_dir");
  // Keras's validation_split: the last fraction of the samples, before shuffling.
  std::optional<SplitLoaders> split;
  if (options.validation_split() > 0.0) split.emplace(split_for_fit(train_in, options.validation_split()));
  const DataLoader& train = split ? split->train : train_in;
  const DataLoader* validation = split ? &split->validation : options.validation();
  const std::int64_t first_epoch = resume_from_checkpoint(options, model, optimizer, history, run.verbose);

  const auto& callbacks = options.callbacks();
  for (auto& cb : callbacks) cb->on_train_begin(state);
  run.params = model.parameters();
  // Epochs are numbered from 1, as the progress bar, History, the CSV files and the callbacks
  // show them; the loader's shuffle takes the index from 0.
  for (std::int64_t epoch = first_epoch + 1; epoch <= options.epochs() && !state.stop_training; ++epoch) {
    for (auto& cb : callbacks) cb->on_epoch_begin(state, epoch);
    model.train();
    EpochTotals totals{make_metrics(options.metrics())};
    std::optional<ProgressBar> bar;
    if (run.verbose) bar.emplace(fmt::format("epoch {}/{}", epoch, options.epochs()), train.num_batches());
    train_batches(run, train, epoch, bar ? &*bar : nullptr, totals);
    Logs logs = epoch_logs(run, totals, validation);
    for (auto& cb : callbacks) cb->on_epoch_end(state, epoch, logs);
    if (bar) finish_bar(*bar, logs);
    history.epochs.push_back(logs);
    save_epoch(run, history, epoch);
  }
  for (auto& cb : callbacks) cb->on_train_end(state);
  if (run.log_files && history.size() > 0) plot_history(history, options.log_dir());
  return history;
}

}  // namespace xgrad::train
