// Recurrent layers: PyTorch's names, shapes and init; variable lengths, batch_first, unbatched
// input, dropout and states; a user-written cell in the same driver; last_step; errors.
// (Numbers against PyTorch: test_rnn_parity.cpp. Gradchecks: test_rnn_gradcheck.cpp.)
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <iostream>
#include <sstream>
#include <memory>
#include <string>
#include <vector>

#include <xgrad/xgrad.hpp>

#include "rnn_test_util.hpp"

using namespace xgrad;
using rnn_test::max_abs_diff;

namespace {

// A user-written cell: the minimal gated unit (Zhou et al. 2016), one gate f and
//     h' = (1 − f) ⊙ h + f ⊙ tanh(x W_hᵀ + (f ⊙ h) U_hᵀ + b_h),  f = σ(x W_fᵀ + h U_fᵀ + b_f).
// Only primitives, no backward code; the driver gives it layers, directions and lengths.
struct MGUCell : nn::RecurrentCell {
  Tensor weight_ih, bias, weight_f, weight_h;
  MGUCell(std::int64_t input_size, std::int64_t hidden_size) : RecurrentCell(input_size, {hidden_size}) {
    const double k = 1.0 / std::sqrt(static_cast<double>(hidden_size));
    weight_ih = register_parameter("weight_ih", uniform({2 * hidden_size, input_size}, -k, k));  // [W_f; W_h]
    bias = register_parameter("bias", uniform({2 * hidden_size}, -k, k));                        // [b_f; b_h]
    weight_f = register_parameter("weight_f", uniform({hidden_size, hidden_size}, -k, k));
    weight_h = register_parameter("weight_h", uniform({hidden_size, hidden_size}, -k, k));
  }
  Tensor project_input(const Tensor& x) override { return matmul(x, weight_ih.t()) + bias; }
  nn::CellState step(const Tensor& xp, const nn::CellState& state) override {
    const Tensor& h = state[0];
    const std::vector<Tensor> parts = chunk(xp, 2, 1);  // f and candidate pre-activations
    const Tensor f = sigmoid(parts[0] + matmul(h, weight_f.t()));
    const Tensor candidate = tanh(parts[1] + matmul(f * h, weight_h.t()));
    return {h + f * (candidate - h)};
  }
};

nn::CellFactory mgu_factory() {
  return [](std::int64_t in, std::int64_t hidden) { return std::make_shared<MGUCell>(in, hidden); };
}

std::vector<std::string> names(const nn::Module& m) {
  std::vector<std::string> out;
  for (const auto& [name, p] : m.named_parameters()) out.push_back(name);
  return out;
}

// Sequence b of a (T, B, F) tensor, its first `length` steps, as a batch of one: (length, 1, F).
Tensor sequence(const Tensor& x, std::int64_t b, std::int64_t length) {
  return narrow(narrow(x, 1, b, 1), 0, 0, length);
}

// The layers under test, each constructible in f64 with the same driver options.
std::vector<std::pair<std::string, std::shared_ptr<nn::Recurrent>>> every_layer(std::int64_t in, std::int64_t hidden,
                                                                                std::int64_t layers, bool bidir) {
  return {
      {"RNN", std::make_shared<nn::RNN>(nn::RNNOptions(in, hidden).num_layers(layers).bidirectional(bidir))},
      {"LSTM", std::make_shared<nn::LSTM>(nn::LSTMOptions(in, hidden).num_layers(layers).bidirectional(bidir))},
      {"LSTM proj",
       std::make_shared<nn::LSTM>(nn::LSTMOptions(in, hidden).num_layers(layers).bidirectional(bidir).proj_size(2))},
      {"GRU", std::make_shared<nn::GRU>(nn::GRUOptions(in, hidden).num_layers(layers).bidirectional(bidir))},
      {"MGU", std::make_shared<nn::Recurrent>(
                  nn::RecurrentOptions(in, hidden).num_layers(layers).bidirectional(bidir), mgu_factory())},
  };
}

}  // namespace

TEST_CASE("LSTM registers PyTorch's parameter names, shapes and order") {
  nn::LSTM lstm(nn::LSTMOptions(4, 3).num_layers(2).bidirectional(true).proj_size(2));
  const std::vector<std::string> expected = {
      "weight_ih_l0",         "weight_hh_l0",         "bias_ih_l0",         "bias_hh_l0",
      "weight_hr_l0",         "weight_ih_l0_reverse", "weight_hh_l0_reverse", "bias_ih_l0_reverse",
      "bias_hh_l0_reverse",   "weight_hr_l0_reverse", "weight_ih_l1",         "weight_hh_l1",
      "bias_ih_l1",           "bias_hh_l1",           "weight_hr_l1",         "weight_ih_l1_reverse",
      "weight_hh_l1_reverse", "bias_ih_l1_reverse",   "bias_hh_l1_reverse",   "weight_hr_l1_reverse"};
  CHECK(names(lstm) == expected);
  const auto params = lstm.named_parameters();
  CHECK(params[0].second.shape() == Shape{12, 4});   // weight_ih_l0: (4H, I)
  CHECK(params[1].second.shape() == Shape{12, 2});   // weight_hh_l0: (4H, P)
  CHECK(params[2].second.shape() == Shape{12});      // bias_ih_l0
  CHECK(params[4].second.shape() == Shape{2, 3});    // weight_hr_l0: (P, H)
  CHECK(params[10].second.shape() == Shape{12, 4});  // weight_ih_l1: (4H, D·P)
  CHECK(lstm.num_parameters() == 2 * (48 + 24 + 24 + 6) + 2 * (48 + 24 + 24 + 6));
}

TEST_CASE("GRU and RNN without bias register only weights; shapes follow the gate count") {
  nn::GRU gru(nn::GRUOptions(5, 4).bias(false));
  CHECK(names(gru) == std::vector<std::string>{"weight_ih_l0", "weight_hh_l0"});
  CHECK(gru.named_parameters()[0].second.shape() == Shape{12, 5});
  nn::RNN rnn(nn::RNNOptions(5, 4).num_layers(2));
  CHECK(names(rnn) ==
        std::vector<std::string>{"weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0", "weight_ih_l1",
                                 "weight_hh_l1", "bias_ih_l1", "bias_hh_l1"});
  CHECK(rnn.named_parameters()[4].second.shape() == Shape{4, 4});
}

