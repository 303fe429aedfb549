// Independent models trained in separate threads: each gets exactly the result it gets alone
// (docs/tensors.md, "Threads"). Build with -DXGRAD_SANITIZE_THREAD=ON to run it under
// ThreadSanitizer.
#include <doctest/doctest.h>

#include <xgrad/xgrad.hpp>

#include <thread>
#include <vector>

using namespace xgrad;

namespace {

// A few Adam steps of an LSTM regressor from fixed weights and data; returns the final loss.
double train_lstm(const std::vector<Tensor>& weights, const Tensor& x, const Tensor& y) {
  nn::LSTM lstm(nn::LSTMOptions(3, 8));
  std::vector<Tensor> params = lstm.parameters();
  {
    NoGradGuard no_grad;
    for (std::size_t i = 0; i < params.size(); ++i) params[i].copy_(weights[i]);
  }
  optim::Adam opt(params, optim::AdamOptions(1e-2));
  double loss_value = 0;
  for (int step = 0; step < 20; ++step) {
    opt.zero_grad();
    Tensor loss = nn::mse_loss(lstm(x).output, y);
    loss.backward();
    opt.step();
    loss_value = loss.item();
  }
  return loss_value;
}

}  // namespace

TEST_CASE("two independent models train in two threads exactly as they do alone") {
  manual_seed(5);
  std::vector<Tensor> weights;
  for (const Tensor& p : nn::LSTM(nn::LSTMOptions(3, 8)).parameters()) weights.push_back(p.detach().clone());
  // Big enough for multi-threaded GEMMs in the projection, small enough to be quick.
  const Tensor xa = randn({40, 64, 3}), ya = randn({40, 64, 8});
  const Tensor xb = randn({40, 64, 3}), yb = randn({40, 64, 8});
  const double alone_a = train_lstm(weights, xa, ya), alone_b = train_lstm(weights, xb, yb);
  double together_a = 0, together_b = 0;
  std::thread a([&] { together_a = train_lstm(weights, xa, ya); });
  std::thread b([&] { together_b = train_lstm(weights, xb, yb); });
  a.join();
  b.join();
  CHECK(together_a == alone_a);
  CHECK(together_b == alone_b);
}

TEST_CASE("a graph built on one thread is differentiated and freed on another") {
  // Nodes and tensors come from per-thread caches: one made on a thread that has exited must
  // still be differentiated, released and reused correctly elsewhere.
  Tensor a = full({4}, 0.5).requires_grad_(), b = full({4}, 0.25).requires_grad_();
  Tensor loss, untouched;
  std::thread maker([&] {
    Tensor y = a;
    for (int k = 0; k < 300; ++k) y = tanh(y * a + b);
    loss = y.sum();
    untouched = (y * 2.0).sum();  // a graph nobody differentiates: freed when dropped
  });
  maker.join();
  std::thread user([&] {
    loss.backward();
    untouched = Tensor();
  });
  user.join();
  const std::vector<float> ga = a.grad().to_vector<float>();
  // The same chain on this thread gives the same gradient.
  a.zero_grad();
  b.zero_grad();
  Tensor y = a;
  for (int k = 0; k < 300; ++k) y = tanh(y * a + b);
  y.sum().backward();
  CHECK(a.grad().to_vector<float>() == ga);
  loss = Tensor();
}

TEST_CASE("parallel_for called from two threads at once: each gets all its items") {
  // One caller runs with the pool, the other meanwhile on its own thread; neither waits on the
  // other's items nor loses any.
  const int saved = get_num_threads();
  set_num_threads(2);
  auto caller = [](int which, std::vector<std::int64_t>& sums) {
    for (int round = 0; round < 200; ++round) {
      std::vector<std::int64_t> out(512, 0);
      parallel_for(512, 8, [&](std::int64_t b, std::int64_t e) {
        for (std::int64_t i = b; i < e; ++i) out[static_cast<std::size_t>(i)] = i * which + round;
      });
      std::int64_t s = 0;
      for (std::int64_t v : out) s += v;
      sums.push_back(s);
    }
  };
  std::vector<std::int64_t> sa, sb;
  std::thread a([&] { caller(1, sa); });
  std::thread b([&] { caller(3, sb); });
  a.join();
  b.join();
  REQUIRE(sa.size() == 200);
  REQUIRE(sb.size() == 200);
  for (std::int64_t round = 0; round < 200; ++round) {
    CHECK(sa[static_cast<std::size_t>(round)] == 1 * 511 * 512 / 2 + 512 * round);
    CHECK(sb[static_cast<std::size_t>(round)] == 3 * 511 * 512 / 2 + 512 * round);
  }
  set_num_threads(saved);
}

TEST_CASE("two Transformer encoder layers train in two threads exactly as they do alone") {
  // Attention's batched products, softmax and layer_norm split their work over xgrad's threads:
  // with two models training at once, one at a time gets the pool.
  const int saved = get_num_threads();
  set_num_threads(2);
  manual_seed(9);
  const auto options = nn::TransformerEncoderLayerOptions(16, 4).dim_feedforward(32).dropout(0.0).batch_first(true);
  std::vector<Tensor> weights;
  for (const Tensor& p : nn::TransformerEncoderLayer(options).parameters()) weights.push_back(p.detach().clone());
  const Tensor xa = randn({8, 48, 16}), xb = randn({8, 48, 16});
  auto train = [&](const Tensor& x) {
    nn::TransformerEncoderLayer layer(options);
    std::vector<Tensor> params = layer.parameters();
    {
      NoGradGuard no_grad;
      for (std::size_t i = 0; i < params.size(); ++i) params[i].copy_(weights[i]);
    }
    optim::SGD opt(params, optim::SGDOptions(0.1));
    double loss_value = 0;
    for (int step = 0; step < 5; ++step) {
      opt.zero_grad();
      Tensor y = layer(x);
      Tensor loss = (y * y).mean();
      loss.backward();
      opt.step();
      loss_value = loss.item();
    }
    return loss_value;
  };
  const double alone_a = train(xa), alone_b = train(xb);
  double together_a = 0, together_b = 0;
  std::thread a([&] { together_a = train(xa); });
  std::thread b([&] { together_b = train(xb); });
  a.join();
  b.join();
  set_num_threads(saved);
  CHECK(together_a == alone_a);
  CHECK(together_b == alone_b);
}
