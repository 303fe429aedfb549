// dist under mpirun (CTest runs this with 2 and with 4 ranks): collectives, DataParallel
// against one process on the whole batch, no_sync, unused parameters, DistributedSampler,
// and the errors for models or tensors that differ across ranks.
#include <doctest/doctest.h>

#include <xgrad/distributed.hpp>
#include <xgrad/xgrad.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <random>
#include <functional>
#include <memory>
#include <string>
#include <vector>

using namespace xgrad;

namespace {

double max_abs_diff(const Tensor& a, const Tensor& b) { return max((a - b).abs()).item(); }

// The model of the equivalence tests: a 2-layer LSTM (dropout off) and a linear head on the
// last step.
struct Net : nn::Module {
  nn::LSTM lstm{nn::LSTMOptions(3, 5).num_layers(2).batch_first(true)};
  nn::Linear head{5, 2};
  Net() {
    register_module("lstm", lstm);
    register_module("head", head);
  }
  Tensor forward(const Tensor& x) { return head(lstm(x).output.select(1, -1)); }
};

Tensor batch_loss(Net& net, const Tensor& x, const Tensor& y) { return nn::mse_loss(net.forward(x), y); }

using MakeOptimizer = std::function<std::unique_ptr<optim::Optimizer>(std::vector<Tensor>)>;

// k steps of one process on global batches of B, and of this rank on its B / W share of the
// same batches (DistributedSampler), from the same initial weights: the parameters must agree.
void check_equivalence(DType dtype, const MakeOptimizer& make_optimizer, double tolerance) {
  const int W = distributed::world_size();
  const std::int64_t B = 8, steps = 3, T = 6;
  manual_seed(42);
  const Tensor x = randn({B * steps, T, 3}, dtype), y = randn({B * steps, 2}, dtype);
  manual_seed(7);
  Net reference;
  reference.to(dtype);
  // Rank 0's initial weights reach every rank through DataParallel: the others start elsewhere.
  manual_seed(distributed::rank() == 0 ? 7 : 1000 + static_cast<std::uint64_t>(distributed::rank()));
  Net net;
  net.to(dtype);
  distributed::DataParallel ddp(net, distributed::DataParallelOptions().bucket_cap_mb(0.001));  // several buckets
  auto ref_opt = make_optimizer(reference.parameters());
  auto opt = make_optimizer(net.parameters());
  const train::BatchSampler whole(B * steps, B, /*shuffle=*/true, /*seed=*/3);
  const distributed::DistributedSampler share(B * steps, distributed::DistributedSamplerOptions().batch_size(B / W).shuffle(true).seed(3));
  REQUIRE(share.num_batches() == steps);
  const auto whole_batches = whole.epoch(0), my_batches = share.epoch(0);
  for (std::int64_t s = 0; s < steps; ++s) {
    const Tensor all = from_vector(whole_batches[static_cast<std::size_t>(s)], {B});
    const Tensor mine = from_vector(my_batches[static_cast<std::size_t>(s)], {B / W});
    ref_opt->zero_grad();
    batch_loss(reference, x.index_select(0, all), y.index_select(0, all)).backward();
    ref_opt->step();
    opt->zero_grad();
    batch_loss(net, x.index_select(0, mine), y.index_select(0, mine)).backward();
    opt->step();
  }
  const auto ref_params = reference.named_parameters();
  const auto params = net.named_parameters();
  REQUIRE(ref_params.size() == params.size());
  for (std::size_t i = 0; i < params.size(); ++i) {
    INFO(params[i].first);
    CHECK(max_abs_diff(params[i].second, ref_params[i].second) <= tolerance);
  }
  CHECK(ddp.last_stats().buckets > 1);
}

}  // namespace

TEST_CASE("rank and world size come from mpirun") {
  CHECK(distributed::initialized());
  CHECK(distributed::rank() >= 0);
  CHECK(distributed::rank() < distributed::world_size());
  distributed::barrier();
}