TEST_CASE("every recurrent parameter starts in U(-1/sqrt(H), 1/sqrt(H))") {
  manual_seed(7);
  nn::LSTM lstm(nn::LSTMOptions(10, 16).num_layers(2).proj_size(4));
  nn::GRU gru(16, 16);
  for (nn::Module* m : std::vector<nn::Module*>{&lstm, &gru}) {
    for (const auto& [name, p] : m->named_parameters()) {
      CAPTURE(name);
      const std::vector<double> v = p.to_vector<double>();
      const double lo = *std::min_element(v.begin(), v.end()), hi = *std::max_element(v.begin(), v.end());
      CHECK(lo >= -0.25);
      CHECK(hi <= 0.25);
      if (v.size() >= 64) {  // enough draws to span most of the interval
        CHECK(lo < -0.2);
        CHECK(hi > 0.2);
      }
    }
  }
}

TEST_CASE("outputs and final states have PyTorch's shapes") {
  const Tensor x = randn({6, 3, 4});
  nn::LSTM lstm(nn::LSTMOptions(4, 5).num_layers(2).bidirectional(true).proj_size(3));
  auto [out, state] = lstm(x);
  CHECK(out.shape() == Shape{6, 3, 6});
  CHECK(state.h().shape() == Shape{4, 3, 3});
  CHECK(state.c().shape() == Shape{4, 3, 5});

  nn::GRU gru(nn::GRUOptions(4, 5).batch_first(true));
  auto [gout, h_n] = gru(randn({3, 6, 4}));
  CHECK(gout.shape() == Shape{3, 6, 5});
  CHECK(h_n.h().shape() == Shape{1, 3, 5});
}

TEST_CASE("the cells run alone and step by step reproduce the sequence layer") {
  manual_seed(3);
  const Tensor x = randn({4, 2, 3});
  nn::LSTM lstm(nn::LSTMOptions(3, 5).proj_size(2));
  auto [out, state] = lstm(x);
  // The layer's own cell, called as torch.nn.LSTMCell would be.
  auto& cell = dynamic_cast<nn::LSTMCell&>(lstm.cell(0));
  nn::RecurrentState s;
  for (std::int64_t t = 0; t < 4; ++t) {
    s = cell(select(x, 0, t), s);
    CHECK(max_abs_diff(s.h(), select(out, 0, t)) < 1e-6);
  }
  CHECK(max_abs_diff(s.c(), select(state.c(), 0, 0)) < 1e-6);

  nn::GRU gru(3, 4);
  auto [gout, h_n] = gru(x);
  auto& gcell = dynamic_cast<nn::GRUCell&>(gru.cell(0));
  Tensor h;
  for (std::int64_t t = 0; t < 4; ++t) h = gcell(select(x, 0, t), h);
  CHECK(max_abs_diff(h, select(h_n.h(), 0, 0)) < 1e-6);

  nn::RNNCell rnn_cell(nn::RNNCellOptions(3, 4).nonlinearity(nn::RNNNonlinearity::relu));
  const Tensor hr = rnn_cell(select(x, 0, 0));
  CHECK(hr.shape() == Shape{2, 4});
  CHECK(min(hr).item() >= 0.0);
}

TEST_CASE("variable lengths: each sequence of a padded batch gives what it gives alone") {
  // Padded steps keep the state and output zeros, the final state is the last valid step's,
  // and the reverse direction starts at each sequence's own last step: so every sequence
  // must come out exactly as when run alone at its own length.
  const std::vector<std::int64_t> lengths = {5, 2, 4};
  for (bool init : {false, true}) {
    for (auto& [name, layer] : every_layer(3, 4, 2, true)) {
      CAPTURE(name);
      CAPTURE(init);
      manual_seed(11);
      layer->to(DType::f64);
      const Tensor x = randn({5, 3, 3}, DType::f64);
      nn::CellState h0;
      for (std::int64_t size : layer->cell(0).state_sizes())
        h0.push_back(init ? randn({4, 3, size}, DType::f64) : Tensor());
      const nn::RecurrentOutput batched = (*layer)(x, h0, lengths);
      for (std::int64_t b = 0; b < 3; ++b) {
        nn::CellState h0_b;
        for (const Tensor& h : h0) h0_b.push_back(init ? narrow(h, 1, b, 1) : Tensor());
        const std::int64_t len = lengths[static_cast<std::size_t>(b)];
        const nn::RecurrentOutput alone = (*layer)(sequence(x, b, len), h0_b);
        const Tensor out_b = narrow(batched.output, 1, b, 1);
        CHECK(max_abs_diff(narrow(out_b, 0, 0, len), alone.output) < 1e-12);
        if (len < 5) CHECK(max_abs_diff(narrow(out_b, 0, len, 5 - len), zeros({5 - len, 1, out_b.size(2)}, DType::f64)) == 0.0);
        for (std::size_t k = 0; k < batched.state.size(); ++k)
          CHECK(max_abs_diff(narrow(batched.state[k], 1, b, 1), alone.state[k]) < 1e-12);
      }
    }
  }
}

TEST_CASE("variable lengths: padded input steps get no gradient, lengths may come as a tensor") {
  nn::GRU gru(nn::GRUOptions(2, 3).bidirectional(true).batch_first(true));
  const Tensor x = randn({2, 4, 2}).requires_grad_();
  auto [out, h_n] = gru(x, {}, from_vector(std::vector<std::int64_t>{4, 1}, {2}));
  (sum(out) + sum(h_n.h())).backward();
  const Tensor g = x.grad();
  CHECK(sum(abs(narrow(narrow(g, 0, 1, 1), 1, 1, 3))).item() == 0.0);  // sequence 1, steps 1..3
  CHECK(sum(abs(narrow(g, 0, 0, 1))).item() > 0.0);
}

