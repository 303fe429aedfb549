#pragma once
// The recurrent workloads bench_rnn and bench_fused_gru share: sizes, models, and the
// safetensors file of each workload's weights, input and target (the same one
// bench/rnn_bench.py reads), so that every program computes the same thing.
#include <xgrad/xgrad.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace bench {

struct Size {
  std::string name;
  std::int64_t batch, seq, input, hidden, layers;
};
inline const std::vector<Size> kSizes = {
    {"S", 32, 50, 32, 64, 1}, {"M", 64, 100, 128, 256, 1}, {"L", 64, 100, 256, 512, 2}};

inline const Size& size_named(const std::string& name) {
  for (const Size& s : kSizes)
    if (s.name == name) return s;
  throw std::runtime_error(fmt::format("unknown size '{}' (S, M or L)", name));
}

// Gate blocks per cell: the weights are (gates·H, in).
inline std::int64_t gates(const std::string& cell) { return cell == "lstm" ? 4 : cell == "gru" ? 3 : 1; }

// Seeded, so that the inputs file a run writes is the same every time.
inline std::unique_ptr<xgrad::nn::Recurrent> make_model(const std::string& cell, const Size& s) {
  namespace nn = xgrad::nn;
  xgrad::manual_seed(1234);
  if (cell == "rnn") return std::make_unique<nn::RNN>(nn::RNNOptions(s.input, s.hidden).num_layers(s.layers));
  if (cell == "lstm") return std::make_unique<nn::LSTM>(nn::LSTMOptions(s.input, s.hidden).num_layers(s.layers));
  if (cell == "gru") return std::make_unique<nn::GRU>(nn::GRUOptions(s.input, s.hidden).num_layers(s.layers));
  throw std::runtime_error(fmt::format("unknown cell '{}' (rnn, lstm or gru)", cell));
}

struct Data {
  xgrad::Tensor input;   // (T, B, I)
  xgrad::Tensor target;  // (T, B, H)
};

// Loads the model's weights, the input and the target from the workload's safetensors file,
// writing it first (from this model's default initialisation) when it does not exist yet.
inline Data load_inputs(const std::string& dir, const std::string& cell, const Size& s,
                        xgrad::nn::Recurrent& model) {
  using namespace xgrad;
  const std::string path = fmt::format("{}/{}_{}.safetensors", dir, cell, s.name);
  if (!std::filesystem::exists(path)) {
    std::filesystem::create_directories(dir);
    NamedTensors all = model.state_dict();
    all.emplace_back("input", randn({s.seq, s.batch, s.input}));
    all.emplace_back("target", randn({s.seq, s.batch, s.hidden}) * 0.5);
    save_safetensors(path, all, {{"written_by", "xgrad bench_rnn"}});
  }
  SafetensorsFile file = load_safetensors(path);
  NamedTensors weights;
  for (const auto& [name, t] : file.tensors)
    if (name != "input" && name != "target") weights.emplace_back(name, t);
  model.load_state_dict(weights);
  return {file.at("input"), file.at("target")};
}

}  // namespace bench
