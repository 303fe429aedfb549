#pragma once
/// \file Each rank's share of a dataset, for train::DataLoader and train::fit.
#include <cstdint>
#include <vector>

#include <xgrad/train/data.hpp>

namespace xgrad::dist {

/// Options of DistributedSampler; rank and world size default to this process's.
/// Example: `dist::DistributedSamplerOptions().batch_size(16).shuffle(true).seed(1)`
struct DistributedSamplerOptions {
  /// Samples per batch on each rank (the global batch is world_size times larger).
  DistributedSamplerOptions& batch_size(std::int64_t v) { batch_size_ = v; return *this; }
  /// Reshuffled every epoch by (seed, epoch) only, identically on every rank.
  DistributedSamplerOptions& shuffle(bool v) { shuffle_ = v; return *this; }
  DistributedSamplerOptions& seed(std::uint64_t v) { seed_ = v; return *this; }
  /// Equal shares for training: when the samples don't divide by the world size, repeat the
  /// first ones (default) or, with drop_last, leave the last ones out. For evaluation, turn
  /// both off (`even(false)`): shares differ by at most one sample and nothing repeats.
  DistributedSamplerOptions& drop_last(bool v) { drop_last_ = v; return *this; }
  DistributedSamplerOptions& even(bool v) { even_ = v; return *this; }
  /// For tests and launchers that don't use MPI's own numbering (-1: dist::rank() / world_size()).
  DistributedSamplerOptions& rank(int v) { rank_ = v; return *this; }
  DistributedSamplerOptions& world_size(int v) { world_size_ = v; return *this; }

  std::int64_t batch_size_ = 32;
  bool shuffle_ = false;
  std::uint64_t seed_ = 0;
  bool drop_last_ = false;
  bool even_ = true;
  int rank_ = -1, world_size_ = -1;
};

/// Cuts each epoch's order of 0..n-1 (train::BatchSampler's order for the same seed) into
/// world_size interleaved shares, as PyTorch's DistributedSampler: rank r takes samples
/// r, r + W, r + 2W, ... of the order, then batches them. So batch k of all ranks together is
/// exactly batch k of one process with a batch W times larger: N ranks on B/N equal one
/// process on B. Every rank runs the same number of batches (unless even(false)).
/// Example:
///     train::DataLoader loader(dataset, std::make_shared<dist::DistributedSampler>(
///         dataset.size(), dist::DistributedSamplerOptions().batch_size(16).shuffle(true)));
class DistributedSampler : public train::Sampler {
 public:
  DistributedSampler(std::int64_t n, const DistributedSamplerOptions& options = {});

  std::vector<std::vector<std::int64_t>> epoch(std::int64_t epoch) const override;
  std::int64_t num_batches() const override;
  std::int64_t num_samples() const override;  ///< this rank's, per epoch
  int rank() const { return rank_; }
  int world_size() const { return world_; }

 private:
  std::int64_t n_, batch_;
  bool shuffle_, drop_last_, even_;
  std::uint64_t seed_;
  int rank_, world_;
};

}  // namespace xgrad::dist