TEST_CASE("variable lengths: NaN, Inf or huge values in the padding never reach any output or gradient") {
  // A batch built with empty() and only the valid steps filled: whatever the padding holds,
  // outputs, final states and every gradient equal those of zero padding (PyTorch never
  // reads padding either).
  const std::vector<std::int64_t> lengths = {5, 2, 4};
  auto layers = every_layer(3, 4, 2, true);
  layers.emplace_back("GRU batch_first",
                      std::make_shared<nn::GRU>(nn::GRUOptions(3, 4).num_layers(2).bidirectional(true).batch_first(true)));
  {
    for (auto& [name, layer] : layers) {
      CAPTURE(name);
      const bool batch_first = layer->recurrent_options().batch_first();
      manual_seed(5);
      layer->to(DType::f64);
      const Tensor clean = randn({5, 3, 3}, DType::f64);
      auto run = [&](double pad) {
        Tensor x = clean.clone();
        for (std::int64_t b = 0; b < 3; ++b) {
          const std::int64_t len = lengths[static_cast<std::size_t>(b)];
          if (len < 5) narrow(select(x, 1, b), 0, len, 5 - len).fill_(pad);
        }
        if (batch_first) x = transpose(x, 0, 1).contiguous();
        x.requires_grad_();
        layer->zero_grad();
        const nn::RecurrentOutput out = (*layer)(x, {}, nn::Lengths(lengths));
        Tensor loss = (out.output * out.output).sum();
        for (const Tensor& s : out.state) loss = loss + s.sum();
        loss.backward();
        std::vector<Tensor> results = {out.output.detach(), x.grad()};
        for (const Tensor& s : out.state) results.push_back(s.detach());
        for (const Tensor& p : layer->parameters()) results.push_back(p.grad().clone());
        return results;
      };
      const std::vector<Tensor> reference = run(0.0);
      for (double pad : {std::nan(""), double(INFINITY), -double(INFINITY), 1e300}) {
        CAPTURE(pad);
        const std::vector<Tensor> got = run(pad);
        REQUIRE(got.size() == reference.size());
        for (std::size_t i = 0; i < got.size(); ++i) CHECK(max_abs_diff(got[i], reference[i]) == 0.0);
      }
    }
  }
}

TEST_CASE("batch_first only transposes input and output") {
  manual_seed(5);
  nn::LSTM a(nn::LSTMOptions(3, 4).num_layers(2).bidirectional(true));
  nn::LSTM b(nn::LSTMOptions(3, 4).num_layers(2).bidirectional(true).batch_first(true));
  b.load_state_dict(a.state_dict());
  const Tensor x = randn({5, 2, 3});
  const nn::RecurrentState s0{randn({4, 2, 4}), randn({4, 2, 4})};
  auto [out_a, state_a] = a(x, s0, {5, 3});
  auto [out_b, state_b] = b(transpose(x, 0, 1), s0, {5, 3});
  CHECK(max_abs_diff(transpose(out_a, 0, 1), out_b) < 1e-6);
  CHECK(max_abs_diff(state_a.h(), state_b.h()) < 1e-6);  // states are never batch-first
  CHECK(max_abs_diff(state_a.c(), state_b.c()) < 1e-6);
}

TEST_CASE("unbatched input runs as a batch of one") {
  nn::GRU gru(nn::GRUOptions(3, 4).num_layers(2));
  const Tensor x = randn({5, 3});
  const Tensor h0 = randn({2, 4});
  auto [out, h_n] = gru(x, h0);
  CHECK(out.shape() == Shape{5, 4});
  CHECK(h_n.h().shape() == Shape{2, 4});
  auto [out1, h_n1] = gru(unsqueeze(x, 1), unsqueeze(h0, 1));
  CHECK(max_abs_diff(out, squeeze(out1, 1)) < 1e-6);
  CHECK(max_abs_diff(h_n.h(), squeeze(h_n1.h(), 1)) < 1e-6);
}

// Recomputations are compared with a tolerance, not bitwise: two evaluations of the same
// float expression may differ in the last bit.
TEST_CASE("dropout acts between layers in training mode only, seeded") {
  nn::LSTM lstm(nn::LSTMOptions(3, 4).num_layers(2).dropout(0.5));
  nn::LSTM plain(nn::LSTMOptions(3, 4).num_layers(2));
  plain.load_state_dict(lstm.state_dict());
  const Tensor x = randn({6, 2, 3});
  lstm.eval();
  CHECK(max_abs_diff(lstm(x).output, plain(x).output) < 1e-6);
  lstm.train();
  manual_seed(1);
  const Tensor a = lstm(x).output;
  manual_seed(1);
  const Tensor b = lstm(x).output;
  CHECK(max_abs_diff(a, b) < 1e-6);
  CHECK(max_abs_diff(a, plain(x).output) > 1e-3);

  // A single layer has nothing to drop between.
  nn::GRU one(nn::GRUOptions(3, 4).dropout(0.9));
  nn::GRU one_plain(3, 4);
  one_plain.load_state_dict(one.state_dict());
  CHECK(max_abs_diff(one(x).output, one_plain(x).output) < 1e-6);
}

TEST_CASE("to(f64) converts the parameters the cells compute with") {
  nn::LSTM lstm(nn::LSTMOptions(3, 4).proj_size(2));
  const Tensor x = randn({3, 2, 3});
  const Tensor y32 = lstm(x).output;
  lstm.to(DType::f64);
  const Tensor y64 = lstm(x.to(DType::f64)).output;
  CHECK(y64.dtype() == DType::f64);
  CHECK(max_abs_diff(y32, y64) < 1e-5);
}

TEST_CASE("a user-written cell runs in the driver with layers, directions, lengths and batch_first") {
  manual_seed(2);
  nn::Recurrent mgu(nn::RecurrentOptions(3, 4).num_layers(2).bidirectional(true).batch_first(true), mgu_factory());
  // Each cell parameter gets PyTorch's layer / direction suffix.
  CHECK(names(mgu) == std::vector<std::string>{
                          "weight_ih_l0", "bias_l0", "weight_f_l0", "weight_h_l0",
                          "weight_ih_l0_reverse", "bias_l0_reverse", "weight_f_l0_reverse", "weight_h_l0_reverse",
                          "weight_ih_l1", "bias_l1", "weight_f_l1", "weight_h_l1",
                          "weight_ih_l1_reverse", "bias_l1_reverse", "weight_f_l1_reverse", "weight_h_l1_reverse"});
  CHECK(mgu.named_parameters()[8].second.shape() == Shape{8, 8});  // layer 1 reads D·H = 8 features

  const Tensor x = randn({3, 5, 3}).requires_grad_();
  auto [out, state] = mgu(x, {}, {5, 3, 1});
  CHECK(out.shape() == Shape{3, 5, 8});
  CHECK(state.size() == 1);
  CHECK(state[0].shape() == Shape{4, 3, 4});
  CHECK(sum(abs(narrow(narrow(out, 0, 2, 1), 1, 1, 4))).item() == 0.0);  // sequence 2 is one step long
  sum(out).backward();
  for (const Tensor& p : mgu.parameters()) CHECK(p.grad().defined());
  CHECK(x.grad().defined());

  // The same cell class also runs alone, one step at a time.
  MGUCell cell(3, 4);
  const nn::CellState s = cell.step_input(randn({2, 3}));
  CHECK(s[0].shape() == Shape{2, 4});
}

