// The intra-op thread pool behind parallel_for: get_num_threads() − 1 workers that sleep on a
// condition variable between jobs. One job runs at a time; a second caller meanwhile (another
// thread training its own model) runs its items on its own thread, which keeps the cores
// exactly as busy and never queues one model's op behind another's.
#include <xgrad/core/error.hpp>
#include <xgrad/core/parallel.hpp>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <pthread.h>
#include <sched.h>

#include "blas_threads.hpp"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace xgrad {

namespace {

// True on a thread while it runs items of a job: a parallel_for inside one runs inline.
thread_local bool in_task = false;

struct Job {
  detail::RangeFn fn = nullptr;
  void* context = nullptr;
  std::int64_t count = 0, size = 1, chunks = 0;  // chunk i covers [i·size, min((i+1)·size, count))
  int helpers = 0;  // workers that may still join (the pool's mutex guards it)
  int caller_cpu = -1;  // the processor the caller ran on when it posted the job
  std::atomic<std::int64_t> next{0};
  std::mutex error_mutex;
  std::exception_ptr error;

  // Claims and runs chunks until none is left; the first exception stops the others.
  void run_chunks() {
    in_task = true;
    for (std::int64_t i; (i = next.fetch_add(1, std::memory_order_relaxed)) < chunks;) {
      const std::int64_t begin = i * size, end = std::min(begin + size, count);
      try {
        fn(context, begin, end);
      } catch (...) {
        const std::lock_guard lock(error_mutex);
        if (!error) error = std::current_exception();
        next.store(chunks, std::memory_order_relaxed);
      }
    }
    in_task = false;
  }
};

// After a job a worker keeps polling for the next one for a while before it sleeps: an op's
// forward is soon followed by the next op's. Sleeping at once costs more than a futex wake: on
// a machine whose cores OpenBLAS's idle threads keep busy (they poll with sched_yield between
// GEMMs), a woken worker is often queued behind the caller on the caller's core and only runs
// once the caller has done every item itself. The poll yields the core (as OpenBLAS's do), so
// a thread with work to do, OpenBLAS's included, is not held up by it.
constexpr auto kPollTime = std::chrono::milliseconds(1);

void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#else
  std::this_thread::yield();
#endif
}

class Pool {
 public:
  explicit Pool(int threads) : threads_(threads) {
    if (sched_getaffinity(0, sizeof allowed_, &allowed_) != 0) CPU_ZERO(&allowed_);
    for (int i = 1; i < threads; ++i) workers_.emplace_back([this] { work(); });
  }
  ~Pool() {
    {
      const std::lock_guard lock(mutex_);
      stop_ = true;
    }
    wake_.notify_all();
    for (std::thread& t : workers_) t.join();
  }
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;

  int threads() const { return threads_; }

  // Runs the job with up to job.helpers workers; false (nothing run) while another caller's
  // job runs.
  bool try_run(Job& job) {
    const std::unique_lock busy(busy_, std::try_to_lock);
    if (!busy.owns_lock()) return false;
    job.caller_cpu = sched_getcpu();
    {
      const std::lock_guard lock(mutex_);
      job_ = &job;
      generation_.fetch_add(1, std::memory_order_release);
    }
    wake_.notify_all();
    job.run_chunks();
    // Workers that have not picked the job up yet find none; the job outlives the others.
    std::unique_lock lock(mutex_);
    job_ = nullptr;
    done_.wait(lock, [this] { return working_ == 0; });
    return true;
  }

 private:
  void work() {
    std::uint64_t seen = 0;
    for (;;) {
      poll(seen);
      Job* job = nullptr;
      {
        std::unique_lock lock(mutex_);
        wake_.wait(lock, [&] { return stop_ || generation_.load(std::memory_order_relaxed) != seen; });
        if (stop_) return;
        seen = generation_.load(std::memory_order_relaxed);
        job = job_;
        if (!job || job->helpers == 0) continue;
        --job->helpers;
        ++working_;
      }
      avoid(job->caller_cpu);
      job->run_chunks();
      const std::lock_guard lock(mutex_);
      if (--working_ == 0) done_.notify_all();
    }
  }

  // Keeps this worker off the caller's processor. A worker woken while OpenBLAS's idle threads
  // poll on the other cores is otherwise often queued behind the caller on the caller's own
  // core, and gets to run only once the caller has done every item itself. Changed only when
  // the caller has moved.
  void avoid(int cpu) {
    thread_local int avoided = -1;
    if (cpu < 0 || cpu == avoided || cpu >= CPU_SETSIZE || !CPU_ISSET(cpu, &allowed_) || CPU_COUNT(&allowed_) < 2)
      return;
    cpu_set_t set = allowed_;
    CPU_CLR(cpu, &set);
    if (pthread_setaffinity_np(pthread_self(), sizeof set, &set) == 0) avoided = cpu;
  }

  // Returns when a job newer than `seen` is posted or the poll time has passed.
  void poll(std::uint64_t seen) const {
    const auto until = std::chrono::steady_clock::now() + kPollTime;
    for (int i = 0; generation_.load(std::memory_order_acquire) == seen; ++i) {
      if (i < 64) {
        cpu_relax();
        continue;
      }
      if (std::chrono::steady_clock::now() >= until) return;
      std::this_thread::yield();
    }
  }

