#pragma once
/// \file
/// Data in batches: Keras's `pad_sequences`, an in-memory dataset and a `DataLoader`
/// that yields ready tensors (padded sequences trimmed to the batch's longest), and sampling
/// from logits.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <xgrad/core/options.hpp>
#include <xgrad/core/tensor.hpp>
#include <xgrad/nn/lengths.hpp>
#include <xgrad/nn/recurrent.hpp>
#include <xgrad/nn/utils.hpp>
#include <xgrad/train/data.hpp>

namespace xgrad::train {

/// Where pad_sequences pads or truncates: before the sequence (Keras's default) or after.
/// The same type as `nn::Side`, which the returned lengths carry.
using nn::Side;

/// Options of pad_sequences, Keras's defaults.
/// Example: `train::PadOptions().maxlen(100).padding(train::Side::post)`
struct PadOptions {
  /// Length of every row; 0 (default) means the longest sequence's.
  XGRAD_ARG(std::int64_t, maxlen) = 0;
  /// Where short sequences are filled: before (pre, Keras's default) or after (post).
  XGRAD_ARG(Side, padding) = Side::pre;
  /// Which end long sequences lose: the start (pre, Keras's default) or the end (post).
  XGRAD_ARG(Side, truncating) = Side::pre;
  /// The id the padding is filled with.
  XGRAD_ARG(std::int64_t, value) = 0;
};

/// Keras's `pad_sequences` for id lists: `padded` is an int64 tensor (N, maxlen), and
/// `lengths` each row's valid length with the padding side, so a recurrent layer, `last_step`
/// and a DataLoader read the right steps whichever side was chosen. Sequences longer than
/// maxlen lose their start (truncating pre, the default) or their end (post); shorter ones
/// are filled with `value` before (padding pre, the default) or after (post).
/// Example:
///
///     auto [ids, lengths] = train::pad_sequences(encoded, train::PadOptions().maxlen(100));  // (N, 100)
///     train::DataLoader loader(train::TensorDataset(ids, labels, lengths));
nn::PaddedSequences pad_sequences(const std::vector<std::vector<std::int64_t>>& sequences,
                                  const PadOptions& options = {});

/// The `lengths` part of pad_sequences with the same options, without the padded ids:
/// min(size, maxlen) per sequence (size when maxlen is 0), on the options' padding side. A
/// negative maxlen throws, as in pad_sequences.
/// Example: `nn::Lengths len = train::sequence_lengths(encoded, train::PadOptions().maxlen(100));`
nn::Lengths sequence_lengths(const std::vector<std::vector<std::int64_t>>& sequences, const PadOptions& options = {});

/// A dataset held in memory: sample i is inputs[i] and targets[i] (along dimension 0), and,
/// for padded sequences (padded along dimension 1 of inputs, on the side `lengths` says), its
/// valid length.
/// Example: `train::TensorDataset data(train::pad_sequences(encoded), labels);`
struct TensorDataset {
  Tensor inputs;        ///< (N, ...): sample i is inputs[i]; (N, T, ...) for sequences
  Tensor targets;       ///< (N, ...): sample i's target is targets[i]
  nn::Lengths lengths;  ///< not given when the samples are not sequences

  /// Checks that the parts agree on the number of samples, naming them when not.
  TensorDataset(Tensor inputs, Tensor targets, nn::Lengths lengths = {});
  /// The padded batch of pad_sequences and its lengths, with `targets`.
  TensorDataset(nn::PaddedSequences sequences, Tensor targets);
  /// The number of samples, N.
  std::int64_t size() const { return inputs.size(0); }
};

/// One batch: the samples' inputs and targets, their indices in the dataset, and for
/// sequences their lengths, with the inputs trimmed to the longest of them (keeping the
/// first columns when padded after, the last when padded before).
struct Batch {
  Tensor inputs;                      ///< (B, ...), the dataset's inputs at `indices` (trimmed)
  Tensor targets;                     ///< (B, ...), the dataset's targets at `indices`
  nn::Lengths lengths;                ///< not given for a dataset without lengths
  std::vector<std::int64_t> indices;  ///< the samples, in batch order
  /// The number of samples, B.
  std::int64_t size() const { return static_cast<std::int64_t>(indices.size()); }
};

/// Options of DataLoader. Example: `train::LoaderOptions().batch_size(64).shuffle(true).seed(1)`
struct LoaderOptions {
  /// Samples per batch (the last batch of an epoch may have fewer).
  XGRAD_ARG(std::int64_t, batch_size) = 32;
  /// Reshuffled every epoch, by (seed, epoch) only: a resumed run sees the same batches.
  XGRAD_ARG(bool, shuffle) = false;
  /// The seed of the shuffle.
  XGRAD_ARG(std::uint64_t, seed) = 0;
  /// Leave out an epoch's last batch when it is smaller than batch_size.
  XGRAD_ARG(bool, drop_last) = false;
  /// Trim a batch of sequences to its longest length (default true; needs lengths): the
  /// padding columns every sequence of the batch has are dropped, on the lengths' side.
  XGRAD_ARG(bool, trim) = true;
};

/// Batches of a TensorDataset, made on demand. The order comes from a Sampler: by default a
/// BatchSampler built from the options; pass another (e.g. a distributed one) to replace it.
/// Example:
///
///     train::DataLoader loader(train::TensorDataset(ids, labels, lengths),
///                              train::LoaderOptions().batch_size(64).shuffle(true));
///     for (std::int64_t epoch = 0; epoch < 10; ++epoch)
///       for (const train::Batch& b : loader.epoch(epoch)) {
///         auto [out, state] = lstm(embedding(b.inputs), {}, b.lengths);  ...
///       }
class DataLoader {
 public:
  /// Batches of `dataset` in the order of a BatchSampler built from `options`.
  DataLoader(TensorDataset dataset, const LoaderOptions& options = {});
  /// Batches of `dataset` in the order `sampler` gives (its batch size and shuffle, not the
  /// options'); `options` still decides trimming.
  DataLoader(TensorDataset dataset, std::shared_ptr<const Sampler> sampler, const LoaderOptions& options = {});

