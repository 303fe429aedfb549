#pragma once
/// \file
/// What fit calls back while it trains: the Callback interface with the state it sees, and
/// Keras's callbacks — EarlyStopping, ModelCheckpoint, ReduceLROnPlateau, CsvLog (Keras's
/// CSVLogger) and TerminateOnNaN.
///
/// Example:
///
///     auto stop = std::make_shared<train::EarlyStopping>(train::EarlyStoppingOptions().patience(3));
///     train::fit(model, loss, opt, loader, train::FitOptions().epochs(50).validation(&val).callbacks({stop}));
///     fmt::print("stopped at epoch {}\n", stop->stopped_epoch());
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <xgrad/core/io.hpp>
#include <xgrad/core/options.hpp>
#include <xgrad/nn/module.hpp>
#include <xgrad/optim/optimizer.hpp>
#include <xgrad/optim/plateau.hpp>
#include <xgrad/train/fit.hpp>
#include <xgrad/train/logger.hpp>

namespace xgrad::train {

/// What callbacks see and may change while fit runs.
/// Example: `if (state.main_process()) fmt::print("epoch {} of {}\n", epoch, state.epochs);`
struct FitState {
  nn::Module& model;               ///< the model being trained
  optim::Optimizer& optimizer;     ///< its optimizer (a callback may change learning rates)
  History& history;                ///< the epochs finished so far
  std::int64_t epochs;             ///< the epoch count fit runs to
  bool stop_training = false;      ///< set it to end fit after the current epoch (or batch)
  const ProcessGroup* group = nullptr;  ///< the processes training together (null: just this one)
  /// True on the process that prints and writes files (rank 0, or the only one).
  bool main_process() const { return group == nullptr || group->rank() == 0; }
};

/// Hooks into fit, all optional. Epochs are numbered from 1 (see History), batches from 0
/// within their epoch. `on_epoch_end` may add entries to the logs (they reach the history
/// and the later callbacks).
/// Example:
///
///     struct PrintLr : train::Callback {
///       void on_epoch_end(train::FitState& s, std::int64_t, train::Logs&) override {
///         fmt::print("lr {}\n", s.optimizer.param_groups()[0].lr()); }
///     };
class Callback {
 public:
  virtual ~Callback() = default;
  /// Before the first epoch (after a resumed run's checkpoint is loaded).
  virtual void on_train_begin(FitState&) {}
  /// Before the epoch's first batch.
  virtual void on_epoch_begin(FitState&, std::int64_t /*epoch*/) {}
  /// Before the batch's forward.
  virtual void on_batch_begin(FitState&, std::int64_t /*batch*/) {}
  /// After the batch's optimizer step; the logs hold its "loss".
  virtual void on_batch_end(FitState&, std::int64_t /*batch*/, const Logs& /*logs*/) {}
  /// After the epoch's validation, before the logs reach the history.
  virtual void on_epoch_end(FitState&, std::int64_t /*epoch*/, Logs& /*logs*/) {}
  /// After the last epoch (or the epoch training stopped at).
  virtual void on_train_end(FitState&) {}
};

/// Whether a larger or a smaller monitored value is better (optim::Mode, the one enum for
/// it); `automatic` is Keras's rule: max for names containing "acc", min otherwise.
using optim::Mode;

/// Options of EarlyStopping (Keras's defaults). Example:
/// `train::EarlyStoppingOptions().monitor("val_loss").patience(3).restore_best_weights(true)`
struct EarlyStoppingOptions {
  /// The log entry watched ("val_loss", "val_accuracy", ...).
  XGRAD_ARG(std::string, monitor) = "val_loss";
  /// Whether it should go down or up; automatic reads the monitor's name.
  XGRAD_ARG(Mode, mode) = Mode::automatic;
  /// Epochs in a row without improvement before training stops (>= 0).
  XGRAD_ARG(std::int64_t, patience) = 0;
  /// The least change that counts as an improvement (>= 0).
  XGRAD_ARG(double, min_delta) = 0.0;
  /// Put back the best epoch's weights at the end.
  XGRAD_ARG(bool, restore_best_weights) = false;
};

/// Stops training when the monitored value has not improved by more than min_delta for
/// `patience` epochs in a row (Keras's rule: patience 2 stops at the second epoch without
/// improvement; never at the first epoch); NaN is never an improvement. With
/// restore_best_weights, puts back the weights of the best epoch (bit for bit) when it stops
/// or when training ends.
/// Example: `auto stop = std::make_shared<train::EarlyStopping>(train::EarlyStoppingOptions().patience(2));`
class EarlyStopping : public Callback {
 public:
  /// Throws for a negative patience or min_delta, naming it.
  explicit EarlyStopping(EarlyStoppingOptions options = {});
  /// Forgets any earlier run (a callback may serve several fits).
  void on_train_begin(FitState& state) override;
  /// Compares the monitored value with the best so far; may stop training.
  void on_epoch_end(FitState& state, std::int64_t epoch, Logs& logs) override;
  /// Restores the best weights when asked to.
  void on_train_end(FitState& state) override;
  /// The epoch training stopped at (0 while it has not), and the best epoch so far (0 while
  /// no epoch improved: every value was NaN); both 1-based, as fit numbers epochs.
  ///@{
  std::int64_t stopped_epoch() const { return stopped_epoch_; }
  std::int64_t best_epoch() const { return best_epoch_; }
  ///@}

