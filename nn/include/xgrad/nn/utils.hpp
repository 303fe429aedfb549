#pragma once
/// \file
/// Training utilities: gradient clipping and padding variable-length sequences.
#include <limits>
#include <vector>

#include <xgrad/core/tensor.hpp>
#include <xgrad/nn/lengths.hpp>

namespace xgrad::nn {

/// Scales the gradients of `parameters` in place so that their joint norm is at most
/// `max_norm`, and returns the joint norm before clipping (PyTorch's
/// clip_grad_norm_): the `norm_type`-norm of all gradient elements taken together
/// (`std::numeric_limits<double>::infinity()` for the max norm). Every gradient is multiplied
/// by min(1, max_norm / (total + 1e-6)). Parameters without a gradient are skipped; with
/// none at all, returns 0. With `error_if_nonfinite`, a NaN or infinite norm throws.
/// Example:
///
///     loss.backward();
///     double norm = nn::clip_grad_norm(model.parameters(), 1.0);
double clip_grad_norm(const std::vector<Tensor>& parameters, double max_norm, double norm_type = 2.0,
                      bool error_if_nonfinite = false);

/// Clamps every gradient element of `parameters` to [-clip_value, clip_value] in place.
/// Example: `nn::clip_grad_value(model.parameters(), 0.5);`
void clip_grad_value(const std::vector<Tensor>& parameters, double clip_value);

/// What every pad_sequences returns (this one and `train::pad_sequences` for id lists): the
/// padded batch and each sequence's length with the side its padding lies on, ready for a
/// recurrent layer, `last_step` or a `train::TensorDataset`.
struct PaddedSequences {
  Tensor padded;    ///< (B, T, ...) if batch-first, else (T, B, ...)
  Lengths lengths;  ///< one per sequence; `lengths.padding()` says where the padding is
};

/// Stacks sequences of shapes (L_i, ...) (same trailing shape and dtype) into one batch,
/// padding each to the longest with `padding_value`, after the sequence (`Side::post`, the
/// default, PyTorch's `pad_sequence`) or before it (`Side::pre`). Differentiable with
/// respect to the sequences.
/// Example:
///
///     auto [x, lengths] = nn::pad_sequences({randn({5, 3}), randn({2, 3})}, true);
///     // x (2, 5, 3), lengths = [5, 2] (post); feed both to a recurrent layer
PaddedSequences pad_sequences(const std::vector<Tensor>& sequences, bool batch_first = false,
                              double padding_value = 0.0, Side padding = Side::post);

/// One-hot rows: ids (any shape, int64, each in [0, num_classes)) → (..., num_classes) of
/// `dtype`, 1 at each id. Keras's `to_categorical`, and the one-hot input of the tutorial's
/// second model. Example: `Tensor x = nn::one_hot(ids, 500);   // (B, T) → (B, T, 500)`
Tensor one_hot(const Tensor& ids, std::int64_t num_classes, DType dtype = DType::f32);

}  // namespace xgrad::nn
