// Exported models run in ONNX Runtime 1.30 give xgrad's outputs and final states (float32,
// 1e-5), at the traced sizes and at a batch size and sequence length never traced.
#include <doctest/doctest.h>

#include <xgrad/onnx.hpp>
#include <xgrad/xgrad.hpp>

#include "../tensor_approx.hpp"
#include "../temp_dir.hpp"
#include "ort.hpp"

using namespace xgrad;
using xgrad_test::approx;

namespace {

// What one recurrent configuration feeds the layer besides x.
struct Feed {
  bool lengths = false;
  bool state = false;
  bool pre = false;  // lengths padded before the sequences (nn::Side::pre)
};

// Lengths of B sequences of at most T steps: T, then shorter ones (at least 1).
Tensor make_lengths(std::int64_t B, std::int64_t T) {
  std::vector<std::int64_t> v;
  for (std::int64_t b = 0; b < B; ++b) v.push_back(std::max<std::int64_t>(1, T - 2 * b));
  return from_vector(v, {B});
}

// Exports `layer` (x [, lengths] [, h0 [, c0]] → y, h_n [, c_n]) with dynamic batch and
// sequence, then compares ONNX Runtime with xgrad at the traced sizes (B 3, T 5) and at two
// others.
void check_recurrent(nn::Recurrent& layer, Feed feed) {
  XGRAD_REQUIRE_ORT(ort);
  layer.eval();
  const auto& o = layer.recurrent_options();
  const bool bf = o.batch_first();
  const auto K = static_cast<std::int64_t>(layer.cells()[0]->state_sizes().size());
  const std::int64_t LD = o.num_layers() * layer.num_directions();
  const std::vector<std::string> state_in{"h0", "c0"}, state_out{"h_n", "c_n"};

  auto make_inputs = [&](std::int64_t B, std::int64_t T) {
    std::vector<std::pair<std::string, Tensor>> in{{"x", bf ? randn({B, T, o.input_size()}) : randn({T, B, o.input_size()})}};
    if (feed.lengths) in.push_back({"lengths", make_lengths(B, T)});
    if (feed.state)
      for (std::int64_t k = 0; k < K; ++k) in.push_back({state_in[static_cast<std::size_t>(k)], randn({LD, B, layer.cells()[0]->state_sizes()[static_cast<std::size_t>(k)]})});
    return in;
  };
  auto forward = [&](const std::vector<Tensor>& in) {
    std::size_t i = 1;
    nn::Lengths lengths = feed.lengths ? nn::Lengths(in[i++], feed.pre ? nn::Side::pre : nn::Side::post) : nn::Lengths();
    nn::CellState entries;
    if (feed.state)
      for (std::int64_t k = 0; k < K; ++k) entries.push_back(in[i++]);
    auto [y, state] = layer(in[0], nn::RecurrentState(entries), lengths);
    std::vector<Tensor> out{y};
    for (std::int64_t k = 0; k < K; ++k) out.push_back(state[static_cast<std::size_t>(k)]);
    return out;
  };

  const auto example = make_inputs(3, 5);
  std::vector<Tensor> example_tensors;
  std::vector<std::string> input_names;
  std::vector<onnx::DynamicAxis> axes{{0, bf ? 0 : 1, "batch"}, {0, bf ? 1 : 0, "sequence"}};
  for (std::size_t i = 0; i < example.size(); ++i) {
    example_tensors.push_back(example[i].second);
    input_names.push_back(example[i].first);
    if (i > 0) axes.push_back({i, example[i].first == "lengths" ? 0 : 1, "batch"});
  }
  std::vector<std::string> output_names{"y"};
  for (std::int64_t k = 0; k < K; ++k) output_names.push_back(state_out[static_cast<std::size_t>(k)]);

  xgrad_test::TempDir dir;
  const std::string model = dir.file("model.onnx");
  onnx::export_model(layer, forward, example_tensors, model,
                     onnx::ExportOptions().input_names(input_names).output_names(output_names).dynamic_axes(axes));
  onnx::check_model(model);

  for (auto [B, T] : {std::pair<std::int64_t, std::int64_t>{3, 5}, {2, 9}, {6, 4}}) {
    CAPTURE(B);
    CAPTURE(T);
    const auto inputs = B == 3 ? example : make_inputs(B, T);
    std::vector<Tensor> tensors;
    for (const auto& [name, t] : inputs) tensors.push_back(t);
    std::vector<Tensor> expected;
    {
      NoGradGuard no_grad;
      expected = forward(tensors);
    }
    auto got = xgrad_test::run_ort(ort, model, inputs, output_names);
    for (std::size_t i = 0; i < output_names.size(); ++i) {
      CAPTURE(output_names[i]);
      CHECK(got[output_names[i]] == approx(expected[i], 1e-5, 1e-5));
    }
  }
}

}  // namespace

