// Compile test of the public spellings from an installed xgrad: one umbrella header per module,
// <xgrad/xgrad.hpp> for all of them, linked through the per-module targets xgrad::core,
// xgrad::nn, xgrad::optim and xgrad::train. The deprecated <xgrad/<module>/<module>.hpp>
// forward to them, and <xgrad/nn/rnn.hpp> and <xgrad/nn/rnn_cell.hpp> to recurrent.hpp and
// cells.hpp: they must keep compiling until they are removed (CHANGELOG.md).
#include <xgrad/core.hpp>
#include <xgrad/nn.hpp>
#include <xgrad/optim.hpp>
#include <xgrad/train.hpp>
#include <xgrad/xgrad.hpp>

#include <xgrad/nn/nn.hpp>
#include <xgrad/nn/rnn.hpp>
#include <xgrad/nn/rnn_cell.hpp>
#include <xgrad/optim/optim.hpp>
#include <xgrad/train/train.hpp>

#include <cstdio>

int main() {
  using namespace xgrad;
  manual_seed(0);
  nn::Linear fc(3, 1);                                              // xgrad::nn
  optim::SGD opt(fc.parameters(), optim::SGDOptions(0.1));         // xgrad::optim
  train::BatchSampler batches(8, 4, /*shuffle=*/false, /*seed=*/0);  // xgrad::train
  Tensor loss = fc(ones({8, 3})).sum();                             // xgrad::core
  loss.backward();
  opt.step();
  const bool ok = batches.num_batches() == 2 && fc.weight.grad().defined();
  std::printf("spellings: one umbrella header and one target per module %s\n", ok ? "OK" : "FAILED");
  return ok ? 0 : 1;
}
