// The step guard: before each call the ranks make together, one small non-blocking allgather
// of what every rank is about to do, on a communicator of its own (so it can never pair with a
// gradient bucket or a user's collective), waited for with a deadline.
//
// Without it, ranks out of step (a rank with one batch more, one that skipped a failed backward,
// one that left main while the others wait) meet in collectives that don't match: MPI then
// hangs, fails with MPI_ERR_TRUNCATE, or silently pairs unrelated data. With it, they meet here,
// where the mismatch is visible: every rank prints every rank's step, and the job ends.
#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "mpi_util.hpp"

namespace xgrad::distributed {

namespace {

constexpr int kFields = 4;  // kind, what, pass, broken pass
MPI_Comm guard_comm = MPI_COMM_NULL;
double timeout_seconds = 600.0;
std::int64_t broken_pass = 0;

int my_rank() {
  int r = -1;
  MPI_Comm_rank(MPI_COMM_WORLD, &r);
  return r;
}

const char* call_name(std::int64_t what) {
  switch (what) {
    case detail::Step::all_reduce: return "distributed::all_reduce";
    case detail::Step::broadcast: return "distributed::broadcast";
    case detail::Step::all_gather: return "distributed::all_gather";
    case detail::Step::barrier: return "distributed::barrier";
    case detail::Step::group_sum: return "a reduction of distributed::process_group (fit's logs, stop or batch count)";
    case detail::Step::data_parallel: return "distributed::DataParallel's construction";
    default: return "an unknown dist call";
  }
}

std::string describe(const std::int64_t* r) {
  std::string s;
  const std::string dp = " of a distributed::DataParallel over " + std::to_string(r[1]) + " parameters";
  switch (r[0]) {
    case detail::Step::finish: s = "at the end of its distributed::Context"; break;
    case detail::Step::collective: s = std::string("in ") + call_name(r[1]); break;
    case detail::Step::backward_end: s = "at the end of backward pass " + std::to_string(r[2]) + dp; break;
    case detail::Step::backward_start: s = "starting backward pass " + std::to_string(r[2]) + dp; break;
    default: s = "at an unknown step"; break;
  }
  if (r[3] != 0) s += " (its backward pass " + std::to_string(r[3]) + " ended with an exception)";
  return s;
}

// "rank 0 is ...; ranks 1, 3 are ...": ranks with the same step together, in rank order.
std::string describe_all(const std::vector<std::int64_t>& all, int world) {
  std::vector<bool> done(static_cast<std::size_t>(world), false);
  std::string out;
  for (int r = 0; r < world; ++r) {
    if (done[static_cast<std::size_t>(r)]) continue;
    const std::int64_t* rec = &all[static_cast<std::size_t>(r) * kFields];
    std::vector<int> same;
    for (int q = r; q < world; ++q) {
      const std::int64_t* other = &all[static_cast<std::size_t>(q) * kFields];
      if (std::equal(rec, rec + kFields, other)) {
        same.push_back(q);
        done[static_cast<std::size_t>(q)] = true;
      }
    }
    if (!out.empty()) out += "; ";
    out += same.size() == 1 ? "rank " : "ranks ";
    for (std::size_t i = 0; i < same.size(); ++i) out += (i ? ", " : "") + std::to_string(same[i]);
    out += (same.size() == 1 ? " is " : " are ") + describe(rec);
  }
  return out;
}

std::string fmt_seconds(double s) {
  char text[32];
  std::snprintf(text, sizeof text, "%g", s);
  return text;
}

[[noreturn]] void end_job(const std::string& message) {
  std::fprintf(stderr, "xgrad.distributed: rank %d: %s\n", my_rank(), message.c_str());
  std::fflush(stderr);
  MPI_Abort(MPI_COMM_WORLD, 1);
  std::abort();
}

// Polls `request` until it completes; ends the job when it has not within the timeout. It
// spins and yields as MPI's own waits do: sleeping between polls would add the wake-up delay of
// a loaded machine to every step.
void wait_bounded(MPI_Request& request, const std::int64_t* mine) {
  using clock = std::chrono::steady_clock;
  const auto start = clock::now();
  for (long polls = 1;; ++polls) {
    int done = 0;
    detail::check(MPI_Test(&request, &done, MPI_STATUS_IGNORE), "dist: the step guard");
    if (done) return;
    if (polls % 1024 == 0 && std::chrono::duration<double>(clock::now() - start).count() > timeout_seconds)
      end_job("waited " + fmt_seconds(timeout_seconds) + " s " + describe(mine) +
              " for the other ranks, and some never made a dist call (stuck outside dist, or in an MPI call of "
              "their own); distributed::set_timeout sets the limit; ending the job");
    std::this_thread::yield();
  }
}

}  // namespace

namespace detail {

void open_guard() {
  if (guard_comm != MPI_COMM_NULL) return;
  check(MPI_Comm_dup(MPI_COMM_WORLD, &guard_comm), "distributed::Context: the step guard's communicator");
  MPI_Comm_set_errhandler(guard_comm, MPI_ERRORS_RETURN);
  if (const char* env = std::getenv("XGRAD_DISTRIBUTED_TIMEOUT")) {
    char* end = nullptr;
    const double v = std::strtod(env, &end);
    if (end == env || *end != '\0' || !(v > 0) || !std::isfinite(v))
      throw Error(std::string("distributed::Context: XGRAD_DISTRIBUTED_TIMEOUT must be a positive number of seconds, got '") + env + "'");
    timeout_seconds = v;
  }
}

void close_guard() {
  if (guard_comm != MPI_COMM_NULL) MPI_Comm_free(&guard_comm);
}

void note_broken_pass(std::int64_t pass) {
  if (broken_pass == 0) broken_pass = pass;
}

void agree(const Step& step) {
  int world = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &world);
  if (world == 1 || guard_comm == MPI_COMM_NULL) return;
  const std::array<std::int64_t, kFields> mine{step.kind, step.what, step.pass, broken_pass};
  std::vector<std::int64_t> all(static_cast<std::size_t>(world) * kFields);
  MPI_Request request = MPI_REQUEST_NULL;
  check(MPI_Iallgather(mine.data(), kFields, MPI_INT64_T, all.data(), kFields, MPI_INT64_T, guard_comm, &request),
        "dist: the step guard");
  wait_bounded(request, mine.data());
  bool same = true, broken = false;
  for (int r = 0; r < world; ++r) {
    const std::int64_t* rec = &all[static_cast<std::size_t>(r) * kFields];
    same = same && std::equal(rec, rec + kFields - 1, mine.data());
    broken = broken || rec[kFields - 1] != 0;
  }
  if (same && !broken) return;
  // Every rank has met here (the allgather completed), so every rank reaches this point: all
  // print, then wait for each other (bounded) so that no abort cuts another rank's message off.
  std::string message = "the ranks are out of step: " + describe_all(all, world) +
                        ". Every rank must make the same dist calls in the same order (the same number of batches "
                        "and of backward passes";
  message += broken ? "; a backward pass that failed on one rank cannot be skipped: its gradients were already "
                      "travelling); ending the job"
                    : "); ending the job";
  std::fprintf(stderr, "xgrad.distributed: rank %d: %s\n", my_rank(), message.c_str());
  std::fflush(stderr);
  MPI_Request printed = MPI_REQUEST_NULL;
  if (MPI_Ibarrier(guard_comm, &printed) == MPI_SUCCESS) {
    const auto start = std::chrono::steady_clock::now();
    int done = 0;
    while (!done && std::chrono::steady_clock::now() - start < std::chrono::seconds(5)) {
      if (MPI_Test(&printed, &done, MPI_STATUS_IGNORE) != MPI_SUCCESS) break;
      std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
  }
  // One abort ends the job; several at once garble mpirun's own report. The others wait to be
  // ended, and abort themselves only if that does not come.
  if (my_rank() != 0) std::this_thread::sleep_for(std::chrono::seconds(10));
  MPI_Abort(MPI_COMM_WORLD, 1);
  std::abort();
}

}  // namespace detail

void set_timeout(double seconds) {
  if (!(seconds > 0) || !std::isfinite(seconds))
    throw Error("distributed::set_timeout: the timeout must be a positive number of seconds, got " + fmt_seconds(seconds));
  timeout_seconds = seconds;
}

double timeout() { return timeout_seconds; }

}  // namespace xgrad::distributed
