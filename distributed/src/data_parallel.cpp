// DataParallel: parameters from rank 0, then gradients averaged in buckets by non-blocking
// allreduces that start from the gradient hooks while backward runs (PyTorch's reducer,
// torch/csrc/distributed/c10d/reducer.cpp, in its simplest form).
#include <xgrad/distributed/data_parallel.hpp>

#include <algorithm>
#include <chrono>
#include <limits>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <xgrad/core/autograd.hpp>
#include <xgrad/core/creation.hpp>
#include <xgrad/core/ops.hpp>

#include "mpi_util.hpp"

namespace xgrad::distributed {

namespace {

std::string describe(const std::string& name, const Tensor& t) {
  return "'" + name + "' " + shape_str(t.shape()) + " " + std::string(dtype_name(t.dtype()));
}

// One line per fact that must be the same on every rank for the buckets to pair up and to
// hold the same parameters: the options that shape the buckets, then every parameter (name,
// shape, dtype, requires_grad) and buffer, in registration order.
std::vector<std::string> model_lines(const nn::Module& model, const DataParallelOptions& options) {
  std::ostringstream cap;
  cap.precision(17);
  cap << options.bucket_cap_mb();
  std::vector<std::string> lines{"bucket_cap_mb " + cap.str()};
  for (const auto& [name, p] : model.named_parameters())
    lines.push_back("parameter " + describe(name, p) + (p.requires_grad() ? " requires_grad" : " frozen (requires_grad false)"));
  for (const auto& [name, b] : model.named_buffers()) lines.push_back("buffer " + describe(name, b));
  return lines;
}

// Every rank's lines must match rank 0's. Rank 0 sends its lines; each rank finds its first
// line that differs; a MINLOC allreduce picks the earliest difference (lowest rank on a tie),
// whose rank sends its line, so every rank throws the same message naming it.
void check_same_model(const std::vector<std::string>& lines) {
  const char* op = "distributed::DataParallel";
  std::string mine;
  for (const std::string& line : lines) mine += line + "\n";
  std::int64_t length = static_cast<std::int64_t>(mine.size());
  detail::check(MPI_Bcast(&length, 1, MPI_INT64_T, 0, MPI_COMM_WORLD), op);
  std::string root(static_cast<std::size_t>(length), '\0');
  if (rank() == 0) root = mine;
  detail::check(MPI_Bcast(root.data(), static_cast<int>(length), MPI_CHAR, 0, MPI_COMM_WORLD), op);
  std::vector<std::string> root_lines;
  for (std::size_t at = 0; at < root.size();) {
    const std::size_t end = root.find('\n', at);
    root_lines.push_back(root.substr(at, end - at));
    at = end + 1;
  }
  const std::size_t n = std::max(root_lines.size(), lines.size());
  int first = std::numeric_limits<int>::max();
  for (std::size_t i = 0; i < n && first == std::numeric_limits<int>::max(); ++i)
    if (i >= root_lines.size() || i >= lines.size() || root_lines[i] != lines[i]) first = static_cast<int>(i);
  int pair[2] = {first, rank()};
  detail::check(MPI_Allreduce(MPI_IN_PLACE, pair, 1, MPI_2INT, MPI_MINLOC, MPI_COMM_WORLD), op);
  if (pair[0] == std::numeric_limits<int>::max()) return;
  const auto at = static_cast<std::size_t>(pair[0]);
  const int who = pair[1];
  std::string theirs = at < lines.size() ? lines[at] : "nothing";
  std::int64_t theirs_length = static_cast<std::int64_t>(theirs.size());
  detail::check(MPI_Bcast(&theirs_length, 1, MPI_INT64_T, who, MPI_COMM_WORLD), op);
  theirs.resize(static_cast<std::size_t>(theirs_length));
  detail::check(MPI_Bcast(theirs.data(), static_cast<int>(theirs_length), MPI_CHAR, who, MPI_COMM_WORLD), op);
  throw Error("distributed::DataParallel: the model differs across ranks: rank " + std::to_string(who) + " has " + theirs +
              " where rank 0 has " + (at < root_lines.size() ? root_lines[at] : "nothing") +
              " (the options, then the parameters, then the buffers, in registration order); every rank must build the "
              "same model with the same options");
}

void broadcast_from_root(const Tensor& t) {
  Tensor data = t.detach();  // the same storage, outside the graph
  broadcast(data, 0);
}

template <class T>
void copy_into(T* dst, const Tensor& src) {
  const Tensor s = src.contiguous();
  const T* p = s.data<T>();
  std::copy(p, p + s.numel(), dst);
}

}  // namespace

struct DataParallel::State {
  struct Bucket {
    DType dtype = DType::f32;
    std::vector<std::size_t> params;    // indices into State::params
    std::vector<std::int64_t> offsets;  // of each parameter's gradient in `flat`
    std::int64_t numel = 0;             // gradient elements; `flat` adds one "has a gradient" count per parameter
    Tensor flat;
    std::size_t pending = 0;            // parameters not yet ready in this pass
    MPI_Request request = MPI_REQUEST_NULL;
  };
  std::vector<Tensor> params;
  std::vector<std::size_t> bucket_of, slot_of;
  std::vector<bool> ready;
  std::vector<Bucket> buckets;
  std::vector<HookHandle> hooks;
  std::size_t next_launch = 0;
  bool pass_running = false;
  std::int64_t passes = 0;  // synchronised backward passes started
  bool broken = false;      // the last one ended with an exception before its end
  bool overlap = true;
  int world = 1;
  Stats stats;