TEST_CASE("ort_rnn_tanh") {
  manual_seed(1);
  nn::RNN rnn(nn::RNNOptions(4, 6));
  check_recurrent(rnn, {});
}

TEST_CASE("ort_rnn_relu_two_layers_bidirectional") {
  manual_seed(2);
  nn::RNN rnn(nn::RNNOptions(4, 6).nonlinearity(nn::RNNNonlinearity::relu).num_layers(2).bidirectional(true));
  check_recurrent(rnn, {});
}

TEST_CASE("ort_lstm") {
  manual_seed(3);
  nn::LSTM lstm(nn::LSTMOptions(4, 7));
  check_recurrent(lstm, {});
}

TEST_CASE("ort_lstm_three_layers_initial_states") {
  manual_seed(4);
  nn::LSTM lstm(nn::LSTMOptions(4, 7).num_layers(3).dropout(0.3));
  check_recurrent(lstm, {.lengths = false, .state = true});
}

TEST_CASE("ort_lstm_bidirectional_batch_first") {
  manual_seed(5);
  nn::LSTM lstm(nn::LSTMOptions(4, 7).bidirectional(true).batch_first(true));
  check_recurrent(lstm, {});
}

TEST_CASE("ort_lstm_lengths_bidirectional_two_layers") {
  manual_seed(6);
  nn::LSTM lstm(nn::LSTMOptions(4, 7).num_layers(2).bidirectional(true));
  check_recurrent(lstm, {.lengths = true, .state = true});
}

// Pre-padded lengths (Keras's default) export as a rotation to post-padding around ONNX's ops:
// the outputs at the padded (leading) steps and the final states are xgrad's.
TEST_CASE("ort_lstm_pre_padding_bidirectional_two_layers") {
  manual_seed(16);
  nn::LSTM lstm(nn::LSTMOptions(4, 7).num_layers(2).bidirectional(true));
  check_recurrent(lstm, {.lengths = true, .state = true, .pre = true});
}

TEST_CASE("ort_gru_pre_padding_batch_first") {
  manual_seed(17);
  nn::GRU gru(nn::GRUOptions(4, 5).batch_first(true).bidirectional(true));
  check_recurrent(gru, {.lengths = true, .state = false, .pre = true});
}

TEST_CASE("ort_rnn_pre_padding_two_layers") {
  manual_seed(18);
  nn::RNN rnn(nn::RNNOptions(4, 6).num_layers(2));
  check_recurrent(rnn, {.lengths = true, .state = true, .pre = true});
}

TEST_CASE("ort_lstm_no_bias") {
  manual_seed(7);
  nn::LSTM lstm(nn::LSTMOptions(4, 7).bias(false).batch_first(true));
  check_recurrent(lstm, {.lengths = true, .state = false});
}

TEST_CASE("ort_gru_reset_after") {
  manual_seed(8);
  nn::GRU gru(nn::GRUOptions(4, 6).num_layers(2));
  check_recurrent(gru, {.lengths = false, .state = true});
}

TEST_CASE("ort_gru_reset_before") {
  manual_seed(9);
  nn::GRU gru(nn::GRUOptions(4, 6).reset_after(false).batch_first(true));
  check_recurrent(gru, {.lengths = true, .state = true});
}

TEST_CASE("ort_gru_bidirectional_lengths") {
  manual_seed(10);
  nn::GRU gru(nn::GRUOptions(4, 6).bidirectional(true).num_layers(3));
  check_recurrent(gru, {.lengths = true, .state = false});
}

