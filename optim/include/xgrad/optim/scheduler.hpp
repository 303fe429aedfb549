#pragma once
/// \file
/// Learning-rate schedulers: each sets the learning rate of every parameter group of an
/// optimizer, with PyTorch 1.13's formulas (torch.optim.lr_scheduler), step for step.
///
/// A scheduler keeps a reference to its optimizer, which must outlive it. Like PyTorch,
/// constructing a scheduler already applies its epoch-0 learning rate, and `step()` is called
/// once per epoch (or iteration) after `optimizer.step()`. ReduceLROnPlateau, driven by a
/// metric instead of the epoch, is in <xgrad/optim/plateau.hpp>.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <xgrad/core/io.hpp>
#include <xgrad/optim/optimizer.hpp>

namespace xgrad::optim {

/// Base of the epoch-driven schedulers. Each computes the new learning rates from the
/// current ones (PyTorch's "chainable" form), so several schedulers may act on one optimizer.
/// The first scheduler attached records each group's `initial_lr`; `base_lrs()` are those.
///
/// Example:
///     optim::StepLR sched(opt, 30, 0.1);
///     for (int epoch = 0; epoch < 100; ++epoch) { train_one_epoch(); sched.step(); }
class LRScheduler {
 public:
  virtual ~LRScheduler() = default;
  LRScheduler(const LRScheduler&) = delete;
  LRScheduler& operator=(const LRScheduler&) = delete;

  /// Advances one epoch and writes the new learning rate into every group.
  /// Example: `opt.step(); sched.step();`
  virtual void step();
  /// The learning rate of each group after the latest step (or after construction).
  /// Example: `fmt::print("lr {}\n", sched.get_last_lr()[0]);`
  const std::vector<double>& get_last_lr() const { return last_lr_; }
  /// Number of completed steps (0 right after construction). Example: `sched.last_epoch()`
  std::int64_t last_epoch() const { return last_epoch_; }
  /// Each group's `initial_lr`, the schedule's starting point. Example: `sched.base_lrs()[0]`
  const std::vector<double>& base_lrs() const { return base_lrs_; }
  /// "StepLR", "CosineAnnealingLR", ... Example: `sched.name()`
  const std::string& name() const { return name_; }
  /// The optimizer whose learning rates this scheduler sets. Example: `sched.optimizer().param_groups()`
  Optimizer& optimizer() const { return *optimizer_; }

  /// The counters and learning rates as 0-d / 1-D tensors: "last_epoch", "step_count"
  /// (i64), "base_lrs", "last_lr" (f64, one per group). The constructor's arguments are not
  /// saved: construct the scheduler the same way, then load.
  /// Example: `save_safetensors("sched.safetensors", sched.state_dict());`
  virtual NamedTensors state_dict() const;
  /// Restores `state_dict()`; throws naming the scheduler on a missing key or group count.
  /// Example: `sched.load_state_dict(load_safetensors("sched.safetensors").tensors);`
  virtual void load_state_dict(const NamedTensors& state);
  /// `state_dict()` as a safetensors file. Example: `sched.save("ckpt/sched.safetensors");`
  void save(const std::string& path) const;
  /// Loads a file written by `save()` of the same kind of scheduler.
  /// Example: `sched.load("ckpt/sched.safetensors");`
  void load(const std::string& path);

 protected:
  /// Records `initial_lr` in groups that have none and takes them as the base learning rates.
  LRScheduler(Optimizer& optimizer, std::string name);
  /// PyTorch's `_initial_step`: resets the step count and takes the epoch-0 step. Derived
  /// constructors call it last (it calls the virtual `get_lr`).
  void initial_step();
  /// The chainable form: next learning rates from the groups' current ones and last_epoch.
  virtual std::vector<double> get_lr() const = 0;
  /// The closed form at last_epoch (used when a SequentialLR restarts a scheduler at 0).
  virtual std::vector<double> closed_form_lr() const { return get_lr(); }
  /// Jumps to `epoch` and applies the closed form (PyTorch's deprecated `step(epoch)`).
  void step_to(std::int64_t epoch);
  /// The groups' current learning rates.
  std::vector<double> group_lrs() const;
  /// Writes `lrs` (one per group) into the groups and records them as get_last_lr().
  void apply(const std::vector<double>& lrs);
  /// Throws an Error "<name>: <message>".
  [[noreturn]] void fail(const std::string& message) const;