  // Rides along with the end-of-backward callback: the engine drops the callbacks of a
  // backward pass that throws, and this notices (its callback died without running).
  struct PassWatch {
    explicit PassWatch(State* s) : state(s) {}
    PassWatch(const PassWatch&) = delete;
    PassWatch& operator=(const PassWatch&) = delete;
    State* state;
    bool ended = false;
    ~PassWatch() {
      if (ended) return;
      state->pass_running = false;
      state->broken = true;
      detail::note_broken_pass(state->passes);
    }
  };

  void* flat_ptr(Bucket& b) {
    return b.dtype == DType::f64 ? static_cast<void*>(b.flat.mutable_data<double>()) : b.flat.mutable_data<float>();
  }

  // Copies parameter i's gradient (or zeros) and its "has a gradient" count into its bucket.
  template <class T>
  void fill_as(std::size_t i) {
    Bucket& b = buckets[bucket_of[i]];
    const std::size_t k = slot_of[i];
    const Tensor g = params[i].grad();
    const std::int64_t n = params[i].numel(), at = b.offsets[k];
    T* f = b.flat.mutable_data<T>();
    if (g.defined()) copy_into(f + at, g);
    else std::fill(f + at, f + at + n, T(0));
    f[b.numel + static_cast<std::int64_t>(k)] = g.defined() ? T(1) : T(0);
  }
  void fill(std::size_t i) {
    if (buckets[bucket_of[i]].dtype == DType::f64) fill_as<double>(i);
    else fill_as<float>(i);
  }

  void launch(Bucket& b) {
    const int count = static_cast<int>(b.numel + static_cast<std::int64_t>(b.params.size()));
    detail::check(MPI_Iallreduce(MPI_IN_PLACE, flat_ptr(b), count, detail::mpi_type(b.dtype, "distributed::DataParallel"), MPI_SUM,
                                 MPI_COMM_WORLD, &b.request),
                  "distributed::DataParallel: allreduce of a gradient bucket");
  }

  // Starts, in bucket order (the same on every rank, as MPI requires), every bucket whose
  // parameters are all ready; then lets MPI progress the ones in flight.
  void launch_ready(bool during_backward) {
    while (next_launch < buckets.size() && buckets[next_launch].pending == 0) {
      launch(buckets[next_launch++]);
      if (during_backward) ++stats.buckets_launched_early;
    }
    for (std::size_t b = 0; b < next_launch; ++b) {
      int done = 0;
      if (buckets[b].request != MPI_REQUEST_NULL) MPI_Test(&buckets[b].request, &done, MPI_STATUS_IGNORE);
    }
  }

  void begin_pass() {
    if (broken) {
      // Some of the failed pass's buckets may be in flight and the other ranks expect the rest:
      // with several ranks the guard ends the job here (naming the failed pass); one rank alone
      // just finishes them and starts afresh.
      detail::agree({detail::Step::backward_start, static_cast<std::int64_t>(params.size()), passes + 1});
      for (Bucket& b : buckets) {
        detail::check(MPI_Wait(&b.request, MPI_STATUS_IGNORE), "distributed::DataParallel: allreduce of a gradient bucket");
        b.pending = b.params.size();
      }
      std::fill(ready.begin(), ready.end(), false);
      next_launch = 0;
      broken = false;
    }
    pass_running = true;
    ++passes;
    stats = Stats{};
    stats.buckets = static_cast<std::int64_t>(buckets.size());
    auto watch = std::make_shared<PassWatch>(this);
    queue_callback([this, watch] {
      watch->ended = true;
      finish_pass();
    });
  }

  void on_ready(std::size_t i) {
    if (!pass_running) begin_pass();
    if (ready[i]) return;
    ready[i] = true;
    fill(i);
    --buckets[bucket_of[i]].pending;
    if (overlap) launch_ready(true);
  }

