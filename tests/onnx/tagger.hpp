#pragma once
// The xgrad twin of Tagger in tests/fixtures/gen_onnx_fixtures.py (same names, shapes and
// options), which loads the weights PyTorch's exporter wrote.
#include <xgrad/xgrad.hpp>

namespace xgrad_test {

struct TorchTagger : xgrad::nn::Module {
  xgrad::nn::Embedding embedding{20, 5};
  xgrad::nn::LSTM lstm{xgrad::nn::LSTMOptions(5, 6).num_layers(2).bidirectional(true).batch_first(true)};
  xgrad::nn::GRU gru{xgrad::nn::GRUOptions(12, 4).batch_first(true)};
  xgrad::nn::RNN rnn{xgrad::nn::RNNOptions(4, 3).nonlinearity(xgrad::nn::RNNNonlinearity::relu).batch_first(true)};
  xgrad::nn::Linear fc{3, 2};
  TorchTagger() {
    register_module("embedding", embedding);
    register_module("lstm", lstm);
    register_module("gru", gru);
    register_module("rnn", rnn);
    register_module("fc", fc);
  }
  xgrad::Tensor forward(const xgrad::Tensor& ids) {
    xgrad::Tensor y = lstm(embedding(ids)).output;
    y = gru(y).output;
    y = rnn(y).output;
    return fc(xgrad::nn::last_step(y, {}, /*batch_first=*/true));
  }
};

}  // namespace xgrad_test
