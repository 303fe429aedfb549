#include <xgrad/nn/utils.hpp>

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include <xgrad/core/autograd.hpp>
#include <xgrad/core/creation.hpp>
#include <xgrad/core/ops.hpp>

namespace xgrad::nn {

double clip_grad_norm(const std::vector<Tensor>& parameters, double max_norm, double norm_type,
                      bool error_if_nonfinite) {
  if (!(norm_type > 0.0)) throw Error(fmt::format("clip_grad_norm: norm_type must be positive, got {}", norm_type));
  std::vector<Tensor> grads;
  for (const auto& p : parameters)
    if (p.defined() && p.grad().defined()) grads.push_back(p.grad());
  if (grads.empty()) return 0.0;

  // The norm of the per-tensor norms equals the norm over all elements; accumulate in double.
  const bool inf_norm = std::isinf(norm_type);
  double total = 0.0;
  for (const auto& g : grads)
    for (double v : g.to_vector<double>()) {
      const double a = std::abs(v);
      if (inf_norm) total = std::isnan(a) || std::isnan(total) ? NAN : std::max(total, a);
      else if (norm_type == 2.0) total += a * a;
      else if (norm_type == 1.0) total += a;
      else total += std::pow(a, norm_type);
    }
  if (!inf_norm) total = norm_type == 2.0 ? std::sqrt(total) : norm_type == 1.0 ? total : std::pow(total, 1.0 / norm_type);
  if (error_if_nonfinite && !std::isfinite(total))
    throw Error(fmt::format("clip_grad_norm: the total norm of order {} of the gradients is non-finite ({})", norm_type,
                            total));

  const double coef = std::min(1.0, max_norm / (total + 1e-6));
  NoGradGuard no_grad;
  for (auto& g : grads) g.mul_(coef);
  return total;
}

void clip_grad_value(const std::vector<Tensor>& parameters, double clip_value) {
  if (!(clip_value >= 0.0)) throw Error(fmt::format("clip_grad_value: clip_value must be non-negative, got {}", clip_value));
  NoGradGuard no_grad;
  for (const auto& p : parameters)
    if (p.defined() && p.grad().defined()) {
      Tensor g = p.grad();
      g.copy_(clamp(g, -clip_value, clip_value));
    }
}

PaddedSequences pad_sequences(const std::vector<Tensor>& sequences, bool batch_first, double padding_value,
                              Side padding) {
  if (sequences.empty()) throw Error("pad_sequences: needs at least one sequence");
  const Tensor& first = sequences.front();
  if (!first.defined() || first.dim() == 0)
    throw Error("pad_sequences: sequences need a time dimension, got " +
                (first.defined() ? shape_str(first.shape()) : std::string("an undefined tensor")));
  const Shape trailing(first.shape().begin() + 1, first.shape().end());
  std::int64_t longest = 0;
  std::vector<std::int64_t> lengths;
  for (std::size_t i = 0; i < sequences.size(); ++i) {
    const Tensor& s = sequences[i];
    if (!s.defined() || s.dim() == 0 || Shape(s.shape().begin() + 1, s.shape().end()) != trailing ||
        s.dtype() != first.dtype())
      throw Error(fmt::format("pad_sequences: sequence {} is {} {}; every sequence needs trailing shape {} and "
                              "dtype {}, as sequence 0", i, s.defined() ? dtype_name(s.dtype()) : "undefined",
                              s.defined() ? shape_str(s.shape()) : "", shape_str(trailing), dtype_name(first.dtype())));
    lengths.push_back(s.size(0));
    longest = std::max(longest, s.size(0));
  }
  std::vector<Tensor> padded;
  for (const auto& s : sequences) {
    if (s.size(0) == longest) {
      padded.push_back(s);
      continue;
    }
    Shape pad_shape = trailing;
    pad_shape.insert(pad_shape.begin(), longest - s.size(0));
    const Tensor pad = full(pad_shape, padding_value, s.dtype());
    padded.push_back(padding == Side::post ? cat({s, pad}, 0) : cat({pad, s}, 0));  // (T_max, ...)
  }
  return {stack(padded, batch_first ? 0 : 1), Lengths(std::move(lengths), padding)};
}

Tensor one_hot(const Tensor& ids, std::int64_t num_classes, DType dtype) {
  if (!ids.defined() || ids.dtype() != DType::i64)
    throw Error("one_hot: expected int64 ids, got " +
                (ids.defined() ? std::string(dtype_name(ids.dtype())) : std::string("an undefined tensor")));
  if (num_classes <= 0) throw Error("one_hot: num_classes must be positive, got " + std::to_string(num_classes));
  for (std::int64_t id : ids.to_vector<std::int64_t>())
    if (id < 0 || id >= num_classes)
      throw Error("one_hot: id " + std::to_string(id) + " is outside [0, " + std::to_string(num_classes) + ")");
  return eq(unsqueeze(ids, -1), arange(num_classes)).to(dtype);
}

}  // namespace xgrad::nn