TEST_CASE("gradcheck: the user-written cell through time in the driver") {
  manual_seed(8);
  nn::Recurrent mgu(nn::RecurrentOptions(2, 2).num_layers(2).bidirectional(true), mgu_factory());
  mgu.to(DType::f64);
  std::vector<Tensor*> params;
  for (const auto& cell : mgu.cells()) {
    auto& c = dynamic_cast<MGUCell&>(*cell);
    params.insert(params.end(), {&c.weight_ih, &c.bias, &c.weight_f, &c.weight_h});
  }
  const std::vector<Tensor> inputs{randn({3, 2, 2}, DType::f64).requires_grad_(),
                                   randn({4, 2, 2}, DType::f64).requires_grad_()};
  const auto r = rnn_test::gradcheck_with_parameters(params, inputs, [&](const std::vector<Tensor>& in) {
    auto [out, state] = mgu(in[0], {in[1]}, {3, 2});
    return cat({flatten(out), flatten(state[0])}, 0);
  });
  CHECK_MESSAGE(r.ok, r.message());
}

TEST_CASE("last_step picks each sequence's last valid output") {
  manual_seed(4);
  nn::GRU gru(3, 4);
  const std::vector<std::int64_t> lengths = {2, 5, 3};
  const Tensor x = randn({5, 3, 3});
  auto [out, h_n] = gru(x, {}, lengths);
  // For one forward layer, the last valid output is the final hidden state.
  CHECK(max_abs_diff(nn::last_step(out, lengths), select(h_n.h(), 0, 0)) == 0.0);
  CHECK(max_abs_diff(nn::last_step(transpose(out, 0, 1), lengths, true), select(h_n.h(), 0, 0)) == 0.0);
  CHECK(max_abs_diff(nn::last_step(out), select(out, 0, 4)) == 0.0);

  // The gradient reaches only the picked steps.
  const Tensor y = randn({5, 3, 4}).requires_grad_();
  sum(nn::last_step(y, lengths)).backward();
  const std::vector<float> g = y.grad().to_vector<float>();
  for (std::int64_t t = 0; t < 5; ++t)
    for (std::int64_t b = 0; b < 3; ++b)
      CHECK(g[static_cast<std::size_t>((t * 3 + b) * 4)] == (t == lengths[static_cast<std::size_t>(b)] - 1 ? 1.0f : 0.0f));
}

TEST_CASE("final_hidden: every direction of the top layer read whole, with lengths, batch_first, f64") {
  // PyTorch's torch.cat([h_n[-2], h_n[-1]], dim=1): the forward direction at each sequence's
  // last valid step, the reverse one at its first step (where it has read the whole sequence).
  manual_seed(8);
  const std::int64_t B = 4, T = 6, I = 3, H = 5;
  const std::vector<std::int64_t> lengths = {6, 2, 4, 1};
  for (const bool bidirectional : {false, true})
    for (const bool batch_first : {false, true})
      for (const std::int64_t L : {1, 2})
        for (const std::string kind : {"RNN", "LSTM", "GRU"}) {
          CAPTURE(kind);
          CAPTURE(bidirectional);
          CAPTURE(batch_first);
          CAPTURE(L);
          std::shared_ptr<nn::Recurrent> layer;
          if (kind == "RNN")
            layer = std::make_shared<nn::RNN>(nn::RNNOptions(I, H).num_layers(L).bidirectional(bidirectional).batch_first(batch_first));
          else if (kind == "LSTM")
            layer = std::make_shared<nn::LSTM>(nn::LSTMOptions(I, H).num_layers(L).bidirectional(bidirectional).batch_first(batch_first));
          else
            layer = std::make_shared<nn::GRU>(nn::GRUOptions(I, H).num_layers(L).bidirectional(bidirectional).batch_first(batch_first));
          layer->to(DType::f64);
          const std::int64_t D = bidirectional ? 2 : 1;
          const Tensor x = randn(batch_first ? Shape{B, T, I} : Shape{T, B, I}, DType::f64);
          const auto [out, state] = (*layer)(x, {}, lengths);
          const Tensor summary = layer->final_hidden(state);
          REQUIRE(summary.shape() == Shape{B, D * H});
          // The layer's own final states of the top layer, forward first.
          const Tensor h_n = state.h();  // (L·D, B, H)
          CHECK(max_abs_diff(narrow(summary, 1, 0, H), select(h_n, 0, (L - 1) * D)) == 0.0);
          if (bidirectional) CHECK(max_abs_diff(narrow(summary, 1, H, H), select(h_n, 0, L * D - 1)) == 0.0);
          // The same numbers in the output: the forward half at the last valid step, the
          // reverse half at step 0 — where last_step's reverse half is wrong.
          const Tensor last = nn::last_step(out, lengths, batch_first);  // (B, D·H)
          CHECK(max_abs_diff(narrow(summary, 1, 0, H), narrow(last, 1, 0, H)) == 0.0);
          if (bidirectional) {
            CHECK(max_abs_diff(narrow(summary, 1, H, H), narrow(select(out, batch_first ? 1 : 0, 0), 1, H, H)) == 0.0);
            CHECK(max_abs_diff(narrow(summary, 1, H, H), narrow(last, 1, H, H)) > 1e-3);
          }
          // Each sequence run alone, unpadded, has the same summary.
          for (std::int64_t b = 0; b < B; ++b) {
            const std::int64_t len = lengths[static_cast<std::size_t>(b)];
            const Tensor one = batch_first ? narrow(narrow(x, 0, b, 1), 1, 0, len) : narrow(narrow(x, 1, b, 1), 0, 0, len);
            const Tensor alone = layer->final_hidden((*layer)(one).state);  // (1, D·H)
            CHECK(max_abs_diff(alone, narrow(summary, 0, b, 1)) < 1e-12);
          }
        }
  // Unbatched: (L·D, H) → (D·H); and a state that is not the layer's is refused.
  nn::GRU gru(nn::GRUOptions(I, H).bidirectional(true).num_layers(2));
  const nn::RecurrentState s = gru(randn({T, I})).state;
  CHECK(gru.final_hidden(s).shape() == Shape{2 * H});
  CHECK(max_abs_diff(gru.final_hidden(s), cat({select(s.h(), 0, 2), select(s.h(), 0, 3)}, 0)) == 0.0);
  CHECK_THROWS_WITH_AS(gru.final_hidden(nn::RecurrentState(zeros({2, B, H}))),
                       "GRU::final_hidden: expected the layer's final h of shape (4, B, 5) or (4, 5), got (2, 4, 5)",
                       Error);
  CHECK_THROWS_WITH_AS(gru.final_hidden({}), doctest::Contains("got none"), Error);
}