  Optimizer* optimizer_;          ///< the optimizer whose groups it sets (outlives the scheduler)
  std::string name_;              ///< "StepLR", ... (error messages, the saved file's metadata)
  std::vector<double> base_lrs_;  ///< each group's initial_lr
  std::int64_t last_epoch_ = -1;  ///< completed steps (-1 before the constructor's initial step)
  std::int64_t step_count_ = 0;   ///< PyTorch's `_step_count`, saved in the state dict
  std::vector<double> last_lr_;   ///< each group's learning rate after the latest step

  friend class SequentialLR;
  friend class ChainedScheduler;
};

/// Multiplies the learning rate by `gamma` every `step_size` epochs:
/// lr = base_lr * gamma^(epoch / step_size).
/// Example: `optim::StepLR sched(opt, 30, 0.1);  // 0.1 for 30 epochs, 0.01 for 30, ...`
class StepLR : public LRScheduler {
 public:
  /// Applies epoch 0's learning rate (base_lr). Example: `optim::StepLR sched(opt, 10);`
  StepLR(Optimizer& optimizer, std::int64_t step_size, double gamma = 0.1);

 protected:
  std::vector<double> get_lr() const override;
  std::vector<double> closed_form_lr() const override;

 private:
  std::int64_t step_size_;
  double gamma_;
};

/// Multiplies the learning rate by `gamma` at each milestone epoch (a milestone listed twice
/// multiplies twice).
/// Example: `optim::MultiStepLR sched(opt, {30, 80}, 0.1);`
class MultiStepLR : public LRScheduler {
 public:
  /// Milestones may be in any order. Example: `optim::MultiStepLR sched(opt, {10, 20});`
  MultiStepLR(Optimizer& optimizer, std::vector<std::int64_t> milestones, double gamma = 0.1);

 protected:
  std::vector<double> get_lr() const override;
  std::vector<double> closed_form_lr() const override;

 private:
  std::vector<std::int64_t> milestones_;  // sorted
  double gamma_;
};

/// Multiplies the learning rate by `gamma` every epoch: lr = base_lr * gamma^epoch.
/// Example: `optim::ExponentialLR sched(opt, 0.95);`
class ExponentialLR : public LRScheduler {
 public:
  /// Example: `optim::ExponentialLR sched(opt, 0.9);`
  ExponentialLR(Optimizer& optimizer, double gamma);

 protected:
  std::vector<double> get_lr() const override;
  std::vector<double> closed_form_lr() const override;

 private:
  double gamma_;
};

/// Cosine annealing from base_lr down to `eta_min` over `T_max` epochs (and back up over the
/// next T_max, as PyTorch's recursive form does):
/// lr = eta_min + (base_lr - eta_min) * (1 + cos(pi * epoch / T_max)) / 2.
/// Example: `optim::CosineAnnealingLR sched(opt, 100, 1e-5);`
class CosineAnnealingLR : public LRScheduler {
 public:
  /// `T_max` > 0 epochs from base_lr to eta_min. Example: `optim::CosineAnnealingLR sched(opt, 50);`
  CosineAnnealingLR(Optimizer& optimizer, std::int64_t T_max, double eta_min = 0.0);

 protected:
  std::vector<double> get_lr() const override;
  std::vector<double> closed_form_lr() const override;

