// The worked example of docs/custom_layer.md ("Write your own layer"): a peephole LSTM cell
// composed from primitives, run by xgrad's sequence driver with two bidirectional layers and
// variable lengths, gradchecked, then trained for a few steps.
//
//   build/release/examples/custom_cell [--steps 30] [--seed 0]
#include <cmath>
#include <cstdint>
#include <memory>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/core.h>

#include <xgrad/xgrad.hpp>

using namespace xgrad;

// [step]
// One step of a peephole LSTM (Gers & Schmidhuber, 2000): the gates also look at the cell
// state through diagonal weights p_i, p_f, p_o.
//
//     i = σ(x_i + h U_iᵀ + p_i ⊙ c)      f = σ(x_f + h U_fᵀ + p_f ⊙ c)
//     g = tanh(x_g + h U_gᵀ)             c' = f ⊙ c + i ⊙ g
//     o = σ(x_o + h U_oᵀ + p_o ⊙ c')     h' = o ⊙ tanh(c')
//
// xp (B, 4H) is the projected input x W_ihᵀ + b; state = {h, c}, each (B, H);
// w_hh_t (H, 4H) is the transposed recurrent weight; peep (3, H) holds p_i, p_f, p_o.
// Primitives only: no backward code anywhere.
nn::CellState peephole_step(const Tensor& xp, const nn::CellState& state, const Tensor& w_hh_t, const Tensor& peep) {
  const Tensor& h = state[0];
  const Tensor& c = state[1];
  const std::vector<Tensor> g = chunk(xp + matmul(h, w_hh_t), 4, 1);  // i, f, g, o: (B, H) each
  const std::vector<Tensor> p = chunk(peep, 3, 0);                     // p_i, p_f, p_o: (1, H) each
  const Tensor i = sigmoid(g[0] + p[0] * c);
  const Tensor f = sigmoid(g[1] + p[1] * c);
  const Tensor c_next = f * c + i * tanh(g[2]);
  const Tensor o = sigmoid(g[3] + p[2] * c_next);
  return {o * tanh(c_next), c_next};
}
// [step]

// [cell]
class PeepholeLSTMCell : public nn::RecurrentCell {
 public:
  PeepholeLSTMCell(std::int64_t input_size, std::int64_t hidden_size)
      : RecurrentCell(input_size, {hidden_size, hidden_size}) {  // state entries: h (the output), c
    const double k = 1.0 / std::sqrt(static_cast<double>(hidden_size));
    weight_ih = register_parameter("weight_ih", uniform({4 * hidden_size, input_size}, -k, k));
    weight_hh = register_parameter("weight_hh", uniform({4 * hidden_size, hidden_size}, -k, k));
    bias = register_parameter("bias", uniform({4 * hidden_size}, -k, k));
    weight_peep = register_parameter("weight_peep", uniform({3, hidden_size}, -k, k));
  }

  // Everything that does not depend on the state: (..., input_size) → (..., 4H). The driver
  // calls it once on the whole sequence, one GEMM for all time steps.
  Tensor project_input(const Tensor& x) override { return matmul(x, weight_ih.t()) + bias; }

  // One step, for a caller that runs the cell by hand.
  nn::CellState step(const Tensor& xp, const nn::CellState& state) override {
    return peephole_step(xp, state, weight_hh.t(), weight_peep);
  }

  // Optional: what the driver calls at every step of one sequence. Taking W_hh's transpose
  // here, once per sequence, saves a node per step (t() is a view: no copy either way).
  nn::StepFn sequence_step() override {
    return [w_hh_t = weight_hh.t(), peep = weight_peep](const Tensor& xp, const nn::CellState& state) {
      return peephole_step(xp, state, w_hh_t, peep);
    };
  }

  Tensor weight_ih, weight_hh, bias, weight_peep;  // handles shared with the registry
};
// [cell]

bool layer_norm_lstm(int steps);  // section 6 of the guide, below main

