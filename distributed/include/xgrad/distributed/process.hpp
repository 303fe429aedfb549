#pragma once
/// \file
/// Processes that train together over MPI: start-up and shut-down, rank and size, and
/// collectives on tensors. The module is optional (built when CMake finds MPI); MPI itself
/// stays behind it, as xtensor stays behind core: no public header includes <mpi.h>.
///
/// Example (run with `mpirun -np 2 ./train`):
///
///     int main(int argc, char** argv) {
///       distributed::Context mpi(argc, argv);
///       Tensor t = full({3}, distributed::rank());
///       distributed::all_reduce(t, distributed::ReduceOp::sum);   // 0 + 1 + ... on every rank
///     }
#include <string>

#include <xgrad/core/tensor.hpp>

namespace xgrad::distributed {

/// Starts MPI for this process and finalises it when destroyed; one per process, in main. A
/// program started without mpirun is a job of one process.
///
/// A failure on one rank ends the whole job rather than leaving the others waiting forever in
/// a collective: an exception that escapes main prints "xgrad.distributed: rank R failed: <message>"
/// and aborts the job (MPI_Abort, exit code 1); one that unwinds past the Context (caught
/// further out, in main) ends the job with code 1 when the process exits.
///
/// Ranks out of step never hang either. Before every call the ranks make together (the
/// collectives below, distributed::process_group's reductions, DataParallel's construction and the end
/// of each of its backward passes, and the end of the Context: its destructor waits for every
/// rank to end) each rank tells the others what it is about to do. When they differ (a rank
/// with a batch more, one that skipped a backward pass that threw, one that returned from main
/// while the others train) every rank prints every rank's step ("xgrad.distributed: rank R: the ranks
/// are out of step: rank 0 is at the end of backward pass 3 ...; rank 1 is at the end of its
/// distributed::Context") and the job ends with code 1. A rank that waits longer than distributed::timeout()
/// for the others (stuck outside xgrad's calls) ends the job too.
class Context {
 public:
  /// Initialises MPI with main's arguments (MPI may remove its own from them); throws when a
  /// Context is already alive.
  Context(int& argc, char**& argv);
  ~Context();
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

 private:
  bool owns_ = false;  // false when MPI was already running (someone else finalises it)
};

/// The same as a Context, by the name MPI users know: `auto mpi = distributed::init(argc, argv);`
[[nodiscard]] inline Context init(int& argc, char**& argv) { return Context(argc, argv); }

/// True between a Context's start and its end.
bool initialized();
/// This process's rank, 0 .. world_size() - 1; throws unless a Context is alive.
int rank();
/// The number of processes in the job (1 without mpirun); throws unless a Context is alive.
int world_size();
/// Returns on every rank once all ranks have called it.
void barrier();
/// How long a rank waits for the others at a call they make together before it ends the job,
/// in seconds (default 600, or the environment's XGRAD_DISTRIBUTED_TIMEOUT when the Context starts).
/// Example: `distributed::set_timeout(1800);  // rank 0 alone evaluates for up to half an hour`
///@{
void set_timeout(double seconds);
double timeout();
///@}
/// Prints "xgrad.distributed: rank R: <message>" on stderr and ends every process of the job.
[[noreturn]] void abort(const std::string& message, int code = 1);

/// How all_reduce combines the ranks' values, elementwise.
enum class ReduceOp {
  sum,   ///< Σ over ranks
  mean,  ///< Σ over ranks / world_size() (floating dtypes)
  max,   ///< the largest
  min,   ///< the smallest
};

/// In place on every rank: `t` becomes the reduction of all ranks' `t` (f32, f64 or i64; the
/// same shape and dtype on every rank, checked). Not recorded by autograd. `mean` needs a
/// floating dtype.
void all_reduce(Tensor& t, ReduceOp op = ReduceOp::sum);
/// In place: every rank's `t` takes the values of rank `root`'s (same shape and dtype).
void broadcast(Tensor& t, int root = 0);
/// Every rank's `t`, stacked in rank order: shape (world_size, t's shape).
Tensor all_gather(const Tensor& t);

}  // namespace xgrad::distributed
