#pragma once
/// \file
/// xgrad's intra-op threads: how many threads one op may use, and parallel_for over independent
/// items (rows, matrices of a batch) for kernels written outside core (see nn's layer_norm).
#include <cstdint>
#include <type_traits>
#include <utility>

namespace xgrad {

/// The number of threads an op may split its work over (the caller's included), as
/// `torch::get_num_threads()`. Defaults to the processors this process may run on, at most
/// OpenBLAS's own thread count (so `OPENBLAS_NUM_THREADS=1` or a run bound to one core stays
/// on one thread); the environment variable `XGRAD_NUM_THREADS` (a positive integer) sets it
/// instead. A malformed `XGRAD_NUM_THREADS` throws Error at the first call.
/// Example: `int n = xgrad::get_num_threads();`
int get_num_threads();

/// Sets the number of threads ops may use (1: everything on the calling thread), for the whole
/// process, as `torch::set_num_threads`. Results do not depend on it: work is only ever split
/// by independent items, never inside a sum. Throws Error for n < 1.
/// Example: `xgrad::set_num_threads(1);`
void set_num_threads(int n);

namespace detail {
using RangeFn = void (*)(void* context, std::int64_t begin, std::int64_t end);
void parallel_for(std::int64_t count, std::int64_t grain, RangeFn fn, void* context);
}  // namespace detail

/// Calls `fn(begin, end)` on disjoint ranges covering [0, count), on the calling thread and
/// xgrad's worker threads, and returns when all are done. Ranges hold at least `grain` items
/// (the last may hold fewer), so work below 2·grain items stays on the calling thread, as does
/// a call made from inside another parallel_for or while another thread's parallel_for runs.
/// `fn` must treat items independently (each writes only its own outputs) and must not create
/// tensors. An exception thrown by `fn` stops the remaining ranges and reaches the caller
/// (anything but an Error as an Error naming parallel_for).
/// Example: `parallel_for(rows, 64, [&](std::int64_t b, std::int64_t e) { for (auto r = b; r < e; ++r) row(r); });`
template <class F>
void parallel_for(std::int64_t count, std::int64_t grain, F&& fn) {
  using Fn = std::remove_reference_t<F>;
  detail::parallel_for(
      count, grain,
      [](void* context, std::int64_t begin, std::int64_t end) { (*static_cast<Fn*>(context))(begin, end); },
      const_cast<void*>(static_cast<const void*>(&fn)));
}

}  // namespace xgrad
