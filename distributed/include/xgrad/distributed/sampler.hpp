#pragma once
/// \file
/// Each rank's share of a dataset, for train::DataLoader and train::fit.
#include <cstdint>
#include <vector>

#include <xgrad/core/options.hpp>
#include <xgrad/train/data.hpp>

namespace xgrad::distributed {

/// Options of DistributedSampler; rank and world size default to this process's.
/// Example: `distributed::DistributedSamplerOptions().batch_size(16).shuffle(true).seed(1)`
struct DistributedSamplerOptions {
  /// Samples per batch on each rank (the global batch is world_size times larger).
  XGRAD_ARG(std::int64_t, batch_size) = 32;
  /// Reshuffled every epoch by (seed, epoch) only, identically on every rank.
  XGRAD_ARG(bool, shuffle) = false;
  /// The seed of the shuffle; the same on every rank.
  XGRAD_ARG(std::uint64_t, seed) = 0;
  /// Equal shares for training: when the samples don't divide by the world size, repeat the
  /// first ones (default) or, with drop_last, leave the last ones out. For evaluation, turn
  /// both off (`even(false)`): shares differ by at most one sample and nothing repeats.
  ///@{
  XGRAD_ARG(bool, drop_last) = false;
  XGRAD_ARG(bool, even) = true;
  ///@}
  /// For tests and launchers that don't use MPI's own numbering (-1: distributed::rank() / world_size()).
  ///@{
  XGRAD_ARG(int, rank) = -1;
  XGRAD_ARG(int, world_size) = -1;
  ///@}
};

/// Cuts each epoch's order of 0..n-1 (train::BatchSampler's order for the same seed) into
/// world_size interleaved shares, as PyTorch's DistributedSampler: rank r takes samples
/// r, r + W, r + 2W, ... of the order, then batches them. So batch k of all ranks together is
/// exactly batch k of one process with a batch W times larger: N ranks on B/N equal one
/// process on B. Every rank runs the same number of batches (unless even(false)).
/// Example:
///
///     train::DataLoader loader(dataset, std::make_shared<distributed::DistributedSampler>(
///         dataset.size(), distributed::DistributedSamplerOptions().batch_size(16).shuffle(true)));
class DistributedSampler : public train::Sampler {
 public:
  /// Shares of a dataset of `n` samples; throws for a rank outside [0, world_size).
  DistributedSampler(std::int64_t n, const DistributedSamplerOptions& options = {});

  std::vector<std::vector<std::int64_t>> epoch(std::int64_t epoch) const override;
  std::int64_t num_batches() const override;
  std::int64_t num_samples() const override;  ///< this rank's, per epoch
  /// The rank whose share this sampler gives.
  int rank() const { return rank_; }
  /// The number of shares.
  int world_size() const { return world_; }

 private:
  std::int64_t n_, batch_;
  bool shuffle_, drop_last_, even_;
  std::uint64_t seed_;
  int rank_, world_;
};

}  // namespace xgrad::distributed