TEST_CASE("all_reduce sums, averages, takes the max and min, for f32, f64 and i64") {
  const int W = distributed::world_size();
  const double r = distributed::rank();
  const double sum_ranks = W * (W - 1) / 2.0;
  for (DType dtype : {DType::f32, DType::f64, DType::i64}) {
    INFO(dtype_name(dtype));
    Tensor t = tensor({r, 2 * r, 1.0}, dtype);
    distributed::all_reduce(t, distributed::ReduceOp::sum);
    CHECK(t.to_vector<double>() == std::vector<double>{sum_ranks, 2 * sum_ranks, static_cast<double>(W)});
    Tensor m = tensor({r, -r}, dtype);
    distributed::all_reduce(m, distributed::ReduceOp::max);
    CHECK(m.to_vector<double>() == std::vector<double>{W - 1.0, 0.0});
    Tensor n = tensor({r, -r}, dtype);
    distributed::all_reduce(n, distributed::ReduceOp::min);
    CHECK(n.to_vector<double>() == std::vector<double>{0.0, 1.0 - W});
  }
  Tensor mean = tensor({r, 1.0}, DType::f64);
  distributed::all_reduce(mean, distributed::ReduceOp::mean);
  CHECK(mean.to_vector<double>() == std::vector<double>{sum_ranks / W, 1.0});
  Tensor ints = tensor({1.0}, DType::i64);
  CHECK_THROWS_WITH_AS(distributed::all_reduce(ints, distributed::ReduceOp::mean), "distributed::all_reduce: mean needs a floating dtype, got i64",
                       Error);
}

TEST_CASE("all_reduce writes through a strided view into its base") {
  const int W = distributed::world_size();
  Tensor base = zeros({2, 3}, DType::f64);
  Tensor column = base.select(1, 1);  // strided: elements 1 and 4
  column.fill_(1.0);
  distributed::all_reduce(column, distributed::ReduceOp::sum);
  CHECK(base.to_vector<double>() == std::vector<double>{0, static_cast<double>(W), 0, 0, static_cast<double>(W), 0});
}

TEST_CASE("broadcast copies the root's values; all_gather stacks every rank's tensor in rank order") {
  const int W = distributed::world_size();
  Tensor t = full({2, 2}, distributed::rank() + 10.0);
  distributed::broadcast(t, W - 1);
  CHECK(t.to_vector<double>() == std::vector<double>(4, W - 1 + 10.0));
  const Tensor g = distributed::all_gather(tensor({static_cast<double>(distributed::rank()), 1.0}, DType::i64));
  CHECK(g.shape() == Shape{W, 2});
  for (int r = 0; r < W; ++r) CHECK(g.at({r, 0}) == r);
  Tensor x = full({1}, 1.0);
  CHECK_THROWS_WITH_AS(distributed::broadcast(x, W), doctest::Contains(("distributed::broadcast: root " + std::to_string(W) + " is not a rank").c_str()), Error);
}

TEST_CASE("a collective on tensors that differ across ranks throws on every rank, naming the shapes") {
  const int W = distributed::world_size();
  if (W < 2) return;
  Tensor t = zeros({distributed::rank() == 1 ? 3 : 2});
  const std::string expected = "distributed::all_reduce: the ranks passed tensors of different shapes or dtypes (rank " +
                               std::to_string(distributed::rank()) + " has (" + (distributed::rank() == 1 ? "3" : "2") + ") float32)";
  CHECK_THROWS_WITH_AS(distributed::all_reduce(t), doctest::Contains(expected.c_str()), Error);
  Tensor d = zeros({2}, distributed::rank() == 0 ? DType::f64 : DType::f32);
  CHECK_THROWS_AS(distributed::broadcast(d), Error);
  // The ranks are still in step afterwards.
  Tensor ok = ones({1});
  distributed::all_reduce(ok);
  CHECK(ok.item() == W);
}

TEST_CASE("DataParallel on B / N per rank equals one process on B: LSTM, SGD with momentum, f64 to 1e-12 and f32 to 1e-6") {
  const MakeOptimizer sgd = [](std::vector<Tensor> p) {
    return std::make_unique<optim::SGD>(std::move(p), optim::SGDOptions(0.1).momentum(0.9));
  };
  check_equivalence(DType::f64, sgd, 1e-12);
  check_equivalence(DType::f32, sgd, 1e-6);
}

