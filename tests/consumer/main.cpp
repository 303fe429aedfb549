// Builds a small graph with an installed xgrad and checks that backward reached the weight.
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
  return 0;
}
