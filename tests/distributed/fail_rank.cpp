// Ranks that fail or fall out of step while the others wait for them. Every mode must end the
// job within seconds with a clear message and a non-zero exit, never hang; what each must print
// is in tests/distributed/expect_failure.cmake.
//   escape               rank 1's exception escapes main
//   caught               main catches it (after it unwound past distributed::Context) and returns 1
//   caught_inside        main catches it inside the Context's scope and returns 1, while rank 0
//                        waits in an all_reduce
//   caught_inside_backward  the same while rank 0 waits at the end of a DataParallel backward
//   fit_batches          fit + DataParallel, 3 batches on rank 0 and 2 on rank 1; every rank
//                        catches fit's error and returns 1
//   loop_batches         a hand-written DataParallel loop, 3 batches on rank 0 and 2 on rank 1,
//                        then an all_reduce of the epoch's loss
//   loop_batches_end     the same loop, then the end of main
//   skip_batch           rank 1's backward throws half-way through batch 2 (some gradient
//                        buckets already travelling) and it skips to batch 3
//   skip_batch_early     the same, its backward throwing before any gradient is ready
//   stuck                rank 1 sleeps outside dist while rank 0 waits (run with a short
//                        XGRAD_DISTRIBUTED_TIMEOUT)
#include <chrono>
#include <cstdio>
#include <exception>
#include <string>
#include <thread>

#include <xgrad/distributed.hpp>
#include <xgrad/xgrad.hpp>

using namespace xgrad;

namespace {

void corrupt_batch_on_rank_1(int& argc, char**& argv) {
  auto mpi = distributed::init(argc, argv);
  Tensor t = ones({4});
  distributed::all_reduce(t);  // every rank gets here
  if (distributed::rank() == 1) throw Error("rank 1 found a corrupt batch at step 3");
  distributed::all_reduce(t);  // the others wait here for rank 1, which never comes
  distributed::barrier();
}

struct Net : nn::Module {
  nn::Linear hidden{4, 3}, head{3, 1};
  // Called with the hidden activation, so a test can hook its gradient (ready once the head's
  // gradients are, before the hidden layer's).
  std::function<void(Tensor&)> on_hidden;
  Net() {
    register_module("hidden", hidden);
    register_module("head", head);
  }
  Tensor forward(const Tensor& x) {
    Tensor h = hidden(x).tanh();
    if (on_hidden) on_hidden(h);
    return head(h);
  }
};

// Every rank's data: `batches` batches of 4 samples (the same on every rank: only the count
// matters here).
train::DataLoader make_loader(std::int64_t batches) {
  manual_seed(3);
  const Tensor x = randn({4 * batches, 4}), y = randn({4 * batches, 1});
  return train::DataLoader(train::TensorDataset(x, y), train::LoaderOptions().batch_size(4));
}

int fit_batches() {
  Net net;
  distributed::DataParallel ddp(net);
  optim::SGD opt(net.parameters(), optim::SGDOptions(0.1));
  const train::DataLoader loader = make_loader(distributed::rank() == 0 ? 3 : 2);
  const train::Forward forward = [&](const train::Batch& b) { return net.forward(b.inputs); };
  const train::Loss mse = [](const Tensor& p, const Tensor& t) { return nn::mse_loss(p, t); };
  try {
    train::fit(net, forward, mse, opt, loader,
               train::FitOptions().epochs(1).verbose(false).process_group(distributed::process_group()));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "rank %d: training failed: %s\n", distributed::rank(), e.what());
    return 1;
  }
  return 0;
}

// One epoch of a hand-written loop; `throw_at` makes rank 1's backward of that batch throw,
// from a hook on the hidden activation (`early`: on the output, before any gradient is ready).
int loop(std::int64_t batches, bool then_all_reduce, std::int64_t throw_at = -1, bool early = false) {
  Net net;
  distributed::DataParallel ddp(net, distributed::DataParallelOptions().bucket_cap_mb(1e-6));  // a bucket per parameter
  optim::SGD opt(net.parameters(), optim::SGDOptions(0.1));
  const train::DataLoader loader = make_loader(batches);
  std::int64_t index = 0;
  const auto fail = [&](const Tensor& g) -> Tensor {
    if (distributed::rank() == 1 && index == throw_at) throw Error("rank 1: NaN in the gradient of batch " + std::to_string(index));
    return g;
  };
  if (!early) net.on_hidden = [&](Tensor& h) { h.register_hook(fail); };
  double epoch_loss = 0;
  for (const train::Batch& b : loader.epoch(0)) {
    ++index;
    opt.zero_grad();
    Tensor out = net.forward(b.inputs);
    if (early) out.register_hook(fail);
    const Tensor loss = nn::mse_loss(out, b.targets);
    try {
      loss.backward();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "skipping batch %ld: %s\n", static_cast<long>(index), e.what());
      continue;
    }
    opt.step();
    epoch_loss += loss.item();
  }
  if (then_all_reduce) {
    Tensor total = full({1}, epoch_loss);
    distributed::all_reduce(total);
  }
  return 0;
}

int run(const std::string& mode) {
  const bool first = distributed::rank() == 0;
  if (mode == "caught_inside") {
    Tensor t = ones({4});
    distributed::all_reduce(t);
    try {
      if (!first) throw Error("rank 1 found a corrupt batch at step 3");
      distributed::all_reduce(t);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "training failed: %s\n", e.what());
      return 1;
    }
    return 0;
  }
  if (mode == "caught_inside_backward") {
    Net net;
    distributed::DataParallel ddp(net);
    try {
      if (!first) throw Error("rank 1 found a corrupt batch at step 3");
      net.forward(ones({2, 4})).sum().backward();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "training failed: %s\n", e.what());
      return 1;
    }
    return 0;
  }
  if (mode == "fit_batches") return fit_batches();
  if (mode == "loop_batches") return loop(first ? 3 : 2, true);
  if (mode == "loop_batches_end") return loop(first ? 3 : 2, false);
  if (mode == "skip_batch") return loop(3, true, 2);
  if (mode == "skip_batch_early") return loop(3, true, 2, true);
  if (mode == "stuck") {
    if (!first) std::this_thread::sleep_for(std::chrono::seconds(40));
    Tensor t = ones({1});
    distributed::all_reduce(t);
    return 0;
  }
  std::fprintf(stderr, "fail_rank: unknown mode '%s'\n", mode.c_str());
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "escape";
  if (mode == "caught") {
    try {
      corrupt_batch_on_rank_1(argc, argv);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "training failed: %s\n", e.what());
      return 1;
    }
    return 0;
  }
  if (mode == "escape") {
    corrupt_batch_on_rank_1(argc, argv);
    return 0;
  }
  distributed::Context mpi(argc, argv);
  return run(mode);
}