TEST_CASE("ort_rnn_lengths_batch_first") {
  manual_seed(11);
  nn::RNN rnn(nn::RNNOptions(4, 6).batch_first(true).num_layers(2));
  check_recurrent(rnn, {.lengths = true, .state = true});
}

namespace {

// Embedding → 2-layer LSTM → Linear, on padded token ids with their lengths: a per-step
// head and a head on the final hidden state of the top layer.
struct Tagger : nn::Module {
  nn::Embedding embedding{50, 6};
  nn::LSTM lstm{nn::LSTMOptions(6, 8).num_layers(2).batch_first(true)};
  nn::Linear per_step{8, 3};
  nn::Linear head{8, 2};
  Tagger() {
    register_module("embedding", embedding);
    register_module("lstm", lstm);
    register_module("per_step", per_step);
    register_module("head", head);
  }
  std::vector<Tensor> forward(const Tensor& ids, const Tensor& lengths) {
    auto [out, state] = lstm(embedding(ids), {}, nn::Lengths(lengths));
    return {per_step(out), head(lstm.final_hidden(state))};
  }
};

}  // namespace

TEST_CASE("ort_embedding_lstm_linear") {
  XGRAD_REQUIRE_ORT(ort);
  manual_seed(12);
  Tagger model;
  model.eval();
  auto forward = [&](const std::vector<Tensor>& in) { return model.forward(in[0], in[1]); };
  xgrad_test::TempDir dir;
  const std::string path = dir.file("tagger.onnx");
  onnx::export_model(model, forward, {randint(0, 50, {3, 5}), make_lengths(3, 5)}, path,
                     onnx::ExportOptions()
                         .input_names({"ids", "lengths"})
                         .output_names({"tags", "logits"})
                         .dynamic_axes({{0, 0, "batch"}, {0, 1, "sequence"}, {1, 0, "batch"}}));
  for (auto [B, T] : {std::pair<std::int64_t, std::int64_t>{3, 5}, {4, 11}, {7, 2}}) {
    CAPTURE(B);
    CAPTURE(T);
    const Tensor ids = randint(0, 50, {B, T}), lengths = make_lengths(B, T);
    std::vector<Tensor> expected;
    {
      NoGradGuard no_grad;
      expected = forward({ids, lengths});
    }
    auto got = xgrad_test::run_ort(ort, path, {{"ids", ids}, {"lengths", lengths}}, {"tags", "logits"});
    CHECK(got["tags"] == approx(expected[0], 1e-5, 1e-5));
    CHECK(got["logits"] == approx(expected[1], 1e-5, 1e-5));
  }
}

namespace {

// A forward through (nearly) every primitive in the table, with a dynamic batch.
struct Zoo : nn::Module {
  nn::Linear linear{4, 6};
  nn::Embedding embedding{10, 4};
  Zoo() {
    register_module("linear", linear);
    register_module("embedding", embedding);
  }
  std::vector<Tensor> forward(const Tensor& x, const Tensor& ids, const Tensor& cols) {
    const std::int64_t B = x.size(0);
    Tensor a = linear(x + embedding(ids));                                              // (B, 6)
    Tensor b = relu(a) + sigmoid(a) * tanh(a) - gelu(a) / (1.0 + softplus(a));
    Tensor c = leaky_relu(a, 0.1) + clamp(a, -0.5, 0.5) + pow(abs(a) + 1.0, 1.5) + exp(-abs(a)) +
               log(abs(a) + 1.0) + sqrt(abs(a) + 1.0);
    Tensor d = softmax(a, 1) + log_softmax(a, -1);
    Tensor e = cat({b, c}, 1);                                                          // (B, 12)
    std::vector<Tensor> parts = chunk(e, 3, 1);                                         // 3 × (B, 4)
    Tensor f = parts[0] * parts[1] + parts[2] / (abs(parts[1]) + 1.0);
    Tensor g = reshape(transpose(reshape(f, {B, 2, 2}), 1, 2), {B, 4});
    Tensor h = narrow(g, 1, 1, 2);                                                      // (B, 2)
    Tensor i = select(g, 1, 3) + unbind(g, 1)[0];                                       // (B)
    Tensor j = sum(g, {1}) + mean(g, {1}) + max(g, 1).first + min(g, 1).first + logsumexp(g, {1});
    Tensor k = where(gt(i, 0.0), i, -j);
    Tensor l = lerp(i, j, 0.3).to(DType::f64).to(DType::f32);
    Tensor m = expand(unsqueeze(k, 1), {B, 3}) + gather(g, 1, cols);
    Tensor n = pow(abs(h) + 1.0, h) + sum_squared_difference(h, h * 0.5) + matmul(g, transpose(g, 0, 1)).sum({1}, true);
    return {d, e, h, l, m, n};
  }
};

}  // namespace

