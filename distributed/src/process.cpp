// dist's start-up, shut-down and failure handling, and the collectives on tensors.
#include <xgrad/distributed/process.hpp>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <vector>

#include <xgrad/core/autograd.hpp>
#include <xgrad/core/creation.hpp>

#include "mpi_util.hpp"

namespace xgrad::distributed {

namespace {

bool context_alive = false;
bool failing = false;  // an exception unwound past the Context: the job ends at exit
std::terminate_handler previous_terminate = nullptr;

int world_rank() {
  int r = -1;
  MPI_Comm_rank(MPI_COMM_WORLD, &r);
  return r;
}

// An exception escaped main (or a noexcept function): say which rank and why, then end the
// whole job, so the other ranks don't wait forever in a collective.
[[noreturn]] void on_terminate() {
  std::string why = "terminated";
  if (const std::exception_ptr e = std::current_exception()) {
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      why = ex.what();
    } catch (...) {
      why = "an exception that is not a std::exception";
    }
  }
  std::fprintf(stderr, "xgrad.distributed: rank %d failed: %s\n", world_rank(), why.c_str());
  std::fflush(stderr);
  MPI_Abort(MPI_COMM_WORLD, 1);
  std::abort();
}

void abort_if_failing() {
  if (!failing) return;
  std::fprintf(stderr, "xgrad.distributed: rank %d failed (an exception unwound past distributed::Context); ending the job\n",
               world_rank());
  std::fflush(stderr);
  MPI_Abort(MPI_COMM_WORLD, 1);
}

}  // namespace

namespace detail {

void require_initialized(const char* op) {
  if (!context_alive)
    throw Error(std::string(op) + ": MPI is not running; create a distributed::Context(argc, argv) at the start of main");
}

MPI_Datatype mpi_type(DType dtype, const char* op) {
  switch (dtype) {
    case DType::f32: return MPI_FLOAT;
    case DType::f64: return MPI_DOUBLE;
    case DType::i64: return MPI_INT64_T;
    default: throw Error(std::string(op) + ": dtype " + std::string(dtype_name(dtype)) + " is not supported (f32, f64 or i64)");
  }
}

}  // namespace detail

Context::Context(int& argc, char**& argv) {
  if (context_alive) throw Error("distributed::Context: a Context is already alive in this process; make one, in main");
  int running = 0;
  MPI_Initialized(&running);
  if (!running) {
    int provided = 0;
    // Only the thread that runs backward calls MPI (the gradient hooks run on it).
    detail::check(MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided), "distributed::Context");
    owns_ = true;
  }
  // Errors come back as codes, and become exceptions naming the call.
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  detail::open_guard();
  context_alive = true;
  previous_terminate = std::set_terminate(on_terminate);
  static const bool registered = [] { return std::atexit(abort_if_failing) == 0; }();
  (void)registered;
}

Context::~Context() {
  context_alive = false;
  std::set_terminate(previous_terminate);
  if (std::uncaught_exceptions() > 0) {
    // Finalising now would leave the other ranks waiting in their next collective: end the
    // job when this process exits (after main's handler has printed the message).
    failing = true;
    return;
  }
  // Finalising while another rank still waits in a collective would hang both: meet the others
  // first (a rank that left main early meets them in their next collective, and the job ends).
  detail::agree({detail::Step::finish, 0, 0});
  detail::close_guard();
  if (owns_) MPI_Finalize();
}

bool initialized() { return context_alive; }

int rank() {
  detail::require_initialized("distributed::rank");
  return world_rank();
}

int world_size() {
  detail::require_initialized("distributed::world_size");
  int n = 0;
  MPI_Comm_size(MPI_COMM_WORLD, &n);
  return n;
}

void barrier() {
  detail::require_initialized("distributed::barrier");
  detail::agree({detail::Step::collective, detail::Step::barrier, 0});
  detail::check(MPI_Barrier(MPI_COMM_WORLD), "distributed::barrier");
}

void abort(const std::string& message, int code) {
  std::fprintf(stderr, "xgrad.distributed: rank %d: %s\n", context_alive ? world_rank() : -1, message.c_str());
  std::fflush(stderr);
  if (context_alive) MPI_Abort(MPI_COMM_WORLD, code);
  std::exit(code);
}

