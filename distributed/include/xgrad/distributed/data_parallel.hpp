#pragma once
/// \file
/// Data-parallel training: every rank runs the same model on its own share of each batch,
/// and after backward every rank holds the mean of all ranks' gradients (PyTorch's
/// DistributedDataParallel, for C++ training scripts).
///
/// Example (`mpirun -np 4 ./train`; each rank reads a quarter of every batch):
///
///     distributed::Context mpi(argc, argv);
///     nn::LSTM lstm(nn::LSTMOptions(8, 64));
///     distributed::DataParallel ddp(lstm);               // rank 0's weights everywhere, hooks set
///     optim::Adam opt(lstm.parameters(), optim::AdamOptions(1e-3));
///     for (...) {
///       opt.zero_grad();
///       loss(lstm, local_batch).backward();       // gradients averaged while backward runs
///       opt.step();                               // the same step on every rank
///     }
#include <cstdint>
#include <memory>

#include <xgrad/core/options.hpp>
#include <xgrad/nn/module.hpp>

namespace xgrad::distributed {

/// Options of DataParallel. Example: `distributed::DataParallelOptions().bucket_cap_mb(4)`
struct DataParallelOptions {
  /// Gradients travel in buckets of about this many megabytes (PyTorch's default, 25).
  XGRAD_ARG(double, bucket_cap_mb) = 25.0;
  /// Start each bucket's allreduce as soon as backward has produced its gradients (default),
  /// or all of them after backward (to measure what the overlap hides).
  XGRAD_ARG(bool, overlap) = true;
};

/// Makes `model` train data-parallel across the ranks of the job. At construction it checks
/// that every rank's model has the same parameters (names, shapes, dtypes, requires_grad) and
/// buffers and that every rank passed the same bucket_cap_mb (otherwise every rank throws an
/// error naming the first difference), and copies rank 0's values to every rank. Then, in every backward pass,
/// each parameter's gradient joins a bucket as soon as it is complete (a post-accumulate
/// hook); a full bucket's non-blocking allreduce starts at once, in bucket order on every
/// rank, so communication overlaps the rest of backward; when backward ends, every gradient is
/// the mean over the ranks.
///
/// A parameter that gets no gradient on a rank in a pass contributes the gradient it already
/// holds (zero when it has none); one that has no gradient on any rank keeps none, so the
/// optimizer skips it as it would in one process. Every rank must run backward the same
/// number of times (DistributedSampler gives each rank the same number of batches): before
/// anyone waits for a gradient, the ranks check that they end the same pass, and a rank with a
/// batch more, or one that skipped a pass whose backward threw, ends the job with a message
/// naming every rank's step (see distributed::Context).
///
/// The model must outlive this object, which removes its hooks when destroyed.
class DataParallel {
 public:
  /// Checks `model` against every rank's, copies rank 0's values and registers the gradient
  /// hooks; every rank must construct it at the same point.
  explicit DataParallel(nn::Module& model, const DataParallelOptions& options = {});
  ~DataParallel();
  DataParallel(const DataParallel&) = delete;
  DataParallel& operator=(const DataParallel&) = delete;

  /// The wrapped model.
  nn::Module& module() { return model_; }

  /// While the returned guard lives, backward accumulates gradients on each rank without
  /// communicating (gradient accumulation); the first backward after it averages everything
  /// accumulated. Example: `{ auto guard = ddp.no_sync(); loss1.backward(); } loss2.backward();`
  class NoSync {
   public:
    /// Suspends `ddp`'s synchronisation until destroyed.
    explicit NoSync(DataParallel& ddp);
    ~NoSync();
    NoSync(const NoSync&) = delete;
    NoSync& operator=(const NoSync&) = delete;

   private:
    DataParallel& ddp_;
    bool previous_;
  };
  /// A NoSync guard for this object.
  NoSync no_sync() { return NoSync(*this); }

  /// Copies rank 0's buffers (e.g. running statistics) to every rank.
  void broadcast_buffers();

  /// Where the time went in the last synchronised backward: seconds spent waiting for
  /// allreduces after backward had finished (communication not hidden), and the number of
  /// buckets.
  struct Stats {
    double wait_seconds = 0;                  ///< waiting after backward, seconds
    std::int64_t buckets = 0;                 ///< buckets reduced
    std::int64_t buckets_launched_early = 0;  ///< started while backward was still running
  };
  /// The Stats of the last synchronised backward pass (zeros before the first).
  const Stats& last_stats() const;

 private:
  struct State;
  nn::Module& model_;
  bool sync_ = true;
  std::unique_ptr<State> state_;
};

}  // namespace xgrad::distributed