TEST_CASE("ort_primitives") {
  XGRAD_REQUIRE_ORT(ort);
  manual_seed(13);
  Zoo model;
  model.eval();
  auto forward = [&](const std::vector<Tensor>& in) { return model.forward(in[0], in[1], in[2]); };
  xgrad_test::TempDir dir;
  const std::string path = dir.file("zoo.onnx");
  const std::vector<std::string> outputs{"d", "e", "h", "l", "m", "n"};
  onnx::export_model(model, forward, {randn({3, 4}), randint(0, 10, {3}), randint(0, 4, {3, 3})}, path,
                     onnx::ExportOptions().input_names({"x", "ids", "cols"}).output_names(outputs).dynamic_axes(
                         {{0, 0, "batch"}, {1, 0, "batch"}, {2, 0, "batch"}}));
  for (std::int64_t B : {3, 5}) {
    CAPTURE(B);
    const Tensor x = randn({B, 4}), ids = randint(0, 10, {B}), cols = randint(0, 4, {B, 3});
    std::vector<Tensor> expected;
    {
      NoGradGuard no_grad;
      expected = forward({x, ids, cols});
    }
    auto got = xgrad_test::run_ort(ort, path, {{"x", x}, {"ids", ids}, {"cols", cols}}, outputs);
    for (std::size_t o = 0; o < outputs.size(); ++o) {
      CAPTURE(outputs[o]);
      CHECK(got[outputs[o]] == approx(expected[o], 1e-5, 1e-5));
    }
  }
}

namespace {

// User cells, written as docs/custom_layer.md shows: an Elman cell, and a cell with two
// state entries of different widths that splits its projection and calls a child module.
struct Elman : nn::RecurrentCell {
  Tensor w_ih, w_hh, b;
  Elman(std::int64_t in, std::int64_t hidden) : RecurrentCell(in, {hidden}) {
    w_ih = register_parameter("weight_ih", randn({hidden, in}) * 0.4);
    w_hh = register_parameter("weight_hh", randn({hidden, hidden}) * 0.4);
    b = register_parameter("bias", randn({hidden}) * 0.1);
  }
  Tensor project_input(const Tensor& x) override { return matmul(x, w_ih.t()) + b; }
  nn::CellState step(const Tensor& xp, const nn::CellState& s) override { return {tanh(xp + matmul(s[0], w_hh.t()))}; }
  std::string type_name() const override { return "Elman"; }
};

struct Accumulator : nn::RecurrentCell {
  Tensor w_ih, w_hh;
  nn::Linear mix;
  Accumulator(std::int64_t in, std::int64_t hidden) : RecurrentCell(in, {hidden, 3}), mix(hidden, 3) {
    w_ih = register_parameter("weight_ih", randn({2 * hidden, in}) * 0.4);
    w_hh = register_parameter("weight_hh", randn({2 * hidden, hidden}) * 0.4);
    register_module("mix", mix);
  }
  Tensor project_input(const Tensor& x) override { return matmul(x, w_ih.t()); }
  nn::CellState step(const Tensor& xp, const nn::CellState& s) override {
    std::vector<Tensor> g = chunk(xp + matmul(s[0], w_hh.t()), 2, 1);   // 2 × (B, H)
    Tensor h = sigmoid(g[0]) * tanh(g[1]);
    return {h, s[1] * 0.5 + mix(h)};                                     // (B, H), (B, 3)
  }
  std::string type_name() const override { return "Accumulator"; }
};

}  // namespace

TEST_CASE("ort_user_cell_scan") {
  manual_seed(14);
  nn::Recurrent rnn(nn::RecurrentOptions(4, 6).num_layers(2).bidirectional(true),
                    [](std::int64_t in, std::int64_t h) { return std::make_shared<Elman>(in, h); });
  check_recurrent(rnn, {.lengths = false, .state = true});
}