TEST_CASE("stacking: lower layers return sequences, the top returns its last step") {
  // The Forecaster of the nn issue: an LSTM whose last valid step feeds a Linear head.
  struct Forecaster : nn::Module {
    nn::LSTM lstm{nn::LSTMOptions(1, 8).num_layers(2).batch_first(true)};
    nn::Linear head{8, 1};
    Forecaster() {
      register_module("lstm", lstm);
      register_module("head", head);
    }
    Tensor forward(const Tensor& x, const nn::Lengths& lengths) {
      auto [out, state] = lstm(x, {}, lengths);
      return head(nn::last_step(out, lengths, /*batch_first=*/true));
    }
  } model;
  CHECK(model.named_parameters()[0].first == "lstm.weight_ih_l0");
  const Tensor y = model.forward(randn({4, 7, 1}), {7, 3, 5, 1});
  CHECK(y.shape() == Shape{4, 1});
}

TEST_CASE("truncated BPTT: a carried state must be detached between chunks") {
  nn::GRU gru(2, 3);
  const Tensor x = randn({8, 2, 2});
  const std::vector<Tensor> chunks = split(x, 4, 0);
  auto [out1, h1] = gru(chunks[0]);
  sum(out1).backward();  // frees the first chunk's graph
  auto [out2, h2] = gru(chunks[1], h1);
  CHECK_THROWS_WITH_AS(sum(out2).backward(), doctest::Contains("already freed"), Error);

  auto [out3, h3] = gru(chunks[1], h1.detach());
  sum(out3).backward();  // stops at the chunk boundary
  nn::RecurrentState s{randn({1, 2, 3}).requires_grad_(), randn({1, 2, 3}).requires_grad_()};
  CHECK_FALSE(s.detach().h().requires_grad());
  CHECK_FALSE(nn::detach(nn::CellState{s.h(), s.c()})[1].requires_grad());
}

TEST_CASE("repr shows the options that differ from PyTorch's defaults") {
  CHECK(nn::LSTM(nn::LSTMOptions(1, 64).num_layers(2).batch_first(true)).repr() ==
        "LSTM(1, 64, num_layers=2, batch_first=true)");
  CHECK(nn::GRU(nn::GRUOptions(4, 8).bidirectional(true).bias(false)).repr() ==
        "GRU(4, 8, bias=false, bidirectional=true)");
  CHECK(nn::RNN(nn::RNNOptions(4, 8).nonlinearity(nn::RNNNonlinearity::relu).dropout(0.25)).repr() ==
        "RNN(4, 8, nonlinearity=relu, dropout=0.25)");
  CHECK(nn::LSTM(nn::LSTMOptions(4, 8).proj_size(3)).repr() == "LSTM(4, 8, proj_size=3)");
  CHECK(nn::LSTMCell(4, 8).repr() == "LSTMCell(4, 8)");
  CHECK(nn::Recurrent(nn::RecurrentOptions(4, 8).num_layers(2), mgu_factory()).repr() ==
        "Recurrent(4, 8, num_layers=2, cell=MGUCell)");
  CHECK(nn::RNNCell(nn::RNNCellOptions(4, 8).bias(false)).repr() == "RNNCell(4, 8, bias=false)");
}

TEST_CASE("recurrent layers reject bad options and inputs with clear errors") {
  CHECK_THROWS_WITH_AS(nn::LSTM(nn::LSTMOptions(4, 3).proj_size(3)), doctest::Contains("proj_size"), Error);
  CHECK_THROWS_WITH_AS(nn::GRU(nn::GRUOptions(4, 3).dropout(1.5)), doctest::Contains("dropout"), Error);
  CHECK_THROWS_WITH_AS(nn::RNN(nn::RNNOptions(4, 3).num_layers(0)), doctest::Contains("num_layers"), Error);
  CHECK_THROWS_WITH_AS(nn::GRUCell(0, 3), doctest::Contains("GRUCell"), Error);

  nn::LSTM lstm(nn::LSTMOptions(4, 3).num_layers(2));
  CHECK_THROWS_WITH_AS(lstm(randn({5, 2, 7})), doctest::Contains("LSTM: expected 4 input features"), Error);
  CHECK_THROWS_WITH_AS(lstm(randn({5})), doctest::Contains("LSTM: expected an input of shape"), Error);
  CHECK_THROWS_WITH_AS(lstm(randn({5, 2, 4}), {randn({1, 2, 3}), {}}), doctest::Contains("(2, 2, 3)"), Error);
  CHECK_THROWS_WITH_AS(lstm(randn({5, 2, 4}), {}, {5}), doctest::Contains("1 lengths for a batch of 2"), Error);
  CHECK_THROWS_WITH_AS(lstm(randn({5, 2, 4}), {}, {6, 1}), doctest::Contains("length 6 of sequence 0"), Error);
  CHECK_THROWS_WITH_AS(lstm(randn({5, 2, 4}, DType::f64)), doctest::Contains("float64 but the parameters are float32"),
                       Error);
  CHECK_THROWS_WITH_AS(nn::last_step(randn({5, 2, 3}), {0, 2}), doctest::Contains("outside [1, 5]"), Error);
  CHECK_THROWS_WITH_AS(nn::Lengths(randn({2, 2})), doctest::Contains("1-D"), Error);
  CHECK_THROWS_WITH_AS(nn::LSTMCell(4, 3)(randn({2, 5})), doctest::Contains("LSTMCell: expected an input of shape (B, 4)"),
                       Error);
}

