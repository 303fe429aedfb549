// Weak scaling of data-parallel training (bench/dist_scaling.sh runs it at np = 1 and 2): each
// rank trains the benchmark's LSTM M on its own fixed batch with distributed::DataParallel and Adam,
// and rank 0 prints one JSON line: the median time per step (the slowest rank's), and how long
// backward's end waited for the gradient allreduces (the communication not hidden).
//
//   mpirun -np 2 bench_dist_scaling [--batch 64] [--seq 100] [--input 128] [--hidden 256]
//                                   [--layers 1] [--steps 20] [--warmup 3] [--overlap 0|1] [--bucket-kb 25600]
#include <algorithm>
#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>
#include <xgrad/distributed.hpp>
#include <xgrad/xgrad.hpp>

#include "bench_args.hpp"

using namespace xgrad;

int main(int argc, char** argv) {
  distributed::Context mpi(argc, argv);
  long batch = 64, seq = 100, input = 128, hidden = 256, layers = 1, steps = 20, warmup = 3, overlap = 1, bucket_kb = 25600;
  for (int i = 1; i < argc; ++i) {
    const std::string_view flag = argv[i];
    const char* value = i + 1 < argc ? argv[i + 1] : nullptr;
    long* target = flag == "--batch" ? &batch : flag == "--seq" ? &seq : flag == "--input" ? &input
                 : flag == "--hidden" ? &hidden : flag == "--layers" ? &layers : flag == "--steps" ? &steps
                 : flag == "--warmup" ? &warmup : flag == "--overlap" ? &overlap : flag == "--bucket-kb" ? &bucket_kb : nullptr;
    if (target == nullptr) throw Error(fmt::format("bench_dist_scaling: unknown argument '{}'", flag));
    *target = parse_count(flag, value, flag == "--overlap" || flag == "--warmup" ? 0 : 1);
    ++i;
  }
  manual_seed(1 + static_cast<std::uint64_t>(distributed::rank()));  // each rank its own data
  const Tensor x = randn({seq, batch, input}), y = randn({batch, hidden});
  nn::LSTM lstm(nn::LSTMOptions(input, hidden).num_layers(layers));
  distributed::DataParallel ddp(lstm, distributed::DataParallelOptions().overlap(overlap != 0).bucket_cap_mb(static_cast<double>(bucket_kb) / 1024));
  optim::Adam opt(lstm.parameters(), optim::AdamOptions(1e-3));
  std::vector<double> step_seconds, wait_seconds;
  for (long s = 0; s < warmup + steps; ++s) {
    distributed::barrier();
    const auto start = std::chrono::steady_clock::now();
    opt.zero_grad();
    nn::mse_loss(lstm(x).output.select(0, -1), y).backward();
    opt.step();
    Tensor seconds = full({1}, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), DType::f64);
    distributed::all_reduce(seconds, distributed::ReduceOp::max);  // a step lasts as long as its slowest rank
    Tensor wait = full({1}, ddp.last_stats().wait_seconds, DType::f64);
    distributed::all_reduce(wait, distributed::ReduceOp::mean);
    if (s >= warmup) {
      step_seconds.push_back(seconds.item());
      wait_seconds.push_back(wait.item());
    }
  }
  // The communication itself: one blocking allreduce of all the gradients' elements, started
  // together (after a barrier), so rank skew is not in it.
  std::vector<double> comm_seconds;
  Tensor flat = zeros({lstm.num_parameters()});
  for (int k = 0; k < 5; ++k) {
    distributed::barrier();
    const auto start = std::chrono::steady_clock::now();
    distributed::all_reduce(flat);
    Tensor seconds = full({1}, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), DType::f64);
    distributed::all_reduce(seconds, distributed::ReduceOp::max);
    comm_seconds.push_back(seconds.item());
  }
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  if (distributed::rank() == 0)
    fmt::print("{{\"ranks\": {}, \"batch_per_rank\": {}, \"seq\": {}, \"input\": {}, \"hidden\": {}, \"layers\": {}, "
               "\"overlap\": {}, \"buckets\": {}, \"early_buckets\": {}, \"parameters\": {}, \"step_ms\": {:.3f}, \"wait_ms\": {:.3f}, \"allreduce_ms\": {:.3f}}}\n",
               distributed::world_size(), batch, seq, input, hidden, layers, overlap != 0 ? "true" : "false",
               ddp.last_stats().buckets, ddp.last_stats().buckets_launched_early, lstm.num_parameters(), 1e3 * median(step_seconds), 1e3 * median(wait_seconds), 1e3 * median(comm_seconds));
  return 0;
}