TEST_CASE("ort_user_cell_scan_two_states_batch_first") {
  manual_seed(15);
  nn::Recurrent rnn(nn::RecurrentOptions(4, 5).batch_first(true).num_layers(2),
                    [](std::int64_t in, std::int64_t h) { return std::make_shared<Accumulator>(in, h); });
  check_recurrent(rnn, {});
}

// User cells with lengths: the Scan also reads whether each step is valid, and keeps the state
// and outputs zero where it is not, as the driver's masks do.
TEST_CASE("ort_user_cell_scan_lengths_bidirectional") {
  manual_seed(19);
  nn::Recurrent rnn(nn::RecurrentOptions(4, 6).num_layers(2).bidirectional(true),
                    [](std::int64_t in, std::int64_t h) { return std::make_shared<Elman>(in, h); });
  check_recurrent(rnn, {.lengths = true, .state = true});
}

TEST_CASE("ort_user_cell_scan_pre_padding_batch_first") {
  manual_seed(20);
  nn::Recurrent rnn(nn::RecurrentOptions(4, 5).batch_first(true).bidirectional(true),
                    [](std::int64_t in, std::int64_t h) { return std::make_shared<Accumulator>(in, h); });
  check_recurrent(rnn, {.lengths = true, .state = true, .pre = true});
}

namespace {

// Exports a net over 4 input channels (channels first or last, batched or not) with dynamic
// batch and steps, checks the model, and compares ORT with xgrad at the traced (N, L) = (3, 20)
// and at two others.
void check_conv_net(const xgrad_test::Ort& ort, nn::UnaryModule& net, bool channels_last, bool unbatched) {
  net.eval();
  auto forward = [&](const std::vector<Tensor>& in) { return std::vector<Tensor>{net(in[0])}; };
  auto make = [&](std::int64_t N, std::int64_t L) {
    if (channels_last) return unbatched ? randn({L, 4}) : randn({N, L, 4});
    return unbatched ? randn({4, L}) : randn({N, 4, L});
  };
  const std::int64_t step_dim = (unbatched ? 0 : 1) + (channels_last ? 0 : 1);
  xgrad_test::TempDir dir;
  const std::string path = dir.file("conv.onnx");
  std::vector<onnx::DynamicAxis> axes{{0, step_dim, "steps"}};
  if (!unbatched) axes.push_back({0, 0, "batch"});
  onnx::export_model(net, forward, {make(3, 20)}, path,
                     onnx::ExportOptions().input_names({"x"}).output_names({"y"}).dynamic_axes(axes));
  onnx::check_model(path);
  for (auto [N, L] : {std::pair<std::int64_t, std::int64_t>{3, 20}, {2, 33}, {5, 12}}) {
    CAPTURE(N);
    CAPTURE(L);
    const Tensor x = make(N, L);
    Tensor expected;
    {
      NoGradGuard no_grad;
      expected = net(x);
    }
    CHECK(xgrad_test::run_ort(ort, path, {{"x", x}}, {"y"})["y"] == approx(expected, 1e-5, 1e-5));
  }
}

}  // namespace