int main(int argc, char** argv) {
  int steps = 30;
  std::uint64_t seed = 0;
  CLI::App app{"A peephole LSTM cell written by hand, run by xgrad's sequence driver"};
  app.add_option("--steps", steps, "training steps")->capture_default_str();
  app.add_option("--seed", seed, "random seed")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  manual_seed(seed);

  // [driver]
  // Two bidirectional layers of the cell, batch-first: the driver builds one cell per layer
  // and direction, registers their parameters under PyTorch-style names (weight_ih_l0,
  // weight_ih_l0_reverse, ...), and handles lengths, directions and dropout.
  nn::Recurrent rnn(nn::RecurrentOptions(3, 8).num_layers(2).bidirectional(true).batch_first(true),
                    [](std::int64_t in, std::int64_t hidden) { return std::make_shared<PeepholeLSTMCell>(in, hidden); });
  fmt::print("{}: {} parameters\n", rnn, rnn.num_parameters());
  for (const auto& [name, p] : rnn.named_parameters()) fmt::print("  {:22} {}\n", name, shape_str(p.shape()));

  const Tensor x = randn({4, 6, 3});                       // (B, T, I): 4 sequences padded to 6 steps
  const std::vector<std::int64_t> lengths = {6, 2, 5, 3};  // their valid lengths
  auto [out, state] = rnn(x, {}, lengths);
  fmt::print("output {}, h_n {}, c_n {}\n", shape_str(out.shape()),      // (4, 6, 16)
             shape_str(state[0].shape()), shape_str(state[1].shape()));  // (4, 4, 8) each
  // Each sequence read whole by both directions of the top layer: the forward one's h at the
  // sequence's last valid step and the reverse one's at its first (PyTorch's
  // cat([h_n[-2], h_n[-1]], 1)).
  const Tensor summary = rnn.final_hidden(state);  // (4, 16)
  fmt::print("summary of each sequence {}\n", shape_str(summary.shape()));
  // [driver]

  // [gradcheck]
  // Gradcheck in float64. The step is a function of tensors, so gradcheck can vary every
  // input of one step: x, h, c and all four parameters.
  const auto f64 = [](const Shape& s) { return randn(s, DType::f64).requires_grad_(); };
  const GradcheckResult one_step = gradcheck(
      [](const std::vector<Tensor>& in) {  // in: x, h, c, w_ih, b, w_hh, peep
        const nn::CellState next = peephole_step(matmul(in[0], in[3].t()) + in[4], {in[1], in[2]}, in[5].t(), in[6]);
        return cat({flatten(next[0]), flatten(next[1])}, 0);
      },
      {f64({2, 3}), f64({2, 4}), f64({2, 4}), f64({16, 3}), f64({16}), f64({16, 4}), f64({3, 4})});
  fmt::print("one step:     {}\n", one_step.message());

  // Through time, in the driver (3 steps, 2 layers, both directions, variable lengths): with
  // respect to the input sequence and both initial states.
  nn::Recurrent small(nn::RecurrentOptions(3, 4).num_layers(2).bidirectional(true),
                      [](std::int64_t in, std::int64_t hidden) { return std::make_shared<PeepholeLSTMCell>(in, hidden); });
  small.to(DType::f64);
  const GradcheckResult through_time = gradcheck(
      [&](const std::vector<Tensor>& in) {  // in: x (T, B, I), h0, c0 (L·D, B, H)
        auto [o, s] = small(in[0], {in[1], in[2]}, {3, 1});
        return cat({flatten(o), flatten(s[0]), flatten(s[1])}, 0);
      },
      {f64({3, 2, 3}), f64({4, 2, 4}), f64({4, 2, 4})});
  fmt::print("through time: {}\n", through_time.message());
  // [gradcheck]

  // [train]
  // It trains like any module: here the summary of each sequence learns to regress the mean
  // of that sequence's valid inputs (one fixed batch, to watch the loss fall).
  nn::Linear head(16, 1);
  std::vector<Tensor> params = rnn.parameters();
  for (const Tensor& p : head.parameters()) params.push_back(p);
  optim::Adam opt(params, optim::AdamOptions(0.01));
  std::vector<float> means;
  for (std::int64_t b = 0; b < 4; ++b) means.push_back(mean(narrow(narrow(x, 0, b, 1), 1, 0, lengths[b])).item<float>());
  const Tensor target = from_vector(means, {4, 1});
  double first = 0.0, last = 0.0;
  for (int step = 1; step <= steps; ++step) {
    auto [o, s] = rnn(x, {}, lengths);
    Tensor loss = nn::mse_loss(head(rnn.final_hidden(s)), target);
    opt.zero_grad();
    loss.backward();
    opt.step();
    (step == 1 ? first : last) = loss.item();
  }
  fmt::print("training: loss {:.4f} at step 1, {:.4f} at step {}\n", first, last, steps);
  // [train]

  const bool layer_norm_ok = layer_norm_lstm(steps);
  return one_step.ok && through_time.ok && layer_norm_ok ? 0 : 1;
}

