#pragma once
/// \file
/// Metrics that stream over the batches of an epoch: each batch adds its sum and its
/// count, so the value is exact over the whole epoch whatever the batch sizes (Keras's
/// metrics, which `fit` reports), and sums from several processes add up.
#include <cstdint>
#include <memory>
#include <string>

#include <xgrad/core/tensor.hpp>

namespace xgrad::train {

/// Base of the metrics: value = finish(sum / count) over everything added since reset().
/// Example:
///
///     train::Accuracy accuracy;
///     for (const auto& b : loader.epoch(0)) accuracy.update(model(b.inputs), b.targets);
///     fmt::print("{} {:.3f}\n", accuracy.name(), accuracy.value());
class Metric {
 public:
  virtual ~Metric() = default;
  /// Keras's name ("accuracy", "mae", ...), used in logs and History.
  virtual std::string name() const = 0;
  /// Adds one batch of model outputs and targets (no gradient is recorded).
  void update(const Tensor& predictions, const Tensor& targets);
  /// The metric over every batch since the last reset(); throws when nothing was added.
  double value() const;
  /// Forgets every batch (at the start of an epoch).
  void reset() { sum_ = 0.0, count_ = 0.0; }
  /// The running sum and count, and adding another's (a reduction across processes).
  ///@{
  double sum() const { return sum_; }
  double count() const { return count_; }
  void add(double sum, double count) { sum_ += sum, count_ += count; }
  ///@}

 protected:
  /// One batch's contribution: value() is finish(Σ sum / Σ count) over the batches.
  struct Part {
    double sum;    ///< e.g. the number of correct predictions, or the summed error
    double count;  ///< e.g. the number of predictions
  };
  /// One batch's contribution; predictions and targets are detached.
  virtual Part measure(const Tensor& predictions, const Tensor& targets) const = 0;
  /// The value from the mean sum per count (identity by default).
  virtual double finish(double mean) const { return mean; }

 private:
  double sum_ = 0.0, count_ = 0.0;
};

/// Multi-class accuracy: predictions (B, C) of logits or probabilities (the argmax is the
/// prediction), targets (B) int64 class ids. Keras's `accuracy` with sparse labels.
class Accuracy : public Metric {
 public:
  std::string name() const override { return "accuracy"; }

 protected:
  Part measure(const Tensor& predictions, const Tensor& targets) const override;
};

/// Binary accuracy: predictions of any shape (or (B, 1) for targets (B)); a prediction is
/// positive when its probability exceeds `threshold`, from logits by default (σ(logit) >
/// threshold) or from probabilities; targets 0 / 1 in any dtype.
class BinaryAccuracy : public Metric {
 public:
  /// `from_logits`: predictions are logits (else probabilities); `threshold` in (0, 1).
  explicit BinaryAccuracy(bool from_logits = true, double threshold = 0.5);
  std::string name() const override { return "binary_accuracy"; }

 protected:
  Part measure(const Tensor& predictions, const Tensor& targets) const override;

 private:
  bool from_logits_;
  double threshold_;
};

/// Mean absolute error over every element (shapes must match).
class MeanAbsoluteError : public Metric {
 public:
  std::string name() const override { return "mae"; }

 protected:
  Part measure(const Tensor& predictions, const Tensor& targets) const override;
};

/// Root mean squared error over every element of the epoch (the root of the epoch's mean,
/// not a mean of batch roots).
class RootMeanSquaredError : public Metric {
 public:
  std::string name() const override { return "rmse"; }

 protected:
  Part measure(const Tensor& predictions, const Tensor& targets) const override;
  double finish(double mean) const override;
};

/// Bits per character: the cross entropy of logits (..., C) against int64 ids (...), in
/// bits, averaged over every position.
class BitsPerCharacter : public Metric {
 public:
  std::string name() const override { return "bpc"; }

 protected:
  Part measure(const Tensor& predictions, const Tensor& targets) const override;
  double finish(double mean) const override;
};

/// A metric by its Keras name: "accuracy", "binary_accuracy", "mae", "rmse", "bpc" (what
/// `FitOptions::metrics` and `evaluate` take); throws naming the known ones otherwise.
/// Example: `std::unique_ptr<train::Metric> acc = train::make_metric("accuracy");`
std::unique_ptr<Metric> make_metric(const std::string& name);

}  // namespace xgrad::train