// Conv1d → ReLU → MaxPool1d / AvgPool1d → Linear per step, as ONNX Conv, MaxPool and
// AveragePool: stride, padding (numbers and "same"), dilation, groups, bias, count_include_pad,
// at the traced (N, L) and at others.
TEST_CASE("ort_conv1d_pool_linear") {
  XGRAD_REQUIRE_ORT(ort);
  struct Net : nn::UnaryModule {
    std::shared_ptr<nn::Conv1d> conv;
    std::shared_ptr<nn::UnaryModule> pool;
    std::shared_ptr<nn::Linear> head;
    Net(nn::Conv1dOptions c, std::shared_ptr<nn::UnaryModule> p)
        : conv(register_module("conv", std::make_shared<nn::Conv1d>(c))), pool(register_module("pool", std::move(p))),
          head(register_module("head", std::make_shared<nn::Linear>(c.out_channels(), 3))) {}
    Tensor forward(const Tensor& x) override {
      const Tensor y = (*pool)(relu((*conv)(x)));  // (N, C, L') or (C, L')
      return (*head)(y.transpose(-2, -1));          // (N, L', 3) or (L', 3)
    }
  };
  using P = nn::Pool1dOptions;
  std::vector<std::pair<std::string, std::shared_ptr<Net>>> nets;
  nets.push_back({"valid, max 2", std::make_shared<Net>(nn::Conv1dOptions(4, 6, 3), std::make_shared<nn::MaxPool1d>(2))});
  nets.push_back({"same, dilation 2, max pad 1", std::make_shared<Net>(nn::Conv1dOptions(4, 6, 4).padding("same").dilation(2),
                                                                    std::make_shared<nn::MaxPool1d>(P(3).stride(2).padding(1)))});
  nets.push_back({"stride 2, pad 2, groups 2, no bias, avg", std::make_shared<Net>(nn::Conv1dOptions(4, 6, 5).stride(2).padding(2).groups(2).bias(false),
                                                                                std::make_shared<nn::AvgPool1d>(P(3).stride(1).padding(1)))});
  nets.push_back({"depthwise, avg without pad count", std::make_shared<Net>(nn::Conv1dOptions(4, 4, 3).groups(4).padding(1),
                                                                         std::make_shared<nn::AvgPool1d>(P(4).stride(3).padding(2).count_include_pad(false)))});
  for (bool unbatched : {false, true})
    for (auto& [name, net] : nets) {
      CAPTURE(name);
      CAPTURE(unbatched);
      manual_seed(30);
      check_conv_net(ort, *net, false, unbatched);
    }
}

// Keras's layout and padding: channels-last Conv1d ("causal", strides, dilation, groups, each
// padding_mode) → ReLU → channels-last MaxPool1d / AvgPool1d → Linear over the channels, as
// Transpose, Pad or Slice+Concat, Conv (causal as its left pads), pool and Transpose, at the
// traced (N, L) and at others.
TEST_CASE("ort_conv1d_channels_last_causal") {
  XGRAD_REQUIRE_ORT(ort);
  struct Net : nn::UnaryModule {
    std::shared_ptr<nn::Conv1d> conv;
    std::shared_ptr<nn::UnaryModule> pool;
    std::shared_ptr<nn::Linear> head;
    Net(nn::Conv1dOptions c, std::shared_ptr<nn::UnaryModule> p)
        : conv(register_module("conv", std::make_shared<nn::Conv1d>(c.channels_last(true)))),
          pool(register_module("pool", std::move(p))),
          head(register_module("head", std::make_shared<nn::Linear>(c.out_channels(), 3))) {}
    Tensor forward(const Tensor& x) override { return (*head)((*pool)(relu((*conv)(x)))); }  // (N, L', 3) or (L', 3)
  };
  using P = nn::Pool1dOptions;
  std::vector<std::pair<std::string, std::shared_ptr<Net>>> nets;
  nets.push_back({"causal, dilation 2, max 2", std::make_shared<Net>(nn::Conv1dOptions(4, 6, 3).padding("causal").dilation(2),
                                                                  std::make_shared<nn::MaxPool1d>(P(2).channels_last(true)))});
  nets.push_back({"causal, stride 2, groups 2, avg", std::make_shared<Net>(nn::Conv1dOptions(4, 6, 3).padding("causal").stride(2).groups(2),
                                                                        std::make_shared<nn::AvgPool1d>(P(3).stride(1).padding(1).channels_last(true)))});
  nets.push_back({"same, max pad 1", std::make_shared<Net>(nn::Conv1dOptions(4, 5, 4).padding("same"),
                                                        std::make_shared<nn::MaxPool1d>(P(3).stride(2).padding(1).channels_last(true)))});
  nets.push_back({"reflect, padding 2, max 2", std::make_shared<Net>(nn::Conv1dOptions(4, 6, 3).padding(2).padding_mode(nn::PaddingMode::reflect),
                                                                  std::make_shared<nn::MaxPool1d>(P(2).channels_last(true)))});
  nets.push_back({"replicate, same, stride 1, avg", std::make_shared<Net>(nn::Conv1dOptions(4, 6, 4).padding("same").padding_mode(nn::PaddingMode::replicate),
                                                                       std::make_shared<nn::AvgPool1d>(P(2).channels_last(true)))});
  nets.push_back({"circular, causal, dilation 2, max 2", std::make_shared<Net>(nn::Conv1dOptions(4, 6, 3).padding("causal").dilation(2).padding_mode(nn::PaddingMode::circular),
                                                                            std::make_shared<nn::MaxPool1d>(P(2).channels_last(true)))});
  for (bool unbatched : {false, true})
    for (auto& [name, net] : nets) {
      CAPTURE(name);
      CAPTURE(unbatched);
      manual_seed(31);
      check_conv_net(ort, *net, true, unbatched);
    }
}