namespace {

// Checks that every rank passes a tensor of the same dtype and shape: one small allreduce of
// (x, -x) with MAX gives every rank the maximum and the minimum of each entry of a fixed-length
// signature (dtype, rank, the first 8 extents padded with -1, and the element count).
void check_same_everywhere(const Tensor& t, const char* op) {
  if (!t.defined()) throw Error(std::string(op) + ": undefined tensor");
  detail::mpi_type(t.dtype(), op);
  constexpr std::size_t kExtents = 8;
  std::vector<std::int64_t> sig{static_cast<std::int64_t>(t.dtype()), t.dim(), t.numel()};
  for (std::size_t d = 0; d < kExtents; ++d) sig.push_back(d < t.shape().size() ? t.shape()[d] : -1);
  std::vector<std::int64_t> range(2 * sig.size());
  for (std::size_t i = 0; i < sig.size(); ++i) range[2 * i] = sig[i], range[2 * i + 1] = -sig[i];
  detail::check(MPI_Allreduce(MPI_IN_PLACE, range.data(), static_cast<int>(range.size()), MPI_INT64_T, MPI_MAX,
                              MPI_COMM_WORLD), op);
  bool same = true;
  for (std::size_t i = 0; i < sig.size(); ++i) same = same && range[2 * i] == -range[2 * i + 1];
  if (!same)
    throw Error(std::string(op) + ": the ranks passed tensors of different shapes or dtypes (rank " +
                std::to_string(world_rank()) + " has " + shape_str(t.shape()) + " " + std::string(dtype_name(t.dtype())) +
                "); every rank must pass the same");
}

// `t`'s data as one contiguous block this call may write: t itself when contiguous, else a copy
// that `finish` writes back.
struct Block {
  Tensor data;
  void* ptr;
};
Block writable(Tensor& t) {
  Tensor d = t.is_contiguous() ? t : t.contiguous().detach();
  void* p = nullptr;
  switch (d.dtype()) {
    case DType::f32: p = d.mutable_data<float>(); break;
    case DType::f64: p = d.mutable_data<double>(); break;
    default: p = d.mutable_data<std::int64_t>(); break;
  }
  return {d, p};
}
void finish(Tensor& t, const Block& b) {
  if (b.data.impl() == t.impl()) return;
  NoGradGuard no_grad;
  t.copy_(b.data);
}

}  // namespace

void all_reduce(Tensor& t, ReduceOp op) {
  detail::require_initialized("distributed::all_reduce");
  detail::agree({detail::Step::collective, detail::Step::all_reduce, 0});
  check_same_everywhere(t, "distributed::all_reduce");
  if (op == ReduceOp::mean && t.dtype() == DType::i64)
    throw Error("distributed::all_reduce: mean needs a floating dtype, got i64");
  const MPI_Op mpi_op = op == ReduceOp::max ? MPI_MAX : op == ReduceOp::min ? MPI_MIN : MPI_SUM;
  Block b = writable(t);
  detail::check(MPI_Allreduce(MPI_IN_PLACE, b.ptr, static_cast<int>(t.numel()), detail::mpi_type(t.dtype(), "distributed::all_reduce"),
                              mpi_op, MPI_COMM_WORLD),
                "distributed::all_reduce");
  if (op == ReduceOp::mean) {
    NoGradGuard no_grad;
    b.data.mul_(1.0 / world_size());
  }
  finish(t, b);
}

void broadcast(Tensor& t, int root) {
  detail::require_initialized("distributed::broadcast");
  detail::agree({detail::Step::collective, detail::Step::broadcast, 0});
  if (root < 0 || root >= world_size())
    throw Error("distributed::broadcast: root " + std::to_string(root) + " is not a rank (world size " + std::to_string(world_size()) + ")");
  check_same_everywhere(t, "distributed::broadcast");
  Block b = writable(t);
  detail::check(MPI_Bcast(b.ptr, static_cast<int>(t.numel()), detail::mpi_type(t.dtype(), "distributed::broadcast"), root,
                          MPI_COMM_WORLD),
                "distributed::broadcast");
  finish(t, b);
}

Tensor all_gather(const Tensor& t) {
  detail::require_initialized("distributed::all_gather");
  detail::agree({detail::Step::collective, detail::Step::all_gather, 0});
  check_same_everywhere(t, "distributed::all_gather");
  const Tensor src = t.contiguous().detach();
  Shape shape{world_size()};
  shape.insert(shape.end(), t.shape().begin(), t.shape().end());
  Tensor out = zeros(shape, t.dtype());
  Block b = writable(out);
  const void* in = nullptr;
  switch (src.dtype()) {
    case DType::f32: in = src.data<float>(); break;
    case DType::f64: in = src.data<double>(); break;
    default: in = src.data<std::int64_t>(); break;
  }
  const MPI_Datatype type = detail::mpi_type(t.dtype(), "distributed::all_gather");
  detail::check(MPI_Allgather(in, static_cast<int>(t.numel()), type, b.ptr, static_cast<int>(t.numel()), type, MPI_COMM_WORLD),
                "distributed::all_gather");
  return out;
}

}  // namespace xgrad::distributed