TEST_CASE("DataParallel on B / N per rank equals one process on B: LSTM, Adam, f64 to 1e-12 and f32 to 1e-6") {
  const MakeOptimizer adam = [](std::vector<Tensor> p) { return std::make_unique<optim::Adam>(std::move(p), optim::AdamOptions(1e-2)); };
  check_equivalence(DType::f64, adam, 1e-12);
  check_equivalence(DType::f32, adam, 1e-6);
}

TEST_CASE("no_sync accumulates locally; the next backward averages everything, as one big step") {
  const int W = distributed::world_size();
  const std::int64_t B = 4 * W;
  manual_seed(5);
  const Tensor x = randn({2 * B, 4, 3}, DType::f64), y = randn({2 * B, 2}, DType::f64);
  manual_seed(11);
  Net reference;
  reference.to(DType::f64);
  manual_seed(11);
  Net net;
  net.to(DType::f64);
  distributed::DataParallel ddp(net);
  // One process: two micro-batches of B accumulated.
  batch_loss(reference, x.narrow(0, 0, B), y.narrow(0, 0, B)).backward();
  batch_loss(reference, x.narrow(0, B, B), y.narrow(0, B, B)).backward();
  // Each rank: its quarter of each micro-batch, the first under no_sync.
  const std::int64_t b = B / W, at = distributed::rank() * b;
  {
    auto guard = ddp.no_sync();
    batch_loss(net, x.narrow(0, at, b), y.narrow(0, at, b)).backward();
  }
  batch_loss(net, x.narrow(0, B + at, b), y.narrow(0, B + at, b)).backward();
  const auto ref = reference.named_parameters(), mine = net.named_parameters();
  for (std::size_t i = 0; i < mine.size(); ++i) {
    INFO(mine[i].first);
    CHECK(max_abs_diff(mine[i].second.grad(), ref[i].second.grad()) <= 1e-12);
  }
}

TEST_CASE("a parameter unused on some ranks gets the mean with zeros for them; unused everywhere keeps no gradient") {
  const int W = distributed::world_size();
  struct Three : nn::Module {
    Tensor a, b, never;
    Three() {
      a = register_parameter("a", tensor({0.5, -1.0}, DType::f64));
      b = register_parameter("b", tensor({2.0, 1.0}, DType::f64));
      never = register_parameter("never", tensor({1.0}, DType::f64));
    }
  } model;
  distributed::DataParallel ddp(model);
  const Tensor x = tensor({1.0, 2.0}, DType::f64);
  Tensor loss = (model.a * x).sum();
  if (distributed::rank() == 0) loss = loss + 3.0 * (model.b * x).sum();  // b only on rank 0
  loss.backward();
  CHECK(model.a.grad().to_vector<double>() == std::vector<double>{1.0, 2.0});
  CHECK(model.b.grad().to_vector<double>() == std::vector<double>{3.0 / W, 6.0 / W});
  CHECK_FALSE(model.never.grad().defined());
  CHECK(ddp.last_stats().buckets == 1);
}

namespace {
const std::string kModelDiffers = "distributed::DataParallel: the model differs across ranks: ";
const std::string kInOrder =
    " (the options, then the parameters, then the buffers, in registration order); every rank must build the same model "
    "with the same options";

// Two parameters of the same size, either of which a rank may freeze.
struct Pair : nn::Module {
  Tensor a, b;
  Pair(bool freeze_a, bool freeze_b) {
    a = register_parameter("a", tensor({1.0, 2.0}, DType::f64), !freeze_a);
    b = register_parameter("b", tensor({3.0, 4.0}, DType::f64), !freeze_b);
  }
};

// The ranks are still in step after a refused DataParallel.
void check_in_step() {
  Tensor ok = ones({1});
  distributed::all_reduce(ok);
  CHECK(ok.item() == distributed::world_size());
}
}  // namespace