// Global max / average pooling over the valid steps, with lengths as an input: the mask is
// computed from the lengths in the graph (post- and pre-padded, every time_dim, a length 0).
TEST_CASE("ort_global_pools_lengths") {
  XGRAD_REQUIRE_ORT(ort);
  struct Config {
    bool max;
    std::int64_t time_dim;
    nn::Side side;
  };
  for (const Config c : {Config{true, -1, nn::Side::post}, Config{false, -1, nn::Side::pre},
                         Config{true, 1, nn::Side::pre}, Config{false, 0, nn::Side::post}}) {
    CAPTURE(c.max);
    CAPTURE(c.time_dim);
    manual_seed(40);
    nn::Linear head(4, 2);
    head.eval();
    auto forward = [&](const std::vector<Tensor>& in) {
      const nn::Lengths lengths(in[1], c.side);
      const Tensor x = relu(in[0]);
      return std::vector<Tensor>{head(c.max ? nn::global_max_pool1d(x, lengths, c.time_dim)
                                            : nn::global_avg_pool1d(x, lengths, c.time_dim))};
    };
    const std::int64_t td = c.time_dim < 0 ? 2 : c.time_dim, bd = td == 0 ? 1 : 0;
    auto make = [&](std::int64_t B, std::int64_t T) {
      Shape shape{0, 0, 0};
      shape[static_cast<std::size_t>(td)] = T;
      shape[static_cast<std::size_t>(bd)] = B;
      for (auto& d : shape)
        if (d == 0) d = 4;  // channels
      std::vector<std::int64_t> len;
      for (std::int64_t b = 0; b < B; ++b) len.push_back(b == 1 ? 0 : std::max<std::int64_t>(1, T - 3 * b));
      return std::vector<std::pair<std::string, Tensor>>{{"x", randn(shape)}, {"lengths", from_vector(len, {B})}};
    };
    const auto example = make(3, 7);
    xgrad_test::TempDir dir;
    const std::string path = dir.file("pool.onnx");
    onnx::export_model(head, forward, {example[0].second, example[1].second}, path,
                       onnx::ExportOptions().input_names({"x", "lengths"}).output_names({"y"}).dynamic_axes(
                           {{0, bd, "batch"}, {0, td, "steps"}, {1, 0, "batch"}}));
    onnx::check_model(path);
    for (auto [B, T] : {std::pair<std::int64_t, std::int64_t>{3, 7}, {5, 12}, {2, 4}}) {
      CAPTURE(B);
      CAPTURE(T);
      const auto inputs = B == 3 ? example : make(B, T);
      Tensor expected;
      {
        NoGradGuard no_grad;
        expected = forward({inputs[0].second, inputs[1].second})[0];
      }
      CHECK(xgrad_test::run_ort(ort, path, inputs, {"y"})["y"] == approx(expected, 1e-5, 1e-5));
    }
  }
}