TEST_CASE("nn::gradcheck checks a user-written cell's parameters through the sequence driver") {
  manual_seed(41);
  nn::Recurrent layer(nn::RecurrentOptions(3, 4).num_layers(2).bidirectional(true), mgu_factory());
  layer.to(DType::f64);
  const Tensor x = randn({5, 2, 3}, DType::f64);
  const nn::Lengths lengths(std::vector<std::int64_t>{5, 3});
  const GradcheckResult r = nn::gradcheck(layer, [&] { return layer.forward(x, {}, lengths).output; });
  CHECK_MESSAGE(r.ok, r.message());
  // A cell whose step ignores a registered parameter is caught, not passed vacuously.
  struct Forgetful : MGUCell {
    using MGUCell::MGUCell;
    nn::CellState step(const Tensor& xp, const nn::CellState& state) override {
      return {tanh(chunk(xp, 2, 1)[1] + state[0])};  // weight_f and weight_h unused
    }
  };
  nn::Recurrent forgetful(nn::RecurrentOptions(3, 4),
                          [](std::int64_t in, std::int64_t hidden) { return std::make_shared<Forgetful>(in, hidden); });
  forgetful.to(DType::f64);
  const GradcheckResult bad = nn::gradcheck(forgetful, [&] { return forgetful.forward(x).output; });
  CHECK_FALSE(bad.ok);
  CHECK_MESSAGE(bad.message().find("all-zero gradient") != std::string::npos, bad.message());
}

TEST_CASE("a cell's step calls its child modules: a layer-norm LSTM, gradchecked in f64 and trained") {
  // Ba et al.'s layer-norm LSTM with three member nn::LayerNorm modules, called from
  // project_input and step (non-const, as every module's forward).
  struct LayerNormLSTMCell : nn::RecurrentCell {
    Tensor weight_ih, weight_hh, bias;
    nn::LayerNorm ln_x, ln_h, ln_c;
    LayerNormLSTMCell(std::int64_t in, std::int64_t hidden)
        : RecurrentCell(in, {hidden, hidden}),
          ln_x(nn::LayerNormOptions({4 * hidden})),
          ln_h(nn::LayerNormOptions({4 * hidden})),
          ln_c(nn::LayerNormOptions({hidden})) {
      weight_ih = register_parameter("weight_ih", randn({4 * hidden, in}) * 0.4);
      weight_hh = register_parameter("weight_hh", randn({4 * hidden, hidden}) * 0.4);
      bias = register_parameter("bias", randn({4 * hidden}) * 0.1);
      register_module("ln_x", ln_x);
      register_module("ln_h", ln_h);
      register_module("ln_c", ln_c);
    }
    Tensor project_input(const Tensor& x) override { return ln_x(matmul(x, weight_ih.t())) + bias; }
    nn::CellState step(const Tensor& xp, const nn::CellState& s) override {
      const std::vector<Tensor> g = chunk(xp + ln_h(matmul(s[0], weight_hh.t())), 4, 1);
      const Tensor c = sigmoid(g[1]) * s[1] + sigmoid(g[0]) * tanh(g[2]);
      return {sigmoid(g[3]) * tanh(ln_c(c)), c};
    }
  };
  manual_seed(12);
  nn::Recurrent rnn(nn::RecurrentOptions(3, 4).bidirectional(true).batch_first(true),
                    [](std::int64_t in, std::int64_t hidden) { return std::make_shared<LayerNormLSTMCell>(in, hidden); });
  // The LayerNorms' parameters are the cell's, keyed by the driver's scheme.
  const std::vector<std::string> keys = names(rnn);
  CHECK(keys.size() == 2 * 9);
  CHECK(std::find(keys.begin(), keys.end(), "ln_h_weight_l0_reverse") != keys.end());
  CHECK(rnn.num_parameters() == 2 * (16 * 3 + 16 * 4 + 16 + 2 * 16 + 2 * 16 + 2 * 4));
  // Perturb the LayerNorms' affine parameters so that their gradients are generic.
  {
    NoGradGuard no_grad;
    for (auto& [name, p] : rnn.named_parameters())
      if (name.rfind("ln_", 0) == 0) p.add_(randn(p.shape()) * 0.3);
  }

  rnn.to(DType::f64);
  const Tensor x = randn({3, 5, 3}, DType::f64);  // (B, T, I)
  const nn::Lengths lengths({5, 2, 4});
  const GradcheckResult r = nn::gradcheck(rnn, [&] { return rnn(x, {}, lengths).output; });
  CHECK_MESSAGE(r.ok, r.message());

  // It trains: the loss of a fixed regression batch falls.
  nn::Linear head(8, 1);
  head.to(DType::f64);
  std::vector<Tensor> params = rnn.parameters();
  for (const Tensor& p : head.parameters()) params.push_back(p);
  optim::Adam opt(params, optim::AdamOptions(0.02));
  const Tensor target = from_vector(std::vector<double>{0.5, -0.3, 0.8}, {3, 1});
  REQUIRE(rnn.named_parameters()[3].first == "ln_x_weight_l0");
  const Tensor ln_before = rnn.named_parameters()[3].second.clone();
  std::vector<double> losses;
  for (int step = 0; step < 30; ++step) {
    const Tensor loss = nn::mse_loss(head(rnn.final_hidden(rnn(x, {}, lengths).state)), target);
    opt.zero_grad();
    loss.backward();
    opt.step();
    losses.push_back(loss.item());
  }
  CHECK(losses.back() < 0.2 * losses.front());
  // The LayerNorms' own parameters are trained with the rest.
  CHECK(max_abs_diff(rnn.named_parameters()[3].second, ln_before) > 1e-3);
}

