// RNN, LSTM and GRU against PyTorch: every fixture written by fixtures/gen_rnn_fixtures.py is
// loaded into an xgrad layer by state-dict name, run forward and backward through the same
// scalar loss, and its outputs, final states and every gradient compared.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <fmt/format.h>

#include <xgrad/xgrad.hpp>

using namespace xgrad;

namespace {

const std::string kRnnFixtures = XGRAD_FIXTURES_DIR "/rnn";

// Names in a fixture that are not parameters.
const std::set<std::string> kNotParameters = {"input", "lengths", "h0",  "c0",  "output", "h_n",
                                              "c_n",   "R_out",   "R_h", "R_c"};

double max_abs_diff(const Tensor& a, const Tensor& b) {
  REQUIRE_MESSAGE(a.shape() == b.shape(), shape_str(a.shape()), " vs ", shape_str(b.shape()));
  const std::vector<double> x = a.to_vector<double>(), y = b.to_vector<double>();
  double worst = 0.0;
  for (std::size_t i = 0; i < x.size(); ++i) worst = std::max(worst, std::abs(x[i] - y[i]));
  return worst;
}

bool flag(const SafetensorsFile& f, const std::string& key) { return f.metadata.at(key) == "1"; }
std::int64_t number(const SafetensorsFile& f, const std::string& key) { return std::stoll(f.metadata.at(key)); }

// The layer a fixture describes, built from its metadata.
std::unique_ptr<nn::Recurrent> make_layer(const SafetensorsFile& f) {
  const std::string mode = f.metadata.at("mode");
  const std::int64_t in = number(f, "input_size"), hidden = number(f, "hidden_size");
  auto common = [&](auto options) {
    return options.num_layers(number(f, "num_layers"))
        .bidirectional(flag(f, "bidirectional"))
        .batch_first(flag(f, "batch_first"))
        .bias(flag(f, "bias"));
  };
  if (mode == "rnn_tanh" || mode == "rnn_relu")
    return std::make_unique<nn::RNN>(common(nn::RNNOptions(in, hidden))
                                         .nonlinearity(mode == "rnn_relu" ? nn::RNNNonlinearity::relu
                                                                          : nn::RNNNonlinearity::tanh));
  if (mode == "lstm" || mode == "lstm_proj")
    return std::make_unique<nn::LSTM>(common(nn::LSTMOptions(in, hidden)).proj_size(number(f, "proj_size")));
  REQUIRE(mode == "gru");
  return std::make_unique<nn::GRU>(common(nn::GRUOptions(in, hidden)));
}

struct Run {
  Tensor output, h_n, c_n;
};

// Forward through the one API every layer shares: h0 alone, or (h0, c0) for an LSTM.
Run run(nn::Recurrent& layer, const Tensor& x, const Tensor& h0, const Tensor& c0, const nn::Lengths& lengths) {
  const bool lstm = dynamic_cast<nn::LSTM*>(&layer) != nullptr;
  auto [out, state] = layer(x, lstm ? nn::RecurrentState(h0, c0) : nn::RecurrentState(h0), lengths);
  return {out, state.h(), lstm ? state.c() : Tensor()};
}

struct Outcome {
  double worst = 0.0;
  std::string where;  // the tensor with the worst difference
};

// Runs one fixture; returns the worst difference over outputs, states and gradients.
Outcome check_fixture(const std::string& path) {
  const SafetensorsFile f = load_safetensors(path);
  std::unique_ptr<nn::Recurrent> layer = make_layer(f);
  const DType dtype = f.at("input").dtype();
  layer->to(dtype);

  NamedTensors weights;
  for (const auto& [name, t] : f.tensors)
    if (!kNotParameters.count(name) && name.rfind("grad.", 0) != 0) weights.emplace_back(name, t);
  layer->load_state_dict(weights);  // strict: every PyTorch name must exist here and vice versa

  const Tensor x = f.at("input").clone().requires_grad_();
  const Tensor h0 = f.contains("h0") ? f.at("h0").clone().requires_grad_() : Tensor();
  const Tensor c0 = f.contains("c0") ? f.at("c0").clone().requires_grad_() : Tensor();
  const nn::Lengths lengths = f.contains("lengths") ? nn::Lengths(f.at("lengths")) : nn::Lengths();

  const Run r = run(*layer, x, h0, c0, lengths);
  Tensor loss = sum(r.output * f.at("R_out")) + sum(r.h_n * f.at("R_h"));
  if (r.c_n.defined()) loss = loss + sum(r.c_n * f.at("R_c"));
  loss.backward();

  Outcome outcome;
  auto compare = [&](const std::string& what, const Tensor& ours, const Tensor& theirs) {
    REQUIRE_MESSAGE(ours.defined(), what, " was not computed");
    const double d = max_abs_diff(ours, theirs);
    if (d >= outcome.worst) outcome = {d, what};
  };
  compare("output", r.output, f.at("output"));
  compare("h_n", r.h_n, f.at("h_n"));
  if (f.contains("c_n")) compare("c_n", r.c_n, f.at("c_n"));
  compare("grad.input", x.grad(), f.at("grad.input"));
  if (h0.defined()) compare("grad.h0", h0.grad(), f.at("grad.h0"));
  if (c0.defined()) compare("grad.c0", c0.grad(), f.at("grad.c0"));
  std::size_t param_grads = 0;
  for (const auto& [name, p] : layer->named_parameters()) {
    compare("grad." + name, p.grad(), f.at("grad." + name));
    ++param_grads;
  }
  CHECK(param_grads == weights.size());
  return outcome;
}

}  // namespace

TEST_CASE("RNN, LSTM and GRU match PyTorch: outputs, final states and every gradient") {
  std::vector<std::string> paths;
  for (const auto& entry : std::filesystem::directory_iterator(kRnnFixtures))
    if (entry.path().extension() == ".safetensors") paths.push_back(entry.path().string());
  std::sort(paths.begin(), paths.end());
  // 5 modes (rnn_tanh, rnn_relu, lstm, lstm_proj, gru) × 7 option sets × {f32, f64}.
  REQUIRE(paths.size() == 70);

  std::string report = "worst |xgrad − PyTorch| per config (f32 | f64):\n";
  for (std::size_t i = 0; i < paths.size(); i += 2) {
    // Sorted names put <config>_f32 right before <config>_f64.
    const std::string f32 = paths[i], f64 = paths[i + 1];
    REQUIRE(f32.substr(f32.size() - 16) == "_f32.safetensors");
    REQUIRE(f64.substr(f64.size() - 16) == "_f64.safetensors");
    const std::string config = std::filesystem::path(f32).stem().string();
    CAPTURE(config);
    const Outcome a = check_fixture(f32);
    const Outcome b = check_fixture(f64);
    CHECK_MESSAGE(a.worst <= 1e-5, "f32: ", a.where, " differs by ", a.worst);
    CHECK_MESSAGE(b.worst <= 1e-10, "f64: ", b.where, " differs by ", b.worst);
    report += fmt::format("  {:28} {:9.2e} ({:22}) | {:9.2e} ({})\n", config.substr(0, config.size() - 4), a.worst,
                          a.where, b.worst, b.where);
  }
  MESSAGE(report);
}