TEST_CASE("DataParallel refuses models that differ across ranks, naming the first difference on every rank") {
  if (distributed::world_size() < 2) return;
  nn::Linear odd(3, distributed::rank() == 1 ? 5 : 4);
  CHECK_THROWS_WITH_AS(distributed::DataParallel{odd},
                       (kModelDiffers + "rank 1 has parameter 'weight' (5, 3) float32 requires_grad where rank 0 has "
                                        "parameter 'weight' (4, 3) float32 requires_grad" + kInOrder).c_str(),
                       Error);
  check_in_step();
}

TEST_CASE("DataParallel refuses ranks that freeze different parameters, even of the same size") {
  if (distributed::world_size() < 2) return;
  const bool odd = distributed::rank() % 2 == 1;
  Pair swapped(/*freeze_a=*/!odd, /*freeze_b=*/odd);  // gradients of a and b would be averaged together
  CHECK_THROWS_WITH_AS(distributed::DataParallel{swapped},
                       (kModelDiffers + "rank 1 has parameter 'a' (2) float64 requires_grad where rank 0 has parameter 'a' "
                                        "(2) float64 frozen (requires_grad false)" + kInOrder).c_str(),
                       Error);
  check_in_step();
  Pair one_frozen(false, distributed::rank() == 1);  // the buckets would differ in size
  CHECK_THROWS_WITH_AS(distributed::DataParallel{one_frozen},
                       (kModelDiffers + "rank 1 has parameter 'b' (2) float64 frozen (requires_grad false) where rank 0 has "
                                        "parameter 'b' (2) float64 requires_grad" + kInOrder).c_str(),
                       Error);
  check_in_step();
  Pair alike(true, false);  // the same frozen parameter everywhere is fine
  distributed::DataParallel ddp(alike);
  (alike.b * (distributed::rank() + 1.0)).sum().backward();
  CHECK(alike.b.grad().to_vector<double>() == std::vector<double>(2, (distributed::world_size() + 1) / 2.0));
  CHECK_FALSE(alike.a.grad().defined());
}

TEST_CASE("DataParallel refuses ranks whose bucket size differs, naming it") {
  if (distributed::world_size() < 2) return;
  nn::Linear layer(3, 4);
  const auto options = distributed::DataParallelOptions().bucket_cap_mb(distributed::rank() == 1 ? 0.5 : 25);
  CHECK_THROWS_WITH_AS(distributed::DataParallel(layer, options),
                       (kModelDiffers + "rank 1 has bucket_cap_mb 0.5 where rank 0 has bucket_cap_mb 25" + kInOrder).c_str(),
                       Error);
  check_in_step();
}

TEST_CASE("distributed::set_timeout takes a positive number of seconds") {
  const double before = distributed::timeout();
  CHECK(before > 0);
  distributed::set_timeout(30);
  CHECK(distributed::timeout() == 30);
  CHECK_THROWS_WITH_AS(distributed::set_timeout(0), "distributed::set_timeout: the timeout must be a positive number of seconds, got 0", Error);
  CHECK_THROWS_AS(distributed::set_timeout(std::nan("")), Error);
  distributed::set_timeout(before);
}

