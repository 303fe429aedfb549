// Fits a noisy curve, y = sin(3x) + 0.1·noise on [-1, 1], with a two-layer tanh network
// written with core ops only, trained by plain gradient descent done by hand.
//
//   build/release/examples/fit_curve [--epochs 2000] [--lr 0.1] [--hidden 32] [--seed 0]
#include <cmath>
#include <cstdint>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/core.h>

#include <xgrad/xgrad.hpp>

using namespace xgrad;

int main(int argc, char** argv) {
  int epochs = 2000;
  double lr = 0.1;
  std::int64_t hidden = 32;
  std::uint64_t seed = 0;
  CLI::App app{"Fit y = sin(3x) + noise with a two-layer tanh network"};
  app.add_option("--epochs", epochs, "full-batch gradient steps")->capture_default_str();
  app.add_option("--lr", lr, "learning rate")->capture_default_str();
  app.add_option("--hidden", hidden, "hidden units")->capture_default_str();
  app.add_option("--seed", seed, "random seed")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  manual_seed(seed);

  // Data: n points evenly spaced on [-1, 1].                          x, y: (n, 1)
  const std::int64_t n = 256;
  std::vector<float> xs(n), clean(n);
  for (std::int64_t i = 0; i < n; ++i) {
    xs[i] = -1.0f + 2.0f * static_cast<float>(i) / static_cast<float>(n - 1);
    clean[i] = std::sin(3.0f * xs[i]);
  }
  Tensor x = from_vector(xs, {n, 1});
  Tensor noise = randn({n, 1}) * 0.1;
  Tensor y = from_vector(clean, {n, 1}) + noise;

  // Parameters: 1 → hidden → 1.                    w1: (1, H)  b1: (H)  w2: (H, 1)  b2: (1)
  Tensor w1 = randn({1, hidden}).requires_grad_();
  Tensor b1 = zeros({hidden}).requires_grad_();
  Tensor w2 = (randn({hidden, 1}) * (1.0 / std::sqrt(static_cast<double>(hidden)))).requires_grad_();
  Tensor b2 = zeros({1}).requires_grad_();
  std::vector<Tensor> params{w1, b1, w2, b2};  // handles alias: updating p updates w1, ...

  auto model = [&](const Tensor& input) { return matmul(tanh(matmul(input, w1) + b1), w2) + b2; };

  const int print_every = epochs >= 10 ? epochs / 10 : 1;
  for (int epoch = 1; epoch <= epochs; ++epoch) {
    Tensor loss = mean(pow(model(x) - y, 2.0));
    loss.backward();
    {
      NoGradGuard no_grad;  // the update itself must not be recorded
      for (Tensor& p : params) {
        p.add_(p.grad(), -lr);
        p.zero_grad();
      }
    }
    if (epoch == 1 || epoch % print_every == 0) {
      fmt::print("epoch {:5d}  loss {:.5f}\n", epoch, loss.item());
    }
    if (!std::isfinite(loss.item())) {
      fmt::print(stderr, "the loss diverged; try a smaller --lr\n");
      return 1;
    }
  }

  NoGradGuard no_grad;
  double mse = mean(pow(model(x) - y, 2.0)).item();
  double mean_mse = mean(pow(y - mean(y), 2.0)).item();
  double noise_mse = mean(pow(noise, 2.0)).item();
  fmt::print("final MSE {:.5f}   predicting the mean: {:.5f}   noise alone: {:.5f}\n", mse,
             mean_mse, noise_mse);
  if (!(mse < 0.5 * mean_mse)) {
    fmt::print(stderr, "the network did no better than predicting the mean\n");
    return 1;
  }
  return 0;
}
