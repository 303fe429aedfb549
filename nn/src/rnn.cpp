// RNN, LSTM and GRU: PyTorch's sequence layers, each its cell run by the sequence driver.
// The layers add only their options: running, states and outputs are the driver's.
#include <xgrad/nn/recurrent.hpp>

#include <fmt/format.h>

namespace xgrad::nn {

RNN::RNN(const RNNOptions& options)
    : Recurrent(RecurrentOptions::from(options),
                [options](std::int64_t in, std::int64_t hidden) {
                  return std::make_shared<RNNCell>(
                      RNNCellOptions(in, hidden).bias(options.bias()).nonlinearity(options.nonlinearity()));
                }),
      options_(options) {
  describe("RNN", options.nonlinearity() == RNNNonlinearity::relu ? ", nonlinearity=relu" : "", options.bias());
}

LSTM::LSTM(const LSTMOptions& options)
    : Recurrent(RecurrentOptions::from(options),
                [options](std::int64_t in, std::int64_t hidden) {
                  return std::make_shared<LSTMCell>(
                      LSTMCellOptions(in, hidden).bias(options.bias()).proj_size(options.proj_size()));
                }),
      options_(options) {
  describe("LSTM", options.proj_size() != 0 ? fmt::format(", proj_size={}", options.proj_size()) : "", options.bias());
}

GRU::GRU(const GRUOptions& options)
    : Recurrent(RecurrentOptions::from(options),
                [options](std::int64_t in, std::int64_t hidden) {
                  return std::make_shared<GRUCell>(
                      GRUCellOptions(in, hidden).bias(options.bias()).reset_after(options.reset_after()));
                }),
      options_(options) {
  describe("GRU", options.reset_after() ? "" : ", reset_after=false", options.bias());
}

}  // namespace xgrad::nn
