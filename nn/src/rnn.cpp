// RNN, LSTM and GRU: PyTorch's sequence layers, each its cell run by the sequence driver.
#include <xgrad/nn/rnn.hpp>

#include <fmt/format.h>

namespace xgrad::nn {



// --- RNN -----------------------------------------------------------------------------------------

RNN::RNN(const RNNOptions& options)
    : Recurrent(RecurrentOptions::from(options),
                [options](std::int64_t in, std::int64_t hidden) {
                  return std::make_shared<RNNCell>(
                      RNNCellOptions(in, hidden).bias(options.bias()).nonlinearity(options.nonlinearity()));
                }),
      options_(options) {}

RNNOutput RNN::forward(const Tensor& input, const Tensor& h0, const Lengths& lengths) {
  RecurrentOutput r = Recurrent::forward(input, {h0}, lengths);
  return {r.output, r.state[0]};
}

std::string RNN::extra_repr() const {
  return options_repr(options_.nonlinearity() == RNNNonlinearity::relu ? ", nonlinearity=relu" : "", options_.bias());
}

// --- LSTM ----------------------------------------------------------------------------------------

LSTM::LSTM(const LSTMOptions& options)
    : Recurrent(RecurrentOptions::from(options),
                [options](std::int64_t in, std::int64_t hidden) {
                  return std::make_shared<LSTMCell>(
                      LSTMCellOptions(in, hidden).bias(options.bias()).proj_size(options.proj_size()));
                }),
      options_(options) {}

LSTMOutput LSTM::forward(const Tensor& input, const LSTMState& state, const Lengths& lengths) {
  RecurrentOutput r = Recurrent::forward(input, {state.h, state.c}, lengths);
  return {r.output, {r.state[0], r.state[1]}};
}

std::string LSTM::extra_repr() const {
  return options_repr(options_.proj_size() != 0 ? fmt::format(", proj_size={}", options_.proj_size()) : "",
                      options_.bias());
}

// --- GRU -----------------------------------------------------------------------------------------

GRU::GRU(const GRUOptions& options)
    : Recurrent(RecurrentOptions::from(options),
                [options](std::int64_t in, std::int64_t hidden) {
                  return std::make_shared<GRUCell>(
                      GRUCellOptions(in, hidden).bias(options.bias()).reset_after(options.reset_after()));
                }),
      options_(options) {}

RNNOutput GRU::forward(const Tensor& input, const Tensor& h0, const Lengths& lengths) {
  RecurrentOutput r = Recurrent::forward(input, {h0}, lengths);
  return {r.output, r.state[0]};
}

std::string GRU::extra_repr() const {
  return options_repr(options_.reset_after() ? "" : ", reset_after=false", options_.bias());
}

}  // namespace xgrad::nn
