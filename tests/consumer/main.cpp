// Builds a small graph with an installed xgrad and checks that backward reached the weight;
// then trains a Linear layer for a few steps with optim and train, the other installed libraries.
#include <fmt/core.h>

#include <xgrad/xgrad.hpp>

using namespace xgrad;

int main() {
  manual_seed(0);
  Tensor w = randn({3, 4}).requires_grad_();
  Tensor loss = tanh(matmul(randn({5, 3}), w)).sum();
  loss.backward();

  if (!w.grad().defined() || w.grad().shape() != Shape{3, 4} || has_nonfinite(w.grad())) {
    fmt::print(stderr, "consumer: expected a finite (3, 4) gradient for w\n");
    return 1;
  }
  fmt::print("loss = {}\nw.grad() = {}\n", loss, w.grad());

  // nn + optim + train: fit y = x·[1, -2] with mini-batches.
  Tensor x = randn({64, 2}), y = matmul(x, from_vector(std::vector<float>{1, -2}, {2, 1}));
  nn::Linear fc(2, 1);
  optim::SGD opt(fc.parameters(), optim::SGDOptions(0.1));
  train::BatchSampler batches(64, 16, /*shuffle=*/true, /*seed=*/0);
  double first = 0, last = 0;
  for (int epoch = 0; epoch < 20; ++epoch) {
    train::ProgressBar bar(fmt::format("epoch {}", epoch), batches.num_batches(),
                           train::ProgressOptions().mode(train::ProgressOptions::Mode::quiet));
    for (const auto& idx : batches.epoch(epoch)) {
      Tensor rows = from_vector(idx, {static_cast<std::int64_t>(idx.size())});
      Tensor batch_loss = nn::mse_loss(fc(index_select(x, 0, rows)), index_select(y, 0, rows));
      opt.zero_grad();
      batch_loss.backward();
      opt.step();
      bar.update(static_cast<std::int64_t>(idx.size()), {{"loss", batch_loss.item()}});
    }
    (epoch == 0 ? first : last) = bar.finish()[0].second;
  }
  if (!(last < first * 1e-3)) {
    fmt::print(stderr, "consumer: the Linear fit did not converge (loss {} → {})\n", first, last);
    return 1;
  }
  return 0;
}
