#pragma once
// dist's private helpers around MPI: the only files that include <mpi.h> are dist's .cpp files.
#include <mpi.h>

#include <cstdint>
#include <string>

#include <xgrad/core/error.hpp>
#include <xgrad/core/tensor.hpp>
#include <xgrad/distributed/process.hpp>

namespace xgrad::distributed::detail {

// Throws an Error naming `what` with MPI's own message when `code` is not MPI_SUCCESS.
inline void check(int code, const char* what) {
  if (code == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(code, text, &length);
  throw Error(std::string(what) + ": MPI failed: " + std::string(text, static_cast<std::size_t>(length)));
}

// Throws unless a Context is alive.
void require_initialized(const char* op);

// The MPI type of a dtype; throws naming `op` for b8.
MPI_Datatype mpi_type(DType dtype, const char* op);

// --- the step guard (step_guard.cpp) ----------------------------------------------------------
// Before every call the ranks must make together (dist's collectives, DataParallel's
// construction and the end of each synchronised backward, the end of the Context), each rank
// says what it is about to do on a communicator of its own, so that ranks out of step meet
// there instead of in mismatched collectives: every rank prints every rank's step and the job
// ends, or, when a rank does not arrive within the timeout, the waiting rank ends it.

// What a rank is about to do.
struct Step {
  enum Kind : std::int64_t { finish = 1, collective = 2, backward_end = 3, backward_start = 4 };
  enum Call : std::int64_t { all_reduce = 1, broadcast, all_gather, barrier, group_sum, data_parallel };
  std::int64_t kind = 0;
  std::int64_t what = 0;  // collective: a Call; backward: the DataParallel's parameter count
  std::int64_t pass = 0;  // backward: the pass number
};

// Opens and closes the guard's communicator (Context's start and end; both collective).
void open_guard();
void close_guard();
// Returns when every rank is at the same step; otherwise ends the job (MPI_Abort) after every
// rank has printed the steps. No-op for a job of one process.
void agree(const Step& step);
// A DataParallel's backward pass `pass` ended with an exception after its gradients had begun
// to travel: every later step reports it, and any guard with it ends the job.
void note_broken_pass(std::int64_t pass);

}  // namespace xgrad::distributed::detail