 private:
  std::int64_t T_max_;
  double eta_min_;
};

/// LinearLR's knobs, with PyTorch's defaults.
/// Example: `optim::LinearLROptions().start_factor(0.1).total_iters(5)`
struct LinearLROptions {
  /// Multiplier of base_lr at epoch 0, in (0, 1].
  XGRAD_ARG(double, start_factor) = 1.0 / 3.0;
  /// Multiplier of base_lr from epoch `total_iters` on, in [0, 1].
  XGRAD_ARG(double, end_factor) = 1.0;
  /// Epochs over which the factor moves from start_factor to end_factor.
  XGRAD_ARG(std::int64_t, total_iters) = 5;
};

/// Scales the learning rate by a factor that moves linearly from start_factor to end_factor
/// over total_iters epochs, then stays (a warm-up, or a linear decay):
/// lr = base_lr * (start + (end - start) * min(epoch, total_iters) / total_iters).
/// Example: `optim::LinearLR warmup(opt, optim::LinearLROptions().start_factor(0.1).total_iters(5));`
class LinearLR : public LRScheduler {
 public:
  /// Applies epoch 0's learning rate (base_lr * start_factor). Example: `optim::LinearLR warmup(opt);`
  LinearLR(Optimizer& optimizer, const LinearLROptions& options = LinearLROptions());

 protected:
  std::vector<double> get_lr() const override;
  std::vector<double> closed_form_lr() const override;

 private:
  LinearLROptions options_;
};

/// Runs schedulers one after another: `schedulers[i]` drives epochs from `milestones[i-1]`
/// on, restarted at its epoch 0 (closed form) when its turn comes. The schedulers must all
/// act on `optimizer`. As PyTorch's SequentialLR.
/// Example (5 epochs of linear warm-up, then cosine):
///     auto warmup = std::make_shared<optim::LinearLR>(opt, optim::LinearLROptions().start_factor(0.1));
///     auto cosine = std::make_shared<optim::CosineAnnealingLR>(opt, 95);
///     optim::SequentialLR sched(opt, {warmup, cosine}, {5});
class SequentialLR : public LRScheduler {
 public:
  /// Takes over schedulers already built on `optimizer`: restores the initial learning rates
  /// and re-applies only the first scheduler's epoch 0. Needs milestones.size() + 1 schedulers.
  /// Example: `optim::SequentialLR sched(opt, {warmup, cosine}, {5});`
  SequentialLR(Optimizer& optimizer, std::vector<std::shared_ptr<LRScheduler>> schedulers,
               std::vector<std::int64_t> milestones);
  /// Steps the scheduler whose turn it is (restarting it at a milestone). Example: `sched.step();`
  void step() override;
  /// Its own counters plus each scheduler's state under "schedulers.<i>.".
  /// Example: `save_safetensors("sched.safetensors", sched.state_dict());`
  NamedTensors state_dict() const override;
  /// Example: `sched.load_state_dict(load_safetensors("sched.safetensors").tensors);`
  void load_state_dict(const NamedTensors& state) override;

 protected:
  std::vector<double> get_lr() const override { return group_lrs(); }

 private:
  std::vector<std::shared_ptr<LRScheduler>> schedulers_;
  std::vector<std::int64_t> milestones_;
};

/// Steps several schedulers together every epoch, so their factors multiply (e.g. an
/// exponential decay and a step decay at once). As PyTorch's ChainedScheduler.
/// Example:
///     optim::ChainedScheduler sched({std::make_shared<optim::ExponentialLR>(opt, 0.95),
///                                    std::make_shared<optim::StepLR>(opt, 10, 0.5)});
class ChainedScheduler : public LRScheduler {
 public:
  /// Schedulers already built on one optimizer. Example: `optim::ChainedScheduler sched({a, b});`
  explicit ChainedScheduler(std::vector<std::shared_ptr<LRScheduler>> schedulers);
  /// Steps every scheduler, in order. Example: `sched.step();`
  void step() override;
  /// Each scheduler's state under "schedulers.<i>.".
  /// Example: `save_safetensors("sched.safetensors", sched.state_dict());`
  NamedTensors state_dict() const override;
  /// Example: `sched.load_state_dict(load_safetensors("sched.safetensors").tensors);`
  void load_state_dict(const NamedTensors& state) override;

 protected:
  std::vector<double> get_lr() const override { return group_lrs(); }

 private:
  std::vector<std::shared_ptr<LRScheduler>> schedulers_;
};

}  // namespace xgrad::optim
