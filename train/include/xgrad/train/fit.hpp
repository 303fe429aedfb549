#pragma once
/// \file
/// Keras's `fit`, `evaluate` and `predict`. They are written with the same public pieces a
/// hand-written loop uses (DataLoader, metrics, ProgressBar, checkpoints): a loop of your own
/// stays a first-class way to train. The callbacks fit runs are in <xgrad/train/callbacks.hpp>.
///
/// Example (the Keras tutorial's model, a Sequential ending in one logit):
///
///     auto bce = [](const Tensor& logits, const Tensor& y) {
///       return nn::binary_cross_entropy_with_logits(logits.reshape({-1}), y); };
///     train::History history = train::fit(model, bce, opt, train_loader,
///         train::FitOptions().epochs(100).validation_split(0.2).metrics({"binary_accuracy"})
///             .callbacks({std::make_shared<train::EarlyStopping>(
///                 train::EarlyStoppingOptions().patience(3).restore_best_weights(true))}));
#include <concepts>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <xgrad/core/options.hpp>
#include <xgrad/core/tensor.hpp>
#include <xgrad/nn/module.hpp>
#include <xgrad/optim/optimizer.hpp>
#include <xgrad/train/loader.hpp>
#include <xgrad/train/metrics.hpp>

namespace xgrad::train {

/// One epoch's (or one batch's) values by name: "loss", "accuracy", "val_loss", "lr", ...
using Logs = std::map<std::string, double>;

/// What fit returns: the logs of every epoch, in order (`epochs[0]` is epoch 1).
///
/// Epochs are numbered from 1 everywhere xgrad shows or passes one: the progress bar
/// ("epoch 1/10"), the callbacks' `epoch` argument, `EarlyStopping::best_epoch()` and
/// `stopped_epoch()`, `ModelCheckpoint::saved_epochs()`, the "epoch" column of CsvLog and of
/// a log_dir's metrics.csv. (`DataLoader::epoch(i)` takes a shuffle index from 0: fit's epoch
/// e uses index e − 1.)
/// Example: `double last = history.values("val_loss").back();`
struct History {
  std::vector<Logs> epochs;  ///< every epoch's logs, epoch 1 first
  /// The logs of epoch `number` (1-based); throws when there is no such epoch.
  const Logs& epoch(std::int64_t number) const;
  /// The values of `name` over the epochs; throws naming the names there are when absent.
  std::vector<double> values(const std::string& name) const;
  /// The number of epochs recorded.
  std::size_t size() const { return epochs.size(); }
};

/// The processes that train one model together, as fit and evaluate see them: their number,
/// this one's rank, and sums across them. `distributed::process_group()` gives one over MPI
/// (train never depends on distributed); without one, a single process trains.
class ProcessGroup {
 public:
  virtual ~ProcessGroup() = default;
  /// This process's index, from 0 to size() − 1; rank 0 prints and writes files.
  virtual int rank() const = 0;
  /// The number of processes.
  virtual int size() const = 0;
  /// Replaces `values`, on every process, by their element-wise sums over the processes.
  virtual void sum(std::vector<double>& values) const = 0;
};

class Callback;  // <xgrad/train/callbacks.hpp>

/// A model's forward on one batch. For a one-in, one-out module it is `model(batch.inputs)`;
/// a sequence model passes the lengths: `[&](const train::Batch& b) { return net(b.inputs, b.lengths); }`.
using Forward = std::function<Tensor(const Batch&)>;
/// A batch's loss: (predictions, targets) → a scalar, the mean over the batch.
using Loss = std::function<Tensor(const Tensor& predictions, const Tensor& targets)>;

/// Options of fit. Example: `train::FitOptions().epochs(10).validation(&val_loader).metrics({"accuracy"})`
struct FitOptions {
  /// The number of epochs to train (a resumed run counts the ones already done).
  XGRAD_ARG(std::int64_t, epochs) = 1;
  /// Validation after every epoch on this loader ("val_loss", "val_<metric>")...
  XGRAD_ARG(const DataLoader*, validation) = nullptr;
  /// ... or on the last fraction of the training data, as Keras's validation_split (taken
  /// before any shuffling; the training loader keeps its options for the rest; see
  /// train::validation_split).
  XGRAD_ARG(double, validation_split) = 0.0;
  /// Metrics by Keras name (see make_metric), reported per epoch for training and validation.
  XGRAD_ARG(std::vector<std::string>, metrics);
  /// Hooks run at the start and end of training, of each epoch and of each batch, in order.
  XGRAD_ARG(std::vector<std::shared_ptr<Callback>>, callbacks);
  /// A progress bar per epoch (default true; XGRAD_PROGRESS still chooses bar or lines).
  XGRAD_ARG(bool, verbose) = true;
  /// Clip the gradients' total norm to this positive, finite value before each step (off
  /// when not set); fit refuses any other value, naming the option.
  XGRAD_ARG(std::optional<double>, clip_grad_norm);
  /// After every epoch, the whole training state (model, optimizer, random generator, epoch,
  /// history) goes to this safetensors file, atomically; with `resume`, fit continues from
  /// it when it exists, exactly as the uninterrupted run would have. Callbacks start afresh
  /// (an EarlyStopping's patience counts from the resumed epoch), as Keras's do.
  XGRAD_ARG(std::string, checkpoint);
  /// Continue from `checkpoint` when the file exists (start afresh when it does not).
  XGRAD_ARG(bool, resume) = false;
  /// The run's files in this directory (created): metrics.csv, every epoch's logs, rewritten
  /// atomically after each epoch (a resumed run's file holds every epoch), and at the end
  /// loss.png, the loss and val_loss per epoch (with gnuplot; CSV only without it).
  XGRAD_ARG(std::string, log_dir);
  /// Train on several processes (see distributed::DataParallel and distributed::DistributedSampler): the
  /// epoch's loss and metrics, and validation's, are reduced over all of them, so every
  /// process sees the same logs and callbacks decide alike; a batch-level stop on one stops
  /// all; only rank 0 shows progress and writes the checkpoint, ModelCheckpoint's and
  /// CsvLog's files. Every process resumes from the same checkpoint (it holds rank 0's
  /// random generator: seed every rank alike for an exact resume).
  XGRAD_ARG(std::shared_ptr<const ProcessGroup>, process_group);
};

/// Trains `model` on `train` for the given epochs: per batch forward, loss, backward, an
/// optimizer step; per epoch the training loss and metrics (batch-size weighted), then
/// validation in eval mode without gradients, then the callbacks. Returns the history.
/// Example: `auto h = train::fit(net, train::forward_of(net), loss, opt, loader, train::FitOptions().epochs(5));`
History fit(nn::Module& model, const Forward& forward, const Loss& loss, optim::Optimizer& optimizer,
            const DataLoader& train, const FitOptions& options = {});
/// The same for a one-in, one-out module (a Sequential): the forward is `model(inputs)`.
/// Example: `train::fit(model, mse, opt, loader, train::FitOptions().epochs(10));`
History fit(nn::UnaryModule& model, const Loss& loss, optim::Optimizer& optimizer, const DataLoader& train,
            const FitOptions& options = {});

/// A module fit can call without a Forward: its `forward` takes a batch's inputs and their
/// lengths (a sequence model: `Tensor forward(const Tensor& ids, const nn::Lengths& lengths)`),
/// or the inputs alone (`Tensor forward(const Tensor& x)`). Modules derived from
/// nn::UnaryModule (Sequential, the layers) take the overload above.
template <class M>
concept ForwardModule =
    std::derived_from<M, nn::Module> && !std::derived_from<M, nn::UnaryModule> &&
    (requires(M& m, const Batch& b) {
      { m.forward(b.inputs, b.lengths) } -> std::convertible_to<Tensor>;
    } || requires(M& m, const Batch& b) {
      { m.forward(b.inputs) } -> std::convertible_to<Tensor>;
    });

/// The forward fit's short forms use: `model(inputs)` for a one-in, one-out module;
/// `model.forward(inputs, lengths)` for a module whose forward takes lengths, else
/// `model.forward(inputs)`. Hand it to evaluate and predict.
/// Example: `train::evaluate(model, train::forward_of(model), loss, test_loader, {"accuracy"});`
///@{
Forward forward_of(nn::UnaryModule& model);
template <ForwardModule M>
Forward forward_of(M& model) {
  if constexpr (requires(M& m, const Batch& b) { m.forward(b.inputs, b.lengths); })
    return [&model](const Batch& b) -> Tensor { return model.forward(b.inputs, b.lengths); };
  else
    return [&model](const Batch& b) -> Tensor { return model.forward(b.inputs); };
}
///@}

/// The same for any other module with a forward of its inputs (and lengths): see
/// ForwardModule. Example (a module with `Tensor forward(const Tensor& ids, const nn::Lengths& lengths)`):
///
///     train::fit(classifier, loss, opt, loader, train::FitOptions().epochs(10));
template <ForwardModule M>
History fit(M& model, const Loss& loss, optim::Optimizer& optimizer, const DataLoader& train,
            const FitOptions& options = {}) {
  return fit(model, forward_of(model), loss, optimizer, train, options);
}

/// The loss and metrics over `data`, in eval mode without gradients (the mode is restored).
/// With a process group, over all processes' batches (each process evaluates its share).
/// Example: `double test_loss = train::evaluate(model, train::forward_of(model), loss, test).at("loss");`
Logs evaluate(nn::Module& model, const Forward& forward, const Loss& loss, const DataLoader& data,
              const std::vector<std::string>& metrics = {}, const ProcessGroup* group = nullptr);
/// The predictions for every batch of `data` (epoch 0's order), joined along dimension 0;
/// eval mode, no gradients. Batches must give predictions of one shape but for dimension 0.
/// Example: `Tensor p = train::predict(model, train::forward_of(model), test_loader);  // (N, ...)`
Tensor predict(nn::Module& model, const Forward& forward, const DataLoader& data);

}  // namespace xgrad::train
