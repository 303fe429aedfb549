// DistributedSampler: one epoch order for all ranks, cut into interleaved shares.
#include <xgrad/distributed/sampler.hpp>

#include <algorithm>
#include <string>

#include <xgrad/distributed/process.hpp>

namespace xgrad::distributed {

DistributedSampler::DistributedSampler(std::int64_t n, const DistributedSamplerOptions& o)
    : n_(n), batch_(o.batch_size()), shuffle_(o.shuffle()), drop_last_(o.drop_last()), even_(o.even()), seed_(o.seed()),
      rank_(o.rank() >= 0 ? o.rank() : distributed::rank()), world_(o.world_size() >= 0 ? o.world_size() : distributed::world_size()) {
  const std::string what = "distributed::DistributedSampler: ";
  if (n < 0) throw Error(what + "the dataset size must not be negative, got " + std::to_string(n));
  if (batch_ <= 0) throw Error(what + "batch_size must be positive, got " + std::to_string(batch_));
  if (world_ <= 0) throw Error(what + "world_size must be positive, got " + std::to_string(world_));
  if (rank_ >= world_)
    throw Error(what + "rank " + std::to_string(rank_) + " is not below the world size " + std::to_string(world_));
  if (drop_last_ && !even_) throw Error(what + "drop_last makes even shares; it cannot be combined with even(false)");
}

std::int64_t DistributedSampler::num_samples() const {
  if (!even_) return n_ / world_ + (rank_ < n_ % world_ ? 1 : 0);
  if (drop_last_) return n_ / world_;
  return n_ == 0 ? 0 : (n_ + world_ - 1) / world_;
}

std::int64_t DistributedSampler::num_batches() const { return (num_samples() + batch_ - 1) / batch_; }

std::vector<std::vector<std::int64_t>> DistributedSampler::epoch(std::int64_t epoch) const {
  std::vector<std::vector<std::int64_t>> batches;
  if (n_ == 0) return batches;
  // The order of one process's BatchSampler with the same seed, as a single batch.
  const std::vector<std::int64_t> order = train::BatchSampler(n_, n_, shuffle_, seed_).epoch(epoch).front();
  const std::int64_t total = even_ ? num_samples() * world_ : n_;
  std::vector<std::int64_t> mine;
  mine.reserve(static_cast<std::size_t>(num_samples()));
  for (std::int64_t i = rank_; i < total; i += world_) mine.push_back(order[static_cast<std::size_t>(i % n_)]);
  for (std::size_t from = 0; from < mine.size(); from += static_cast<std::size_t>(batch_))
    batches.emplace_back(mine.begin() + static_cast<std::ptrdiff_t>(from),
                         mine.begin() + static_cast<std::ptrdiff_t>(std::min(mine.size(), from + static_cast<std::size_t>(batch_))));
  return batches;
}

}  // namespace xgrad::distributed