 private:
  EarlyStoppingOptions options_;
  double best_ = 0.0;
  std::int64_t wait_ = 0, best_epoch_ = 0, stopped_epoch_ = 0;
  NamedTensors best_weights_;
};

/// Saves the model's state dict to `path` (safetensors, atomically) after an epoch — only
/// when the monitored value improves with `save_best_only` (the default; NaN never does).
/// Example: `auto best = std::make_shared<train::ModelCheckpoint>("best.safetensors", "val_accuracy");`
class ModelCheckpoint : public Callback {
 public:
  /// Watches `monitor` (which way it improves: `mode`); with `save_best_only` false, saves
  /// after every epoch.
  ModelCheckpoint(std::string path, std::string monitor = "val_loss", bool save_best_only = true,
                  Mode mode = Mode::automatic);
  /// Saves the weights when the epoch calls for it.
  void on_epoch_end(FitState& state, std::int64_t epoch, Logs& logs) override;
  /// Epochs (1-based) at which the file was written (by rank 0 when several processes train).
  const std::vector<std::int64_t>& saved_epochs() const { return saved_; }

 private:
  std::string path_, monitor_;
  bool save_best_only_;
  Mode mode_;
  double best_;
  std::vector<std::int64_t> saved_;
};

/// optim::ReduceLROnPlateau driven by a monitored value of the logs (default "val_loss");
/// adds "lr" (group 0's learning rate) to the epoch's logs. Mode::automatic is resolved from
/// the monitor's name.
/// Example: `std::make_shared<train::ReduceLROnPlateau>(optim::ReduceLROnPlateauOptions().patience(2).factor(0.5))`
class ReduceLROnPlateau : public Callback {
 public:
  /// The scheduler's options and the log entry it watches.
  explicit ReduceLROnPlateau(optim::ReduceLROnPlateauOptions options = {}, std::string monitor = "val_loss");
  /// Builds the scheduler on fit's optimizer.
  void on_train_begin(FitState& state) override;
  /// Steps the scheduler with the monitored value and logs "lr".
  void on_epoch_end(FitState& state, std::int64_t epoch, Logs& logs) override;

 private:
  optim::ReduceLROnPlateauOptions options_;
  std::string monitor_;
  std::unique_ptr<optim::ReduceLROnPlateau> scheduler_;
};

/// Keras's CSVLogger: one row per epoch ("epoch" and every log entry) to `path`, written
/// atomically after each epoch.
/// Example: `std::make_shared<train::CsvLog>("out/log.csv")`
class CsvLog : public Callback {
 public:
  /// Writes to `path` (its columns are the first epoch's log entries).
  explicit CsvLog(std::string path) : path_(std::move(path)) {}
  /// Appends the epoch's row (on the main process only).
  void on_epoch_end(FitState& state, std::int64_t epoch, Logs& logs) override;

 private:
  std::string path_;
  std::unique_ptr<CsvLogger> logger_;
};

/// Stops training at the first batch whose loss is NaN or infinite (Keras's TerminateOnNaN).
/// Example: `train::FitOptions().callbacks({std::make_shared<train::TerminateOnNaN>()})`
class TerminateOnNaN : public Callback {
 public:
  /// Checks the batch's "loss"; prints the batch and stops training when it is not finite.
  void on_batch_end(FitState& state, std::int64_t batch, const Logs& logs) override;
};

}  // namespace xgrad::train
