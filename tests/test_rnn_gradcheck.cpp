// Backpropagation through time against central differences (f64): every cell alone, and every
// sequence layer in each configuration of the driver, with respect to the input, the
// initial state and the parameters.
#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <vector>

#include <xgrad/xgrad.hpp>

#include "rnn_test_util.hpp"

using namespace xgrad;
using rnn_test::builtin_parameter_slots;
using rnn_test::gradcheck_with_parameters;

namespace {

constexpr std::int64_t T = 3, B = 2, I = 2, H = 2, P = 1;

// Parameter slots of every cell of a sequence layer.
std::vector<Tensor*> layer_parameter_slots(nn::Recurrent& layer) {
  std::vector<Tensor*> slots;
  for (const auto& cell : layer.cells())
    for (Tensor* s : builtin_parameter_slots(*cell)) slots.push_back(s);
  return slots;
}

// Everything a layer returns, flattened into one tensor so that gradcheck weighs it all.
Tensor flat(const nn::RecurrentOutput& r) {
  std::vector<Tensor> parts{flatten(r.output)};
  for (const Tensor& s : r.state) parts.push_back(flatten(s));
  return cat(parts, 0);
}

}  // namespace

TEST_CASE("gradcheck: each cell, one step, w.r.t. input, state and parameters") {
  manual_seed(21);
  std::vector<std::pair<std::string, std::shared_ptr<nn::RecurrentCell>>> cells = {
      {"RNNCell tanh", std::make_shared<nn::RNNCell>(I, H)},
      {"RNNCell relu", std::make_shared<nn::RNNCell>(nn::RNNCellOptions(I, H).nonlinearity(nn::RNNNonlinearity::relu))},
      {"RNNCell no bias", std::make_shared<nn::RNNCell>(nn::RNNCellOptions(I, H).bias(false))},
      {"LSTMCell", std::make_shared<nn::LSTMCell>(I, H)},
      {"LSTMCell proj", std::make_shared<nn::LSTMCell>(nn::LSTMCellOptions(I, H + 1).proj_size(P))},
      {"LSTMCell no bias", std::make_shared<nn::LSTMCell>(nn::LSTMCellOptions(I, H).bias(false))},
      {"GRUCell", std::make_shared<nn::GRUCell>(I, H)},
      {"GRUCell no bias", std::make_shared<nn::GRUCell>(nn::GRUCellOptions(I, H).bias(false))},
  };
  for (auto& [name, cell] : cells) {
    CAPTURE(name);
    cell->to(DType::f64);
    std::vector<Tensor> inputs{randn({B, I}, DType::f64).requires_grad_()};
    for (std::int64_t size : cell->state_sizes()) inputs.push_back(randn({B, size}, DType::f64).requires_grad_());
    const auto r = gradcheck_with_parameters(builtin_parameter_slots(*cell), inputs, [&](const std::vector<Tensor>& in) {
      const nn::CellState next = cell->step_input(in[0], nn::CellState(in.begin() + 1, in.end()));
      std::vector<Tensor> parts;
      for (const Tensor& s : next) parts.push_back(flatten(s));
      return cat(parts, 0);
    });
    CHECK_MESSAGE(r.ok, r.message());
  }
}

TEST_CASE("gradcheck through time: every sequence layer in every driver configuration") {
  // The parameters are gradchecked in the richest configuration; the others vary the input
  // and initial state only (the parity fixtures check every parameter gradient of every
  // configuration against PyTorch, and a full parameter sweep is slow under the sanitizers).
  struct Config {
    std::string name;
    std::int64_t layers;
    bool bidirectional, batch_first, init_state;
    std::vector<std::int64_t> lengths;  // empty: full length
    bool parameters;
  };
  const std::vector<Config> configs = {
      {"1 layer, batch_first, h0, lengths", 1, false, true, true, {3, 1}, false},
      {"2 layers, bidirectional, h0, lengths", 2, true, false, true, {2, 3}, true},
      {"2 layers, bidirectional, batch_first, full length", 2, true, true, false, {}, false},
  };
  const std::vector<std::string> modes = {"rnn_tanh", "rnn_relu", "lstm", "lstm_proj", "gru"};
  for (const std::string& mode : modes) {
    for (const Config& c : configs) {
      CAPTURE(mode);
      CAPTURE(c.name);
      manual_seed(31);
      std::unique_ptr<nn::Recurrent> layer;
      if (mode == "lstm" || mode == "lstm_proj")
        layer = std::make_unique<nn::LSTM>(nn::LSTMOptions(I, mode == "lstm" ? H : H + 1)
                                               .proj_size(mode == "lstm" ? 0 : P)
                                               .num_layers(c.layers)
                                               .bidirectional(c.bidirectional)
                                               .batch_first(c.batch_first));
      else if (mode == "gru")
        layer = std::make_unique<nn::GRU>(
            nn::GRUOptions(I, H).num_layers(c.layers).bidirectional(c.bidirectional).batch_first(c.batch_first));
      else
        layer = std::make_unique<nn::RNN>(nn::RNNOptions(I, H)
                                              .nonlinearity(mode == "rnn_relu" ? nn::RNNNonlinearity::relu
                                                                               : nn::RNNNonlinearity::tanh)
                                              .num_layers(c.layers)
                                              .bidirectional(c.bidirectional)
                                              .batch_first(c.batch_first));
      layer->to(DType::f64);
      const std::int64_t LD = c.layers * (c.bidirectional ? 2 : 1);
      std::vector<Tensor> inputs{(c.batch_first ? randn({B, T, I}, DType::f64) : randn({T, B, I}, DType::f64))
                                     .requires_grad_()};
      if (c.init_state)
        for (std::int64_t size : layer->cell(0).state_sizes())
          inputs.push_back(randn({LD, B, size}, DType::f64).requires_grad_());
      const nn::Lengths lengths = c.lengths.empty() ? nn::Lengths() : nn::Lengths(c.lengths);
      const std::vector<Tensor*> params = c.parameters ? layer_parameter_slots(*layer) : std::vector<Tensor*>{};
      const auto r = gradcheck_with_parameters(params, inputs, [&](const std::vector<Tensor>& in) {
        return flat(layer->forward(in[0], nn::CellState(in.begin() + 1, in.end()), lengths));
      });
      CHECK_MESSAGE(r.ok, r.message());
    }
  }
}