TEST_CASE("DistributedSampler: disjoint shares covering every sample once, the same order as one process, equal batch counts") {
  const int W = distributed::world_size();
  for (std::int64_t n : {0, 1, 7, 8, 13, 24}) {
    for (bool shuffle : {false, true}) {
      INFO("n = " << n << ", shuffle " << shuffle);
      const distributed::DistributedSampler s(n, distributed::DistributedSamplerOptions().batch_size(3).shuffle(shuffle).seed(9));
      for (std::int64_t epoch : {0, 1}) {
        std::vector<std::int64_t> mine;
        for (const auto& batch : s.epoch(epoch)) mine.insert(mine.end(), batch.begin(), batch.end());
        REQUIRE(static_cast<std::int64_t>(mine.size()) == s.num_samples());
        if (n == 0) continue;
        // Every rank has the same number of samples and batches (all_gather needs equal shapes).
        const Tensor all = distributed::all_gather(from_vector(mine, {s.num_samples()}));
        std::vector<int> seen(static_cast<std::size_t>(n), 0);
        for (std::int64_t v : all.to_vector<std::int64_t>()) ++seen[static_cast<std::size_t>(v)];
        // Every sample at least once; the shares are evened by repeating the order from its start.
        const auto order = train::BatchSampler(n, n, shuffle, 9).epoch(epoch).front();
        std::vector<int> expected(static_cast<std::size_t>(n), 0);
        for (std::int64_t i = 0; i < s.num_samples() * W; ++i) ++expected[static_cast<std::size_t>(order[static_cast<std::size_t>(i % n)])];
        CHECK(std::count(seen.begin(), seen.end(), 0) == 0);
        CHECK(seen == expected);
        if (n % W == 0) CHECK(std::count(seen.begin(), seen.end(), 1) == n);
        // Interleaved: position i of the one-process order goes to rank i % W.
        for (std::size_t i = 0; i < mine.size(); ++i)
          CHECK(mine[i] == order[(static_cast<std::size_t>(distributed::rank()) + i * static_cast<std::size_t>(W)) % static_cast<std::size_t>(n)]);
      }
      // Uneven shares for evaluation: no sample twice.
      const distributed::DistributedSampler e(n, distributed::DistributedSamplerOptions().batch_size(3).even(false));
      Tensor count = full({1}, static_cast<double>(e.num_samples()), DType::i64);
      distributed::all_reduce(count);
      CHECK(count.item<std::int64_t>() == n);
      const distributed::DistributedSampler d(n, distributed::DistributedSamplerOptions().batch_size(3).drop_last(true));
      CHECK(d.num_samples() == n / W);
    }
  }
  CHECK_THROWS_WITH_AS(distributed::DistributedSampler(4, distributed::DistributedSamplerOptions().batch_size(0)),
                       "distributed::DistributedSampler: batch_size must be positive, got 0", Error);
  CHECK_THROWS_WITH_AS(distributed::DistributedSampler(4, distributed::DistributedSamplerOptions().rank(5).world_size(2)),
                       "distributed::DistributedSampler: rank 5 is not below the world size 2", Error);
}

namespace {

// A directory every rank agrees on (rank 0 draws its name), removed by rank 0 at the end.
struct SharedDir {
  std::filesystem::path path;
  SharedDir() {
    Tensor id = full({1}, distributed::rank() == 0 ? static_cast<double>(std::random_device{}() % 1000000000u) : 0.0, DType::i64);
    distributed::broadcast(id);
    path = std::filesystem::temp_directory_path() / ("xgrad_distributed_test_" + std::to_string(id.item<std::int64_t>()));
    if (distributed::rank() == 0) std::filesystem::create_directories(path);
    distributed::barrier();
  }
  ~SharedDir() {
    distributed::barrier();
    if (distributed::rank() == 0) std::filesystem::remove_all(path);
  }
  std::string file(const std::string& name) const { return (path / name).string(); }
};

struct Fitted {
  train::History history;
  NamedTensors params;
};

// fit for `epochs` on 24 samples: one process on batches of 8, or this rank on its share with
// DataParallel and the job's process group; validation on 10 samples (uneven shares).
Fitted fit_net(bool distributed, std::int64_t epochs, std::uint64_t init_seed, const std::string& checkpoint = "",
               std::vector<std::shared_ptr<train::Callback>> callbacks = {}) {
  manual_seed(21);
  const Tensor x = randn({24, 5, 3}, DType::f64), y = randn({24, 2}, DType::f64);
  const Tensor vx = randn({10, 5, 3}, DType::f64), vy = randn({10, 2}, DType::f64);
  manual_seed(init_seed);
  Net net;
  net.to(DType::f64);
  std::unique_ptr<distributed::DataParallel> ddp;
  if (distributed) ddp = std::make_unique<distributed::DataParallel>(net);
  optim::Adam opt(net.parameters(), optim::AdamOptions(1e-2));
  const int W = distributed ? distributed::world_size() : 1;
  const auto sampler = [&](std::int64_t n, std::int64_t batch, bool even) -> std::shared_ptr<const train::Sampler> {
    if (!distributed) return std::make_shared<train::BatchSampler>(n, batch, /*shuffle=*/even, /*seed=*/4);
    return std::make_shared<distributed::DistributedSampler>(n, distributed::DistributedSamplerOptions().batch_size(batch / W).shuffle(even).seed(4).even(even));
  };
  const train::DataLoader loader(train::TensorDataset(x, y), sampler(24, 8, true));
  const train::DataLoader val(train::TensorDataset(vx, vy), sampler(10, W * 3, false));
  const train::Forward forward = [&](const train::Batch& b) { return net.forward(b.inputs); };
  const train::Loss mse = [](const Tensor& p, const Tensor& t) { return nn::mse_loss(p, t); };
  train::FitOptions options = train::FitOptions().epochs(epochs).validation(&val).metrics({"mae"}).verbose(false)
                                  .callbacks(std::move(callbacks));
  if (!checkpoint.empty()) options.checkpoint(checkpoint).resume(true);
  if (distributed) options.process_group(distributed::process_group());
  Fitted out;
  out.history = train::fit(net, forward, mse, opt, loader, options);
  for (const auto& [name, p] : net.named_parameters()) out.params.emplace_back(name, p.clone());
  return out;
}

}  // namespace