TEST_CASE("the cells are children of the layer: eval(), to() and buffers reach them, keys stay PyTorch's") {
  // A user cell with a buffer (a scale on the candidate) that acts differently in training.
  struct ScaledCell : nn::RecurrentCell {
    Tensor weight_ih, weight_hh, scale;
    ScaledCell(std::int64_t in, std::int64_t hidden) : RecurrentCell(in, {hidden}) {
      weight_ih = register_parameter("weight_ih", randn({hidden, in}) * 0.3);
      weight_hh = register_parameter("weight_hh", randn({hidden, hidden}) * 0.3);
      scale = register_buffer("scale", full({hidden}, 0.5));
    }
    Tensor project_input(const Tensor& x) override { return matmul(x, weight_ih.t()); }
    nn::CellState step(const Tensor& xp, const nn::CellState& s) override {
      const Tensor h = tanh(xp + matmul(s[0], weight_hh.t()));
      return {is_training() ? h : h * scale};
    }
  };
  nn::Recurrent layer(nn::RecurrentOptions(3, 4).num_layers(2).bidirectional(true),
                      [](std::int64_t in, std::int64_t hidden) { return std::make_shared<ScaledCell>(in, hidden); });
  // Children: one per layer and direction; the layer's keys as PyTorch names them.
  std::vector<std::string> children;
  for (const auto& [name, child] : layer.named_children()) children.push_back(name);
  CHECK(children == std::vector<std::string>{"cell_l0", "cell_l0_reverse", "cell_l1", "cell_l1_reverse"});
  std::vector<std::string> keys;
  for (const auto& [key, t] : layer.state_dict()) keys.push_back(key);
  CHECK(keys == std::vector<std::string>{"weight_ih_l0", "weight_hh_l0", "scale_l0", "weight_ih_l0_reverse",
                                         "weight_hh_l0_reverse", "scale_l0_reverse", "weight_ih_l1", "weight_hh_l1",
                                         "scale_l1", "weight_ih_l1_reverse", "weight_hh_l1_reverse",
                                         "scale_l1_reverse"});
  CHECK(layer.named_buffers().size() == 4);
  CHECK(layer.repr() == "Recurrent(3, 4, num_layers=2, bidirectional=true, cell=ScaledCell)");
  // eval() reaches the cells: the output changes to the scaled one.
  const Tensor x = randn({5, 2, 3});
  const Tensor trained = layer(x).output;
  layer.eval();
  for (const auto& cell : layer.cells()) CHECK_FALSE(cell->is_training());
  CHECK(max_abs_diff(layer(x).output, trained) > 0.0);
  // to(f64) converts the buffer too, and the layer runs in f64.
  layer.to(DType::f64);
  for (const auto& cell : layer.cells()) CHECK(dynamic_cast<ScaledCell&>(*cell).scale.dtype() == DType::f64);
  CHECK(layer(x.to(DType::f64)).output.dtype() == DType::f64);
  // The buffer round-trips through state_dict by its PyTorch-style key.
  nn::Recurrent other(nn::RecurrentOptions(3, 4).num_layers(2).bidirectional(true),
                      [](std::int64_t in, std::int64_t hidden) { return std::make_shared<ScaledCell>(in, hidden); });
  other.to(DType::f64);
  NamedTensors state = layer.state_dict();
  for (auto& [key, t] : state)
    if (key == "scale_l1_reverse") t = full({4}, 2.0, DType::f64);
  other.load_state_dict(state);
  CHECK(dynamic_cast<ScaledCell&>(other.cell(1, 1)).scale.to_vector<double>() == std::vector<double>(4, 2.0));
}

TEST_CASE("Keras's input_dropout: one mask per sequence, the same at every time step, off in eval()") {
  manual_seed(3);
  nn::LSTM lstm(nn::LSTMOptions(6, 4).input_dropout(0.5));
  const Tensor x = randn({7, 3, 6}).requires_grad_();
  lstm(x).output.sum().backward();
  // A dropped feature of a sequence gets no gradient at any step; a kept one at every step.
  const std::vector<float> g = x.grad().to_vector<float>();
  int dropped = 0, kept = 0;
  for (std::int64_t b = 0; b < 3; ++b)
    for (std::int64_t i = 0; i < 6; ++i) {
      int zero_steps = 0;
      for (std::int64_t t = 0; t < 7; ++t) zero_steps += g[static_cast<std::size_t>((t * 3 + b) * 6 + i)] == 0.0f;
      CHECK((zero_steps == 0 || zero_steps == 7));
      (zero_steps == 7 ? dropped : kept) += 1;
    }
  CHECK(dropped > 0);
  CHECK(kept > 0);
  // eval(): no dropout, the output of the same weights without the option.
  nn::LSTM plain(6, 4);
  plain.load_state_dict(lstm.state_dict());
  lstm.eval();
  CHECK(max_abs_diff(lstm(x).output, plain(x).output) == 0.0);
}

TEST_CASE("Keras's recurrent_dropout: the recurrent matmul reads h times one mask per sequence") {
  // Replayed by hand: seeded, the layer draws one (B, H) mask (input_dropout is off), then
  // every step calls the cell with it; the state carried on is not dropped.
  const std::int64_t B = 3, H = 4;
  std::vector<std::pair<std::string, std::shared_ptr<nn::Recurrent>>> layers = {
      {"RNN", std::make_shared<nn::RNN>(nn::RNNOptions(5, H).recurrent_dropout(0.4))},
      {"LSTM", std::make_shared<nn::LSTM>(nn::LSTMOptions(5, H).recurrent_dropout(0.4))},
      {"GRU", std::make_shared<nn::GRU>(nn::GRUOptions(5, H).recurrent_dropout(0.4))},
      {"GRU reset_after=false", std::make_shared<nn::GRU>(nn::GRUOptions(5, H).reset_after(false).recurrent_dropout(0.4))},
  };
  for (auto& [name, layer] : layers) {
    CAPTURE(name);
    const Tensor x = randn({6, B, 5});
    manual_seed(21);
    const nn::RecurrentOutput out = layer->Recurrent::forward(x);
    manual_seed(21);
    const Tensor mask = nn::dropout(ones({B, H}), 0.4, true);
    nn::RecurrentCell& cell = layer->cell(0);
    nn::CellState state = cell.zero_state(B);
    std::vector<Tensor> steps;
    for (std::int64_t t = 0; t < 6; ++t) {
      state = cell.step(cell.project_input(select(x, 0, t)), state, mask);
      steps.push_back(state[0]);
    }
    CHECK(max_abs_diff(out.output, stack(steps, 0)) < 1e-6);
    // The mask mattered, and eval() turns it off.
    layer->eval();
    const Tensor plain = layer->Recurrent::forward(x).output;
    CHECK(max_abs_diff(plain, out.output) > 1e-3);
    nn::CellState s = cell.zero_state(B);
    for (std::int64_t t = 0; t < 6; ++t) s = cell.step_input(select(x, 0, t), s);
    CHECK(max_abs_diff(select(plain, 0, 5), s[0]) < 1e-6);
  }
}

