#pragma once
/// \file
/// Loss functions with PyTorch's semantics, composed from core's primitives.
///
/// Every loss takes a Reduction: `mean` (the default) averages, `sum` adds, `none` returns
/// the per-element losses. Inputs and targets must have the same shape where PyTorch
/// requires it, and also for mse_loss and l1_loss (where PyTorch only warns and broadcasts).
#include <cstdint>

#include <xgrad/core/options.hpp>
#include <xgrad/core/tensor.hpp>

namespace xgrad::nn {

/// How a loss reduces its per-element values.
enum class Reduction { none, mean, sum };

/// Options of cross_entropy. Example:
///
///     nn::CrossEntropyOptions().ignore_index(0).label_smoothing(0.1).reduction(nn::Reduction::sum)
struct CrossEntropyOptions {
  /// Per-class rescaling weight (C), same dtype as the logits; undefined for none.
  XGRAD_ARG(Tensor, weight);
  /// Targets equal to this contribute nothing, neither to the loss nor to the mean's
  /// denominator (default -100). Not used with probability targets.
  XGRAD_ARG(std::int64_t, ignore_index) = -100;
  /// ε in [0, 1]: the target distribution becomes (1-ε)·one_hot + ε/C (default 0).
  XGRAD_ARG(double, label_smoothing) = 0.0;
  /// none: the per-sample losses (N); mean: their weighted mean; sum: their sum.
  XGRAD_ARG(Reduction, reduction) = Reduction::mean;
};

/// Options of nll_loss: weight, ignore_index and reduction as for cross_entropy.
/// Example: `nn::NLLLossOptions().ignore_index(-1)`
struct NLLLossOptions {
  /// Per-class rescaling weight (C); undefined for none.
  XGRAD_ARG(Tensor, weight);
  /// Targets equal to this contribute nothing (default -100).
  XGRAD_ARG(std::int64_t, ignore_index) = -100;
  /// none: the per-sample losses (N); mean: their weighted mean; sum: their sum.
  XGRAD_ARG(Reduction, reduction) = Reduction::mean;
};

/// Options of binary_cross_entropy_with_logits.
/// Example: `nn::BCEWithLogitsOptions().pos_weight(full({3}, 2.0)).reduction(nn::Reduction::sum)`
struct BCEWithLogitsOptions {
  /// Per-element rescaling, broadcast to the input's shape.
  XGRAD_ARG(Tensor, weight);
  /// Weight of the positive term, broadcast along the last dimension (one per class).
  XGRAD_ARG(Tensor, pos_weight);
  /// none: the per-element losses (input's shape); mean or sum over all of them.
  XGRAD_ARG(Reduction, reduction) = Reduction::mean;
};

/// Mean squared error: (input - target)², reduced. Shapes must match.
/// Example: `Tensor loss = nn::mse_loss(model(x), y);`
Tensor mse_loss(const Tensor& input, const Tensor& target, Reduction reduction = Reduction::mean);

/// Mean absolute error: |input - target|, reduced. Shapes must match.
/// Example: `Tensor loss = nn::l1_loss(pred, y, nn::Reduction::sum);`
Tensor l1_loss(const Tensor& input, const Tensor& target, Reduction reduction = Reduction::mean);

/// Negative log-likelihood of log-probabilities `input` (N, C) or (N, C, d...) (or (C)) at
/// the i64 class indices `target` (N) or (N, d...) (or ()): −weight[t]·input[n, t]; the mean
/// divides by the summed weights of the non-ignored targets (their count without weights).
/// Example: `Tensor loss = nn::nll_loss(log_softmax(logits, 1), labels);`
Tensor nll_loss(const Tensor& input, const Tensor& target, const NLLLossOptions& options = {});

/// Softmax cross entropy of raw `logits` (N, C) or (N, C, d...) (or (C)) with either
/// - i64 class indices `target` (N) or (N, d...): ignore_index, weight and label_smoothing
///   as PyTorch 1.13 — the smoothing term −Σ_c w_c·log p_c is zero at ignored targets and
///   the mean divides both terms by the summed weights of the non-ignored targets; or
/// - class probabilities `target` of the logits' shape and dtype (mean divides by N·d…).
/// Example:
///
///     Tensor loss = nn::cross_entropy(logits, labels);
///     Tensor smooth = nn::cross_entropy(logits, labels, nn::CrossEntropyOptions().label_smoothing(0.1));
Tensor cross_entropy(const Tensor& logits, const Tensor& target, const CrossEntropyOptions& options = {});

/// Binary cross entropy of raw logits against targets in [0, 1] of the same shape:
/// (1 - t)·x + (1 + (pos_weight - 1)·t)·softplus(−x), times weight, reduced. Stable for
/// logits of any magnitude (no sigmoid is taken).
/// Example: `Tensor loss = nn::binary_cross_entropy_with_logits(logits, targets);`
Tensor binary_cross_entropy_with_logits(const Tensor& input, const Tensor& target,
                                        const BCEWithLogitsOptions& options = {});

}  // namespace xgrad::nn