TEST_CASE("ort_keras_tutorial_models") {
  XGRAD_REQUIRE_ORT(ort);
  // The Keras tutorial's six models (examples/keras_tutorial.cpp), with Keras's initialisation:
  // Embedding(500, 16) or one-hot(500) → SimpleRNN / LSTM / LSTM → LSTM / GRU (8) → last step
  // → Dense(1), as Sequentials.
  const std::int64_t V = 500, E = 16, U = 8;
  struct OneHot : nn::UnaryModule {
    Tensor forward(const Tensor& ids) override { return nn::one_hot(ids, 500); }
  };
  auto embedding = [&] { return std::make_shared<nn::Embedding>(V, E); };
  auto seq = [](nn::Recurrent layer) { return std::make_shared<nn::SequenceOutput>(std::make_shared<nn::Recurrent>(std::move(layer))); };
  auto last = [] { return std::make_shared<nn::LastStep>(true); };
  auto dense = [&] { return std::make_shared<nn::Linear>(U, 1); };
  std::vector<nn::Sequential> models;
  models.push_back(nn::Sequential{embedding(), seq(nn::RNN(nn::RNNOptions(E, U).batch_first(true))), last(), dense()});
  models.push_back(nn::Sequential{std::make_shared<OneHot>(), seq(nn::RNN(nn::RNNOptions(V, U).batch_first(true))), last(), dense()});
  models.push_back(nn::Sequential{embedding(), seq(nn::LSTM(nn::LSTMOptions(E, U).batch_first(true))), last(), dense()});
  models.push_back(nn::Sequential{embedding(), seq(nn::LSTM(nn::LSTMOptions(E, U).batch_first(true).input_dropout(0.3))), last(), dense()});
  models.push_back(nn::Sequential{embedding(), seq(nn::LSTM(nn::LSTMOptions(E, U).batch_first(true).input_dropout(0.3))),
                                  seq(nn::LSTM(nn::LSTMOptions(U, U).batch_first(true).input_dropout(0.3))), last(), dense()});
  models.push_back(nn::Sequential{embedding(), seq(nn::GRU(nn::GRUOptions(E, U).batch_first(true))), last(), dense()});
  for (std::size_t m = 0; m < models.size(); ++m) {
    CAPTURE(m + 1);
    manual_seed(20 + m);
    nn::Sequential& model = models[m];
    nn::keras::initialize(model);
    model.eval();
    auto forward = [&](const std::vector<Tensor>& in) { return std::vector<Tensor>{model(in[0])}; };
    xgrad_test::TempDir dir;
    const std::string path = dir.file("keras.onnx");
    onnx::export_model(model, forward, {randint(0, V, {3, 5})}, path,
                       onnx::ExportOptions().input_names({"ids"}).output_names({"logit"}).dynamic_axes(
                           {{0, 0, "batch"}, {0, 1, "words"}}));
    for (auto [B, T] : {std::pair<std::int64_t, std::int64_t>{3, 5}, {4, 100}}) {
      CAPTURE(T);
      const Tensor ids = randint(0, V, {B, T});
      Tensor expected;
      {
        NoGradGuard no_grad;
        expected = model(ids);
      }
      CHECK(xgrad_test::run_ort(ort, path, {{"ids", ids}}, {"logit"})["logit"] == approx(expected, 1e-5, 1e-5));
    }
  }
}

TEST_CASE("ort_unbatched_lstm") {
  XGRAD_REQUIRE_ORT(ort);
  manual_seed(16);
  nn::LSTM lstm(nn::LSTMOptions(4, 6).bidirectional(true).num_layers(2));
  lstm.eval();
  // (T, I) → (T, 2·H) and states (L·D, H), T dynamic.
  auto forward = [&](const std::vector<Tensor>& in) {
    auto [y, state] = lstm(in[0]);
    return std::vector<Tensor>{y, state.h(), state.c()};
  };
  xgrad_test::TempDir dir;
  const std::string path = dir.file("unbatched.onnx");
  onnx::export_model(lstm, forward, {randn({5, 4})}, path,
                     onnx::ExportOptions().input_names({"x"}).output_names({"y", "h_n", "c_n"}).dynamic_axes(
                         {{0, 0, "sequence"}}));
  for (std::int64_t T : {5, 9}) {
    CAPTURE(T);
    const Tensor x = randn({T, 4});
    std::vector<Tensor> expected;
    {
      NoGradGuard no_grad;
      expected = forward({x});
    }
    auto got = xgrad_test::run_ort(ort, path, {{"x", x}}, {"y", "h_n", "c_n"});
    CHECK(got["y"] == approx(expected[0], 1e-5, 1e-5));
    CHECK(got["h_n"] == approx(expected[1], 1e-5, 1e-5));
    CHECK(got["c_n"] == approx(expected[2], 1e-5, 1e-5));
  }
}