TEST_CASE("dropout options: ranges checked, a lone layer's dropout warns, a custom cell without support is named") {
  CHECK_THROWS_WITH_AS(nn::LSTM(nn::LSTMOptions(2, 3).input_dropout(1.5)),
                       "Recurrent: input_dropout must be in [0, 1], got 1.5", Error);
  CHECK_THROWS_WITH_AS(nn::GRU(nn::GRUOptions(2, 3).recurrent_dropout(-0.1)),
                       "Recurrent: recurrent_dropout must be in [0, 1], got -0.1", Error);
  std::ostringstream captured;
  std::streambuf* old = std::cerr.rdbuf(captured.rdbuf());
  nn::LSTM lone(nn::LSTMOptions(16, 8).dropout(0.3));
  nn::LSTM stacked(nn::LSTMOptions(16, 8).dropout(0.3).num_layers(2));
  std::cerr.rdbuf(old);
  const std::string warning = captured.str();
  CHECK(warning.find("dropout=0.3 and num_layers=1") != std::string::npos);
  CHECK(warning.find("input_dropout() and recurrent_dropout()") != std::string::npos);
  CHECK(std::count(warning.begin(), warning.end(), '\n') == 1);  // the stacked layer did not warn
  CHECK(nn::LSTM(nn::LSTMOptions(16, 8).input_dropout(0.3).recurrent_dropout(0.2)).repr() ==
        "LSTM(16, 8, input_dropout=0.3, recurrent_dropout=0.2)");

  nn::Recurrent custom(nn::RecurrentOptions(3, 4).recurrent_dropout(0.5), mgu_factory());
  CHECK_THROWS_WITH_AS(custom(randn({2, 1, 3})), doctest::Contains("MGUCell: recurrent_dropout needs a cell that overrides"),
                       Error);
  custom.eval();
  CHECK(custom(randn({2, 1, 3})).output.shape() == Shape{2, 1, 4});
}

TEST_CASE("one state and output type for every layer; a layer moves into an nn::Recurrent value intact") {
  // Code that picks the cell at run time: a function returning any layer by value.
  auto make = [](const std::string& kind) -> nn::Recurrent {
    if (kind == "lstm") return nn::LSTM(nn::LSTMOptions(3, 4).num_layers(2));
    if (kind == "gru") return nn::GRU(nn::GRUOptions(3, 4).reset_after(false));
    return nn::RNN(3, 4);
  };
  const Tensor x = randn({5, 2, 3});
  for (const std::string kind : {"lstm", "gru", "rnn"}) {
    CAPTURE(kind);
    manual_seed(8);
    nn::Recurrent layer = make(kind);
    nn::RecurrentOutput out = layer(x);
    const std::int64_t L = kind == "lstm" ? 2 : 1;
    CHECK(out.state.h().shape() == Shape{L, 2, 4});
    CHECK(out.state.size() == (kind == "lstm" ? 2u : 1u));
    if (kind == "lstm") CHECK(out.state.c().shape() == Shape{2, 2, 4});
    else CHECK_THROWS_WITH_AS(out.state.c(), doctest::Contains("only an LSTM's has c"), Error);
    // Continue from the state; its detached copy carries values only.
    const nn::RecurrentState carried = out.state.detach();
    CHECK_FALSE(carried.h().requires_grad());
    CHECK(layer(x, carried).output.shape() == out.output.shape());
    // The moved layer keeps its name, repr and keys, and computes what the original does.
    manual_seed(8);
    nn::Recurrent original = make(kind);
    CHECK(layer.repr() == original.repr());
    CHECK(layer.repr().rfind(kind == "lstm" ? "LSTM(3, 4, num_layers=2)" : kind == "gru" ? "GRU(3, 4, reset_after=false)" : "RNN(3, 4)", 0) == 0);
    CHECK(names(layer) == names(original));
    CHECK(max_abs_diff(original(x).output, out.output) == 0.0);
  }
  // The typed layers take the same states: h0 alone, or {h0, c0}.
  nn::LSTM lstm(3, 4);
  const nn::RecurrentState s{zeros({1, 2, 4}), zeros({1, 2, 4})};
  CHECK(max_abs_diff(lstm(x, s).output, lstm(x).output) == 0.0);
  CHECK(max_abs_diff(lstm(x, {s.h(), s.c()}).output, lstm(x).output) == 0.0);
}

TEST_CASE("Sequential holds Embedding → LSTM → last step → Linear, the Keras tutorial's model") {
  manual_seed(4);
  auto embedding = std::make_shared<nn::Embedding>(50, 6);
  auto lstm = std::make_shared<nn::LSTM>(nn::LSTMOptions(6, 5).batch_first(true));
  auto dense = std::make_shared<nn::Linear>(5, 1);
  nn::Sequential model{embedding, std::make_shared<nn::SequenceOutput>(lstm),
                       std::make_shared<nn::LastStep>(/*batch_first=*/true), dense};
  const Tensor ids = randint(0, 50, {3, 7});
  const Tensor by_hand = (*dense)(nn::last_step((*lstm)((*embedding)(ids)).output, {}, true));
  CHECK(max_abs_diff(model(ids), by_hand) == 0.0);
  std::vector<std::string> keys;
  for (const auto& [key, t] : model.state_dict()) keys.push_back(key);
  CHECK(keys == std::vector<std::string>{"0.weight", "1.weight_ih_l0", "1.weight_hh_l0", "1.bias_ih_l0", "1.bias_hh_l0",
                                         "3.weight", "3.bias"});
  CHECK(model.repr() ==
        "Sequential(\n  (0): Embedding(50, 6)\n  (1): SequenceOutput(LSTM(6, 5, batch_first=true))\n"
        "  (2): LastStep(batch_first=true)\n  (3): Linear(in_features=5, out_features=1, bias=true)\n)");
  // eval() reaches the LSTM's cells through the adapter.
  model.eval();
  CHECK_FALSE(lstm->cell(0).is_training());
}

TEST_CASE("a cell whose gates × hidden_size overflows an int64 is an Error, not empty weights") {
  constexpr std::int64_t H = std::int64_t{1} << 62;
  CHECK_THROWS_WITH_AS(nn::LSTMCell(nn::LSTMCellOptions(1, H)),
                       "LSTMCell: 4 gates × hidden_size = 4 × 4611686018427387904, more than an int64 can count", Error);
  CHECK_THROWS_WITH_AS(nn::GRUCell(nn::GRUCellOptions(1, H)),
                       "GRUCell: 3 gates × hidden_size = 3 × 4611686018427387904, more than an int64 can count", Error);
}
