#pragma once
/// \file
/// Reducing the learning rate when a monitored value stops improving (PyTorch 1.13's
/// ReduceLROnPlateau, decision for decision), and xgrad's one enum for "minimise or maximise".
///
/// Not an LRScheduler: its step takes the metric, and it sets the learning rates from the
/// history of that metric rather than from the epoch count.
///
///     optim::ReduceLROnPlateau sched(opt, optim::ReduceLROnPlateauOptions().patience(5));
///     for (...) { train_one_epoch(); sched.step(validate()); }
#include <cstdint>
#include <string>
#include <vector>

#include <xgrad/core/io.hpp>
#include <xgrad/core/options.hpp>
#include <xgrad/optim/optimizer.hpp>

namespace xgrad::optim {

/// Whether a monitored value should go down (a loss: min) or up (an accuracy: max); xgrad's
/// one enum for it (ReduceLROnPlateau, and train's EarlyStopping, ModelCheckpoint and
/// callbacks as `train::Mode`). `automatic` is Keras's "auto": max for a name containing
/// "acc", min otherwise — only where a name is known (train's callbacks).
enum class Mode { min = 0, max = 1, automatic = 2 };
/// Whether an improvement must beat the best by a relative or an absolute margin.
enum class ThresholdMode { rel = 0, abs = 1 };

/// ReduceLROnPlateau's knobs, with PyTorch's defaults.
/// Example: `optim::ReduceLROnPlateauOptions().factor(0.5).patience(3).min_lr(1e-5)`
struct ReduceLROnPlateauOptions {
  /// Whether the metric should go down (min, a loss) or up (max); automatic is refused here
  /// (no name to read it from: train::ReduceLROnPlateau resolves it from its monitor).
  XGRAD_ARG(Mode, mode) = Mode::min;
  /// new_lr = lr * factor; must be < 1.
  XGRAD_ARG(double, factor) = 0.1;
  /// Epochs without improvement tolerated before the learning rate is reduced.
  XGRAD_ARG(std::int64_t, patience) = 10;
  /// Margin an improvement must exceed: best * (1 ∓ threshold) (rel) or best ∓ threshold (abs).
  XGRAD_ARG(double, threshold) = 1e-4;
  /// Whether `threshold` is relative to the best value (rel) or absolute (abs).
  XGRAD_ARG(ThresholdMode, threshold_mode) = ThresholdMode::rel;
  /// Epochs after a reduction during which bad epochs are not counted.
  XGRAD_ARG(std::int64_t, cooldown) = 0;
  /// Lower bound of the learning rate: one value for every group, or one per group.
  XGRAD_ARG(std::vector<double>, min_lr) = {0.0};
  /// Reductions smaller than eps are skipped.
  XGRAD_ARG(double, eps) = 1e-8;

 public:
  /// One lower bound for every group. Example: `optim::ReduceLROnPlateauOptions().min_lr(1e-5)`
  auto& min_lr(double value) {
    min_lr_ = {value};
    return *this;
  }
};

/// Reduces the learning rate by `factor` when a metric has not improved for `patience`
/// epochs, as PyTorch's ReduceLROnPlateau. Not an LRScheduler: its step takes the metric.
/// Example:
///     optim::ReduceLROnPlateau sched(opt, optim::ReduceLROnPlateauOptions().patience(5));
///     for (...) { double val_loss = validate(); sched.step(val_loss); }
class ReduceLROnPlateau {
 public:
  /// Changes nothing until the first `step`. Throws for factor >= 1 or a min_lr list whose
  /// length is neither 1 nor the number of groups.
  /// Example: `optim::ReduceLROnPlateau sched(opt);`
  ReduceLROnPlateau(Optimizer& optimizer, const ReduceLROnPlateauOptions& options = ReduceLROnPlateauOptions());

  /// Records this epoch's metric and reduces the learning rates if it has plateaued.
  /// Example: `sched.step(val_loss);`
  void step(double metric);
  /// Each group's learning rate after the latest step. Example: `sched.get_last_lr()[0]`
  const std::vector<double>& get_last_lr() const { return last_lr_; }
  /// Number of steps taken. Example: `sched.last_epoch()`
  std::int64_t last_epoch() const { return last_epoch_; }
  /// The best metric so far (+inf in min mode, -inf in max mode before the first step).
  /// Example: `fmt::print("best {}\n", sched.best());`
  double best() const { return best_; }
  /// Epochs since the last improvement (reset by a reduction and during cooldown).
  /// Example: `sched.num_bad_epochs()`
  std::int64_t num_bad_epochs() const { return num_bad_epochs_; }

  /// "best", "last_lr" (f64) and "last_epoch", "num_bad_epochs", "cooldown_counter" (i64).
  /// Example: `save_safetensors("plateau.safetensors", sched.state_dict());`
  NamedTensors state_dict() const;
  /// Restores `state_dict()`; throws naming the missing key.
  /// Example: `sched.load_state_dict(load_safetensors("plateau.safetensors").tensors);`
  void load_state_dict(const NamedTensors& state);
  /// `state_dict()` as a safetensors file. Example: `sched.save("ckpt/plateau.safetensors");`
  void save(const std::string& path) const;
  /// Loads a file written by `save()`. Example: `sched.load("ckpt/plateau.safetensors");`
  void load(const std::string& path);

 private:
  bool is_better(double a, double best) const;
  void reduce_lr();

  Optimizer* optimizer_;
  ReduceLROnPlateauOptions options_;
  std::vector<double> min_lrs_;
  double best_;
  std::int64_t num_bad_epochs_ = 0;
  std::int64_t cooldown_counter_ = 0;
  std::int64_t last_epoch_ = 0;
  std::vector<double> last_lr_;
};

}  // namespace xgrad::optim