  std::mutex busy_;   // held by the caller whose job runs
  std::mutex mutex_;  // guards job_, working_, stop_
  std::condition_variable wake_, done_;
  std::atomic<std::uint64_t> generation_{0};  // bumped for each job
  Job* job_ = nullptr;
  int working_ = 0;  // workers inside job_
  bool stop_ = false;
  const int threads_;
  cpu_set_t allowed_;  // the processors the process may run on
  std::vector<std::thread> workers_;
};

// The processors this process may run on, at most OpenBLAS's thread count.
int default_threads() {
  int cpus = static_cast<int>(std::thread::hardware_concurrency());
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0) cpus = CPU_COUNT(&set);
  return std::max(1, std::min(cpus, blas_threads_at_start()));
}

constexpr int kMaxThreads = 1024;

int threads_from_environment() {
  const char* text = std::getenv("XGRAD_NUM_THREADS");
  if (text == nullptr || *text == '\0') return default_threads();
  int n = 0;
  const char* end = text + std::strlen(text);
  const auto [ptr, ec] = std::from_chars(text, end, n);
  if (ec != std::errc() || ptr != end || n < 1 || n > kMaxThreads)
    throw Error("XGRAD_NUM_THREADS: expected a whole number of threads from 1 to " + std::to_string(kMaxThreads) +
                ", got '" + text + "'");
  return n;
}

// The configuration, never destroyed: worker threads must not be joined during static
// destruction.
struct Config {
  std::mutex mutex;
  int threads = 0;  // 0 until read from the environment
  std::shared_ptr<Pool> pool;
};
Config* config_now = nullptr;  // set once (below) and again only in a fork()ed child

// A fork()ed child has the parent's memory but none of its workers, and a lock a worker held
// at the fork would stay locked in it forever. So the child forgets the parent's pool (never
// destroyed: its threads do not exist) and starts its own at its first split op, keeping the
// thread count, as PyTorch's pool does. The child runs this alone, before fork() returns.
void forget_pool_in_child() {
  auto* fresh = new Config;
  fresh->threads = config_now->threads;
  config_now = fresh;
}

Config& config() {
  static const bool ready = [] {
    config_now = new Config;
    pthread_atfork(nullptr, nullptr, forget_pool_in_child);
    return true;
  }();
  (void)ready;
  return *config_now;
}
std::atomic<int> threads_now{0};  // a copy of config().threads, read without the lock

int threads_locked(Config& c) {
  if (c.threads == 0) {
    c.threads = threads_from_environment();
    threads_now.store(c.threads, std::memory_order_relaxed);
  }
  return c.threads;
}

std::shared_ptr<Pool> current_pool() {
  Config& c = config();
  const std::lock_guard lock(c.mutex);
  if (threads_locked(c) > 1 && (!c.pool || c.pool->threads() < c.threads)) c.pool = std::make_shared<Pool>(c.threads);
  return c.pool;
}

// Errors reach the caller as they are; anything else becomes an Error naming parallel_for.
[[noreturn]] void rethrow_as_error(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Error(std::string("parallel_for: a task threw: ") + e.what());
  } catch (...) {
    throw Error("parallel_for: a task threw an exception that is not a std::exception");
  }
}

}  // namespace

int get_num_threads() {
  const int n = threads_now.load(std::memory_order_relaxed);
  if (n > 0) return n;
  Config& c = config();
  const std::lock_guard lock(c.mutex);
  return threads_locked(c);
}

void set_num_threads(int n) {
  if (n < 1 || n > kMaxThreads)
    throw Error("set_num_threads: expected a number of threads from 1 to " + std::to_string(kMaxThreads) + ", got " +
                std::to_string(n));
  // A smaller count only limits how many workers join a job: the pool's threads stay, asleep.
  // A larger one starts a larger pool on the next parallel_for.
  Config& c = config();
  const std::lock_guard lock(c.mutex);
  c.threads = n;
  threads_now.store(n, std::memory_order_relaxed);
}

namespace detail {

void parallel_for(std::int64_t count, std::int64_t grain, RangeFn fn, void* context) {
  if (count <= 0) return;
  grain = std::max<std::int64_t>(grain, 1);
  const int threads = count >= 2 * grain && !in_task ? get_num_threads() : 1;
  std::shared_ptr<Pool> pool = threads > 1 ? current_pool() : nullptr;
  if (pool) {
    Job job;
    job.fn = fn;
    job.context = context;
    job.count = count;
    job.helpers = threads - 1;
    // A few chunks per thread, so a thread slowed by another process does not hold the rest up.
    const std::int64_t chunks = std::min<std::int64_t>(4 * static_cast<std::int64_t>(threads), count / grain);
    job.size = (count + chunks - 1) / chunks;
    job.chunks = (count + job.size - 1) / job.size;
    if (pool->try_run(job)) {
      if (job.error) rethrow_as_error(job.error);
      return;
    }
  }
  try {
    fn(context, 0, count);
  } catch (...) {
    rethrow_as_error(std::current_exception());
  }
}

}  // namespace detail

}  // namespace xgrad
