// Streaming metrics: each batch adds (sum, count); the value is finish(sum / count).
#include <xgrad/train/metrics.hpp>

#include <cmath>
#include <numbers>

#include <fmt/format.h>

#include <xgrad/core/autograd.hpp>
#include <xgrad/core/error.hpp>
#include <xgrad/core/ops.hpp>
#include <xgrad/nn/loss.hpp>

namespace xgrad::train {

namespace {

void require_same_count(const std::string& metric, const Tensor& predictions, const Tensor& targets) {
  if (predictions.numel() != targets.numel())
    throw Error(fmt::format("{}: predictions of shape {} and targets of shape {} hold different numbers of values",
                            metric, shape_str(predictions.shape()), shape_str(targets.shape())));
}

double total(const Tensor& t) { return t.to(DType::f64).sum().item(); }

}  // namespace

void Metric::update(const Tensor& predictions, const Tensor& targets) {
  if (!predictions.defined() || !targets.defined())
    throw Error(name() + ": update needs defined predictions and targets");
  NoGradGuard no_grad;
  const Part part = measure(predictions.detach(), targets.detach());
  add(part.sum, part.count);
}

double Metric::value() const {
  if (count_ == 0.0) throw Error(name() + ": no batch was added since the last reset()");
  return finish(sum_ / count_);
}

Metric::Part Accuracy::measure(const Tensor& predictions, const Tensor& targets) const {
  if (predictions.dim() != 2 || targets.dim() != 1 || predictions.size(0) != targets.size(0) ||
      targets.dtype() != DType::i64)
    throw Error(fmt::format("accuracy: expected predictions (B, C) and int64 targets (B), got {} and {} {}",
                            shape_str(predictions.shape()), shape_str(targets.shape()), dtype_name(targets.dtype())));
  return {total(eq(argmax(predictions, 1), targets)), static_cast<double>(targets.numel())};
}

BinaryAccuracy::BinaryAccuracy(bool from_logits, double threshold) : from_logits_(from_logits), threshold_(threshold) {
  if (!(threshold > 0.0 && threshold < 1.0))
    throw Error(fmt::format("binary_accuracy: threshold must be in (0, 1), got {}", threshold));
}

Metric::Part BinaryAccuracy::measure(const Tensor& predictions, const Tensor& targets) const {
  require_same_count("binary_accuracy", predictions, targets);
  // σ(z) > t  ⇔  z > ln(t / (1 − t)).
  const double cut = from_logits_ ? std::log(threshold_ / (1.0 - threshold_)) : threshold_;
  const Tensor predicted = gt(predictions.reshape({-1}).to(DType::f64), cut);
  const Tensor actual = gt(targets.reshape({-1}).to(DType::f64), 0.5);
  return {total(eq(predicted.to(DType::f64), actual.to(DType::f64))), static_cast<double>(targets.numel())};
}

Metric::Part MeanAbsoluteError::measure(const Tensor& predictions, const Tensor& targets) const {
  if (predictions.shape() != targets.shape())
    throw Error(fmt::format("mae: predictions {} and targets {} differ in shape", shape_str(predictions.shape()),
                            shape_str(targets.shape())));
  return {total(abs(predictions.to(DType::f64) - targets.to(DType::f64))), static_cast<double>(targets.numel())};
}

Metric::Part RootMeanSquaredError::measure(const Tensor& predictions, const Tensor& targets) const {
  if (predictions.shape() != targets.shape())
    throw Error(fmt::format("rmse: predictions {} and targets {} differ in shape", shape_str(predictions.shape()),
                            shape_str(targets.shape())));
  const Tensor d = predictions.to(DType::f64) - targets.to(DType::f64);
  return {total(d * d), static_cast<double>(targets.numel())};
}

double RootMeanSquaredError::finish(double mean) const { return std::sqrt(mean); }

Metric::Part BitsPerCharacter::measure(const Tensor& predictions, const Tensor& targets) const {
  if (predictions.dim() < 1 || targets.dtype() != DType::i64 || predictions.numel() == 0 ||
      predictions.numel() / predictions.size(-1) != targets.numel())
    throw Error(fmt::format("bpc: expected logits (..., C) and int64 ids (...), got {} and {} {}",
                            shape_str(predictions.shape()), shape_str(targets.shape()), dtype_name(targets.dtype())));
  const Tensor logits = predictions.reshape({-1, predictions.size(-1)}).to(DType::f64);
  const Tensor nats = nn::cross_entropy(logits, targets.reshape({-1}), nn::CrossEntropyOptions().reduction(nn::Reduction::sum));
  return {nats.item(), static_cast<double>(targets.numel())};
}

double BitsPerCharacter::finish(double mean) const { return mean / std::numbers::ln2; }

std::unique_ptr<Metric> make_metric(const std::string& name) {
  if (name == "accuracy") return std::make_unique<Accuracy>();
  if (name == "binary_accuracy") return std::make_unique<BinaryAccuracy>();
  if (name == "mae") return std::make_unique<MeanAbsoluteError>();
  if (name == "rmse") return std::make_unique<RootMeanSquaredError>();
  if (name == "bpc") return std::make_unique<BitsPerCharacter>();
  throw Error("make_metric: unknown metric '" + name + "' (accuracy, binary_accuracy, mae, rmse, bpc)");
}

}  // namespace xgrad::train
