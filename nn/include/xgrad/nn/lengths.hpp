#pragma once
/// \file
/// The valid lengths of a padded batch of sequences, and on which side the padding lies.
///
/// A padded batch (T steps) holds sequence b's `len_b` valid steps either first, padding after
/// (`Side::post`: PyTorch's `pad_sequence`, the default here) or last, padding before
/// (`Side::pre`: Keras's `pad_sequences` default). The side travels with the lengths, so every
/// consumer (recurrent layers, `last_step`, the DataLoader's trimming) reads the right steps:
///
///     auto [ids, lengths] = train::pad_sequences(encoded);   // Keras's default: pre-padded
///     auto [out, state] = gru(embedding(ids), {}, lengths);   // reads the last len_b steps
#include <cstdint>
#include <initializer_list>
#include <vector>

#include <xgrad/core/tensor.hpp>

namespace xgrad::nn {

/// A side of a sequence: where padding goes (or, for truncation, which end is cut).
enum class Side {
  pre,   ///< before the sequence: the valid steps of a padded batch are the last len_b
  post,  ///< after the sequence: the valid steps are the first len_b
};

/// The valid length of each sequence of a padded batch, and the side its padding lies on: an
/// i64 tensor (B), a vector or a braced list (padding after, unless `padding` says otherwise).
/// Empty means "every sequence is full length".
/// Example: `gru(x, {}, {5, 2, 4})`,  `gru(x, {}, lengths_tensor)`,  `gru(x, {}, nn::Lengths(v, nn::Side::pre))`
class Lengths {
 public:
  /// Not given: every sequence is full length.
  Lengths() = default;
  /// From an i64 tensor (B) of lengths (implicit, so a tensor passes directly).
  Lengths(const Tensor& lengths, Side padding = Side::post);         // NOLINT: implicit, a tensor passes directly
  /// From one length per sequence, padded on `padding`'s side.
  Lengths(std::vector<std::int64_t> lengths, Side padding = Side::post);  // NOLINT: implicit
  /// From a braced list, padded after: `{5, 2, 4}`.
  Lengths(std::initializer_list<std::int64_t> lengths) : values_(lengths), given_(true) {}
  /// False for the default "all full length".
  bool given() const { return given_; }
  /// One length per sequence (empty when not given).
  const std::vector<std::int64_t>& values() const { return values_; }
  /// Where the padding lies: after each sequence (post) or before it (pre).
  Side padding() const { return padding_; }
  /// Number of sequences (0 when not given).
  std::int64_t size() const { return static_cast<std::int64_t>(values_.size()); }
  /// The first valid step of sequence b in a batch of `steps` steps: 0 when padded after,
  /// steps − len_b when padded before.
  std::int64_t first_step(std::int64_t b, std::int64_t steps) const;
  /// The lengths of the sequences at `indices` (in that order), on the same side.
  Lengths select(const std::vector<std::int64_t>& indices) const;
  /// The lengths as an i64 tensor (B); undefined when not given.
  Tensor tensor() const;
  /// A (B, steps) b8 tensor, true at the padded steps of each sequence (on its padding side):
  /// PyTorch's `key_padding_mask` convention. Throws unless the lengths fit `steps`.
  /// Example: `Tensor pad = nn::Lengths({3, 1}).padding_mask(4);   // [[0,0,0,1], [0,1,1,1]]`
  Tensor padding_mask(std::int64_t steps) const;
  /// The tensor these lengths were read from (undefined when they came from a vector or a
  /// list): an exporter ties the lengths to that model input. Example: `lengths.source()`.
  const Tensor& source() const { return source_; }
  /// Throws unless there is one length per sequence of a batch of `batch` sequences, each in
  /// [min_length, steps]; `what` names the caller in the message.
  void check(const char* what, std::int64_t batch, std::int64_t steps, std::int64_t min_length = 0) const;

 private:
  std::vector<std::int64_t> values_;
  bool given_ = false;
  Side padding_ = Side::post;
  Tensor source_;
};

}  // namespace xgrad::nn
