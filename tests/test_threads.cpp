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