  /// The batches of one epoch, each made when the loop reaches it.
  class Epoch {
   public:
    /// An input iterator over the epoch's batches; dereferencing makes the batch.
    class iterator {
     public:
      /// Batch `i` of `batches` of `loader` (made by begin() and end()).
      iterator(const DataLoader* loader, const std::vector<std::vector<std::int64_t>>* batches, std::size_t i)
          : loader_(loader), batches_(batches), i_(i) {}
      /// The current batch, made now.
      Batch operator*() const { return loader_->batch((*batches_)[i_]); }
      /// The next batch.
      iterator& operator++() { ++i_; return *this; }
      /// Iterators compare by position.
      ///@{
      bool operator!=(const iterator& other) const { return i_ != other.i_; }
      bool operator==(const iterator& other) const { return i_ == other.i_; }
      ///@}

     private:
      const DataLoader* loader_;
      const std::vector<std::vector<std::int64_t>>* batches_;
      std::size_t i_;
    };
    /// The `batches` (lists of sample indices) of `loader` (made by DataLoader::epoch()).
    Epoch(const DataLoader* loader, std::vector<std::vector<std::int64_t>> batches)
        : loader_(loader), batches_(std::move(batches)) {}
    /// The first batch.
    iterator begin() const { return {loader_, &batches_, 0}; }
    /// Past the last batch.
    iterator end() const { return {loader_, &batches_, batches_.size()}; }
    /// The number of batches in the epoch.
    std::size_t size() const { return batches_.size(); }

   private:
    const DataLoader* loader_;
    std::vector<std::vector<std::int64_t>> batches_;
  };

  /// The batches of epoch `epoch`, for a range-for; the order depends only on the sampler
  /// and `epoch`. Example: `for (const train::Batch& b : loader.epoch(e))`
  Epoch epoch(std::int64_t epoch) const { return Epoch(this, sampler_->epoch(epoch)); }
  /// The batch of the given samples.
  Batch batch(const std::vector<std::int64_t>& indices) const;
  /// Batches per epoch.
  std::int64_t num_batches() const { return sampler_->num_batches(); }
  /// Samples per epoch (fewer than the dataset's with drop_last, or on one distributed rank).
  std::int64_t num_samples() const { return sampler_->num_samples(); }
  /// The dataset the batches come from.
  const TensorDataset& dataset() const { return dataset_; }
  /// What decides the batches of each epoch.
  const Sampler& sampler() const { return *sampler_; }
  /// The options it was built with.
  const LoaderOptions& options() const { return options_; }

 private:
  TensorDataset dataset_;
  std::shared_ptr<const Sampler> sampler_;
  LoaderOptions options_;
};

/// The two loaders of validation_split: the samples that train and the ones that validate.
struct SplitLoaders {
  DataLoader train;       ///< the first samples, batched and shuffled as the loader was
  DataLoader validation;  ///< the last samples, in order: never shuffled, none dropped
};

/// Keras's `validation_split`: the dataset of `loader` cut in two in sample order, before any
/// shuffling. The first (1 − fraction) of the samples train, with the loader's options
/// (batch size, shuffle, seed, drop_last, trim); the last `fraction` validate. Throws unless
/// 0 < fraction < 1 and both parts keep at least one sample. (`FitOptions::validation_split`
/// calls it.)
/// Example:
///
///     auto [train_part, val_part] = train::validation_split(loader, 0.2);
///     train::fit(model, loss, opt, train_part, train::FitOptions().validation(&val_part));
SplitLoaders validation_split(const DataLoader& loader, double fraction);

/// Draws one class per row of `logits` ((C) or (B, C)) from softmax(logits / temperature),
/// with core's generator (seeded by manual_seed): an int64 tensor (or (B)). Temperature → 0
/// approaches argmax; temperature > 1 flattens.
/// Example: `std::int64_t next = train::sample_categorical(logits.select(0, -1), 0.8).item<std::int64_t>();`
Tensor sample_categorical(const Tensor& logits, double temperature = 1.0);

}  // namespace xgrad::train