// [modules]
// A layer-norm LSTM (Ba, Kiros & Hinton, 2016): the input and recurrent gate sums and the
// cell state are each normalised by a LayerNorm of the cell's own, registered as child
// modules and called from project_input and step like any module.
//
//     gates = LN_x(x W_ihᵀ) + LN_h(h W_hhᵀ) + b;   i, f, g, o = chunk(gates, 4)
//     c' = σ(f) ⊙ c + σ(i) ⊙ tanh(g);             h' = σ(o) ⊙ tanh(LN_c(c'))
class LayerNormLSTMCell : public nn::RecurrentCell {
 public:
  LayerNormLSTMCell(std::int64_t input_size, std::int64_t hidden_size)
      : RecurrentCell(input_size, {hidden_size, hidden_size}),
        ln_x(nn::LayerNormOptions({4 * hidden_size})),
        ln_h(nn::LayerNormOptions({4 * hidden_size})),
        ln_c(nn::LayerNormOptions({hidden_size})) {
    const double k = 1.0 / std::sqrt(static_cast<double>(hidden_size));
    weight_ih = register_parameter("weight_ih", uniform({4 * hidden_size, input_size}, -k, k));
    weight_hh = register_parameter("weight_hh", uniform({4 * hidden_size, hidden_size}, -k, k));
    bias = register_parameter("bias", uniform({4 * hidden_size}, -k, k));
    register_module("ln_x", ln_x);  // keys ln_x.weight, ...; in a layer: ln_x_weight_l0
    register_module("ln_h", ln_h);
    register_module("ln_c", ln_c);
  }

  Tensor project_input(const Tensor& x) override { return ln_x(matmul(x, weight_ih.t())) + bias; }

  nn::CellState step(const Tensor& xp, const nn::CellState& state) override {
    const std::vector<Tensor> g = chunk(xp + ln_h(matmul(state[0], weight_hh.t())), 4, 1);  // i, f, g, o
    const Tensor c = sigmoid(g[1]) * state[1] + sigmoid(g[0]) * tanh(g[2]);
    return {sigmoid(g[3]) * tanh(ln_c(c)), c};
  }

  Tensor weight_ih, weight_hh, bias;
  nn::LayerNorm ln_x, ln_h, ln_c;
};

// Gradchecked through the driver with respect to every parameter, the LayerNorms' included,
// then trained a few steps; true when the gradients agree and the loss falls.
bool layer_norm_lstm(int steps) {
  nn::Recurrent rnn(nn::RecurrentOptions(3, 4).bidirectional(true),
                    [](std::int64_t in, std::int64_t hidden) { return std::make_shared<LayerNormLSTMCell>(in, hidden); });
  rnn.to(DType::f64);
  const Tensor x = randn({5, 3, 3}, DType::f64);   // (T, B, I)
  const std::vector<std::int64_t> lengths = {5, 2, 4};
  const GradcheckResult check = nn::gradcheck(rnn, [&] { return rnn(x, {}, lengths).output; });
  fmt::print("layer-norm LSTM gradcheck: {}\n", check.message());

  nn::Linear head(8, 1);
  head.to(DType::f64);
  std::vector<Tensor> params = rnn.parameters();
  for (const Tensor& p : head.parameters()) params.push_back(p);
  optim::Adam opt(params, optim::AdamOptions(0.01));
  const Tensor target = randn({3, 1}, DType::f64);
  double first = 0.0, last = 0.0;
  for (int step = 1; step <= steps; ++step) {
    Tensor loss = nn::mse_loss(head(rnn.final_hidden(rnn(x, {}, lengths).state)), target);
    opt.zero_grad();
    loss.backward();
    opt.step();
    (step == 1 ? first : last) = loss.item();
  }
  fmt::print("layer-norm LSTM training: loss {:.4f} at step 1, {:.4f} at step {}\n", first, last, steps);
  return check.ok && last < first;
}
// [modules]