TEST_CASE("fit with DataParallel, DistributedSampler and the process group equals one process's fit, logs included") {
  const Fitted one = fit_net(false, 2, 8), many = fit_net(true, 2, distributed::rank() == 0 ? 8 : 99);
  for (std::size_t i = 0; i < one.params.size(); ++i) {
    INFO(one.params[i].first);
    CHECK(max_abs_diff(many.params[i].second, one.params[i].second) <= 1e-12);
  }
  for (const char* name : {"loss", "mae", "val_loss", "val_mae"}) {
    INFO(name);
    const auto a = one.history.values(name), b = many.history.values(name);
    REQUIRE(a.size() == b.size());
    for (std::size_t e = 0; e < a.size(); ++e) CHECK(std::abs(a[e] - b[e]) <= 1e-12 * std::max(1.0, std::abs(a[e])));
  }
}

TEST_CASE("distributed fit: only rank 0 writes files; every rank resumes from the same checkpoint") {
  SharedDir dir;
  const std::string rank_log = dir.file("log_rank" + std::to_string(distributed::rank()) + ".csv");
  const std::string best = dir.file("best_rank" + std::to_string(distributed::rank()) + ".safetensors");
  const Fitted straight = fit_net(true, 3, 8);
  fit_net(true, 1, 8, dir.file("state.safetensors"),
          {std::make_shared<train::CsvLog>(rank_log), std::make_shared<train::ModelCheckpoint>(best)});
  distributed::barrier();
  CHECK(std::filesystem::exists(rank_log) == (distributed::rank() == 0));
  CHECK(std::filesystem::exists(best) == (distributed::rank() == 0));
  // A new job (other initial weights) resumes after epoch 1 and ends where the straight run did.
  const Fitted resumed = fit_net(true, 3, 1234 + static_cast<std::uint64_t>(distributed::rank()), dir.file("state.safetensors"));
  for (std::size_t i = 0; i < straight.params.size(); ++i) {
    INFO(straight.params[i].first);
    CHECK(max_abs_diff(resumed.params[i].second, straight.params[i].second) <= 1e-12);
  }
  CHECK(resumed.history.values("loss") == straight.history.values("loss"));
}

TEST_CASE("dist's options are XGRAD_ARG options: chained setters, getters, defaults") {
  const auto dp = distributed::DataParallelOptions().bucket_cap_mb(4).overlap(false);
  CHECK(dp.bucket_cap_mb() == 4.0);
  CHECK_FALSE(dp.overlap());
  CHECK(distributed::DataParallelOptions().bucket_cap_mb() == 25.0);
  const auto s = distributed::DistributedSamplerOptions().batch_size(16).shuffle(true).seed(7).even(false).rank(1).world_size(3);
  CHECK(s.batch_size() == 16);
  CHECK(s.shuffle());
  CHECK(s.seed() == 7);
  CHECK_FALSE(s.even());
  CHECK(s.rank() == 1);
  CHECK(s.world_size() == 3);
  CHECK(distributed::DistributedSamplerOptions().rank() == -1);
}