  // At the end of backward: the parameters that got no gradient in this pass join with what
  // they hold, the remaining buckets start, and every gradient becomes the mean.
  void finish_pass() {
    pass_running = false;
    for (std::size_t i = 0; i < params.size(); ++i)
      if (!ready[i]) {
        fill(i);
        --buckets[bucket_of[i]].pending;
      }
    launch_ready(false);
    const auto start = std::chrono::steady_clock::now();
    // Before anyone waits for a bucket: every rank must be at the end of this same pass (a rank
    // with a batch more, or one that skipped a pass, would otherwise have its buckets paired with
    // another collective, and hang or mix unrelated data). The buckets travel meanwhile; a
    // mismatch ends the job before their results are used.
    detail::agree({detail::Step::backward_end, static_cast<std::int64_t>(params.size()), passes});
    for (Bucket& b : buckets)
      detail::check(MPI_Wait(&b.request, MPI_STATUS_IGNORE), "distributed::DataParallel: allreduce of a gradient bucket");
    stats.wait_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    for (Bucket& b : buckets) {
      for (std::size_t k = 0; k < b.params.size(); ++k) {
        Tensor& p = params[b.params[k]];
        const std::int64_t count_at = b.numel + static_cast<std::int64_t>(k);
        const bool any = b.dtype == DType::f64 ? b.flat.data<double>()[count_at] > 0 : b.flat.data<float>()[count_at] > 0;
        if (!any) continue;  // no rank has a gradient: none here either
        const Tensor mean = b.flat.narrow(0, b.offsets[k], p.numel()).reshape(p.shape()) * (1.0 / world);
        Tensor g = p.grad();
        if (g.defined()) g.copy_(mean);
        else p.set_grad(mean);
      }
      b.pending = b.params.size();
    }
    std::fill(ready.begin(), ready.end(), false);
    next_launch = 0;
  }
};

DataParallel::DataParallel(nn::Module& model, const DataParallelOptions& options)
    : model_(model), state_(std::make_unique<State>()) {
  detail::require_initialized("distributed::DataParallel");
  if (!(options.bucket_cap_mb() > 0))
    throw Error("distributed::DataParallel: bucket_cap_mb must be positive, got " + std::to_string(options.bucket_cap_mb()));
  detail::agree({detail::Step::collective, detail::Step::data_parallel, 0});
  check_same_model(model_lines(model, options));
  NamedTensors entries = model.named_parameters();
  const NamedTensors buffers = model.named_buffers();
  entries.insert(entries.end(), buffers.begin(), buffers.end());
  for (const auto& [name, t] : entries) broadcast_from_root(t);

  State& s = *state_;
  s.overlap = options.overlap();
  s.world = world_size();
  for (const auto& [name, p] : model.named_parameters()) {
    if (!p.requires_grad()) continue;
    if (p.dtype() != DType::f32 && p.dtype() != DType::f64)
      throw Error("distributed::DataParallel: parameter " + describe(name, p) + " is not f32 or f64");
    s.params.push_back(p);
  }
  // Buckets in reverse registration order (backward produces the last layers' gradients
  // first), one dtype each, closed at the size cap.
  const double cap = options.bucket_cap_mb() * 1024 * 1024;
  s.bucket_of.resize(s.params.size());
  s.slot_of.resize(s.params.size());
  s.ready.assign(s.params.size(), false);
  for (std::size_t j = s.params.size(); j-- > 0;) {
    const Tensor& p = s.params[j];
    const double size = static_cast<double>(dtype_size(p.dtype()));
    if (s.buckets.empty() || s.buckets.back().dtype != p.dtype() ||
        (s.buckets.back().numel > 0 && static_cast<double>(s.buckets.back().numel + p.numel()) * size > cap))
      s.buckets.emplace_back().dtype = p.dtype();
    State::Bucket& b = s.buckets.back();
    s.bucket_of[j] = s.buckets.size() - 1;
    s.slot_of[j] = b.params.size();
    b.params.push_back(j);
    b.offsets.push_back(b.numel);
    b.numel += p.numel();
  }
  for (State::Bucket& b : s.buckets) {
    b.flat = zeros({b.numel + static_cast<std::int64_t>(b.params.size())}, b.dtype);
    b.pending = b.params.size();
  }
  for (std::size_t i = 0; i < s.params.size(); ++i)
    s.hooks.push_back(s.params[i].register_post_accumulate_grad_hook([this, i](const Tensor&) {
      if (sync_) state_->on_ready(i);
    }));
}

DataParallel::~DataParallel() {
  for (HookHandle& h : state_->hooks) h.remove();
}

DataParallel::NoSync::NoSync(DataParallel& ddp) : ddp_(ddp), previous_(ddp.sync_) { ddp.sync_ = false; }
DataParallel::NoSync::~NoSync() { ddp_.sync_ = previous_; }

void DataParallel::broadcast_buffers() {
  for (const auto& [name, t] : model_.named_buffers()) broadcast_from_root(t);
}

const DataParallel::Stats& DataParallel::last_stats() const { return state_->stats; }

}  // namespace xgrad::distributed
