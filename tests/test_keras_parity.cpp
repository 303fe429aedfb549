// Keras's conventions, checked against Keras itself: TensorFlow.js 4.22.0's layers (see
// tests/fixtures/keras/README.md and gen_keras_fixtures.js). Weights in Keras's layout go in
// through nn::keras::set_weights; outputs, final states and the gradients of a fixed loss
// with respect to the input and every weight must agree to 1e-5 (float32).
#include <doctest/doctest.h>

#include <fstream>
#include <memory>

#include <nlohmann/json.hpp>
#include <xgrad/xgrad.hpp>

using namespace xgrad;
using json = nlohmann::json;

namespace {

json load_fixture(const char* name) {
  std::ifstream in(std::string(XGRAD_FIXTURES_DIR) + "/keras/" + name);
  REQUIRE(in.good());
  return json::parse(in);
}

Tensor tensor_of(const json& j) {
  const Shape shape = j.at("shape").get<Shape>();
  std::vector<float> values;
  for (const json& v : j.at("data")) values.push_back(v.is_null() ? NAN : v.get<float>());
  return from_vector(values, shape);
}

// |a − b| ≤ 1e-5 · (1 + |b|) everywhere.
bool close(const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape()) return false;
  const auto x = a.to_vector<float>(), y = b.to_vector<float>();
  for (std::size_t i = 0; i < x.size(); ++i)
    if (!(std::abs(x[i] - y[i]) <= 1e-5f * (1.0f + std::abs(y[i])))) return false;
  return true;
}

std::shared_ptr<nn::Recurrent> make_layer(const json& c) {
  const auto I = c.at("input_dim").get<std::int64_t>(), H = c.at("units").get<std::int64_t>();
  const auto L = c.at("stack").get<std::int64_t>();
  const std::string kind = c.at("layer");
  if (kind == "SimpleRNN") return std::make_shared<nn::RNN>(nn::RNNOptions(I, H).num_layers(L).batch_first(true));
  if (kind == "LSTM") return std::make_shared<nn::LSTM>(nn::LSTMOptions(I, H).num_layers(L).batch_first(true));
  REQUIRE(kind == "GRU");
  return std::make_shared<nn::GRU>(
      nn::GRUOptions(I, H).num_layers(L).batch_first(true).reset_after(c.at("reset_after").get<bool>()));
}

// Keras's output sequence under a mask repeats the last valid output at padded steps.
Tensor keras_sequence(const Tensor& out, const std::vector<std::int64_t>& lengths) {
  const std::int64_t B = out.size(0), T = out.size(1), H = out.size(2);
  std::vector<std::int64_t> index;
  for (std::int64_t b = 0; b < B; ++b)
    for (std::int64_t t = 0; t < T; ++t)
      for (std::int64_t h = 0; h < H; ++h)
        index.push_back(lengths.empty() ? t : std::min(t, lengths[static_cast<std::size_t>(b)] - 1));
  return gather(out, 1, from_vector(index, {B, T, H}));
}

bool equal(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && a.to_vector<double>() == b.to_vector<double>();
}

}  // namespace

TEST_CASE("Keras (TensorFlow.js) parity: SimpleRNN, LSTM, GRU reset_after true/false, masking, stacking") {
  const json fixture = load_fixture("keras_rnn.json");
  REQUIRE(fixture.at("cases").size() >= 15);
  for (const json& c : fixture.at("cases")) {
    const std::string name = c.at("name");
    CAPTURE(name);
    auto layer = make_layer(c);
    const auto L = c.at("stack").get<std::int64_t>();
    for (std::int64_t l = 0; l < L; ++l) {
      const json& w = c.at("weights").at(static_cast<std::size_t>(l));
      nn::keras::set_weights(*layer, l, {tensor_of(w.at("kernel")), tensor_of(w.at("recurrent_kernel")),
                                         tensor_of(w.at("bias"))});
    }
    // The round trip gives the Keras weights back.
    const json& w0 = c.at("weights").at(0);
    const nn::keras::RecurrentWeights back = nn::keras::get_weights(*layer, 0);
    CHECK(close(back.kernel, tensor_of(w0.at("kernel"))));
    CHECK(close(back.recurrent_kernel, tensor_of(w0.at("recurrent_kernel"))));
    CHECK(close(back.bias, tensor_of(w0.at("bias"))));

    std::vector<std::int64_t> lengths;
    if (!c.at("lengths").is_null()) lengths = c.at("lengths").get<std::vector<std::int64_t>>();
    const Tensor x = tensor_of(c.at("x")).requires_grad_();
    const nn::RecurrentOutput r =
        layer->Recurrent::forward(x, {}, lengths.empty() ? nn::Lengths() : nn::Lengths(lengths));
    const Tensor h = select(r.state[0], 0, L - 1);
    const Tensor y = c.at("return_sequences").get<bool>() ? keras_sequence(r.output, lengths) : h;
    const json& out = c.at("outputs");
    const json& lw = c.at("loss_weights");
    CHECK(close(y, tensor_of(out.at("y"))));
    CHECK(close(h, tensor_of(out.at("h"))));
    Tensor loss = sum(y * tensor_of(lw.at("Wy"))) + sum(h * tensor_of(lw.at("Wh")));
    if (out.contains("c")) {
      const Tensor cell_state = select(r.state[1], 0, L - 1);
      CHECK(close(cell_state, tensor_of(out.at("c"))));
      loss = loss + sum(cell_state * tensor_of(lw.at("Wc")));
    }
    CHECK(close(loss, full({}, c.at("loss").get<double>())));
    loss.backward();
    CHECK(close(x.grad(), tensor_of(c.at("grads").at("x"))));

    // The weights' gradients in Keras's layout: a second layer holding the gradients as its
    // values, read back with get_weights. Keras has one bias where RNN and LSTM have two
    // that are only added, so each of them gets the Keras bias's gradient: keep bias_ih's.
    auto grads = make_layer(c);
    {
      NoGradGuard no_grad;
      const auto from = layer->named_parameters(), to = grads->named_parameters();
      REQUIRE(from.size() == to.size());
      for (std::size_t i = 0; i < from.size(); ++i) {
        const bool drop = c.at("layer") != "GRU" && from[i].first.rfind("bias_hh", 0) == 0;
        Tensor target = to[i].second;
        if (drop) target.zero_();
        else target.copy_(from[i].second.grad());
      }
    }
    for (std::int64_t l = 0; l < L; ++l) {
      CAPTURE(l);
      const json& g = c.at("grads").at("weights").at(static_cast<std::size_t>(l));
      const nn::keras::RecurrentWeights got = nn::keras::get_weights(*grads, l);
      CHECK(close(got.kernel, tensor_of(g.at("kernel"))));
      CHECK(close(got.recurrent_kernel, tensor_of(g.at("recurrent_kernel"))));
      CHECK(close(got.bias, tensor_of(g.at("bias"))));
    }
  }
}

TEST_CASE("GRU reset_after=false: one bias, repr, and gradcheck through time in float64") {
  nn::GRU gru(nn::GRUOptions(3, 4).reset_after(false).num_layers(2).bidirectional(true));
  std::vector<std::string> names;
  for (const auto& [n, p] : gru.named_parameters()) names.push_back(n);
  CHECK(names == std::vector<std::string>{"weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "weight_ih_l0_reverse",
                                          "weight_hh_l0_reverse", "bias_ih_l0_reverse", "weight_ih_l1", "weight_hh_l1",
                                          "bias_ih_l1", "weight_ih_l1_reverse", "weight_hh_l1_reverse",
                                          "bias_ih_l1_reverse"});
  CHECK(gru.repr() == "GRU(3, 4, reset_after=false, num_layers=2, bidirectional=true)");
  CHECK(nn::GRUCell(nn::GRUCellOptions(3, 4).reset_after(false)).repr() == "GRUCell(3, 4, reset_after=false)");
  gru.to(DType::f64);
  const Tensor x = randn({4, 2, 3}, DType::f64);
  const GradcheckResult r = nn::gradcheck(gru, [&] { return gru(x, {}, {4, 3}).output; });
  CHECK_MESSAGE(r.ok, r.message());
}

TEST_CASE("keras::set_weights refuses weights that do not fit, naming the layer, weight and shapes") {
  nn::LSTM lstm(3, 2);
  const Tensor k = zeros({3, 8}), rk = zeros({2, 8}), b = zeros({8});
  CHECK_THROWS_WITH_AS(nn::keras::set_weights(lstm, 0, {zeros({8, 3}), rk, b}),
                       "keras::set_weights: LSTM kernel has shape (8, 3), expected (3, 8)", Error);
  CHECK_THROWS_WITH_AS(nn::keras::set_weights(lstm, 0, {k, rk, zeros({2, 8})}),
                       "keras::set_weights: LSTM bias has shape (2, 8), expected (8)", Error);
  CHECK_THROWS_WITH_AS(nn::keras::set_weights(lstm, 0, {k, rk, Tensor()}),
                       "keras::set_weights: the LSTM has a bias but the Keras weights do not", Error);
  CHECK_THROWS_WITH_AS(nn::keras::set_weights(lstm, 1, {k, rk, b}), doctest::Contains("layer 1"), Error);
  nn::LSTM projected(nn::LSTMOptions(3, 2).proj_size(1));
  CHECK_THROWS_WITH_AS(nn::keras::get_weights(projected, 0), doctest::Contains("proj_size has no Keras counterpart"),
                       Error);
  // A refused call changes nothing.
  const Tensor before = lstm.named_parameters()[0].second.clone();
  CHECK_THROWS_AS(nn::keras::set_weights(lstm, 0, {k, zeros({3, 3}), b}), Error);
  CHECK(equal(lstm.named_parameters()[0].second, before));
}

TEST_CASE("keras::initialize: glorot-uniform kernels, orthogonal recurrent kernels, unit forget bias, Embedding ±0.05") {
  struct Model : nn::Module {
    nn::Embedding embedding{nn::EmbeddingOptions(500, 16).padding_idx(0)};
    nn::LSTM lstm{16, 8};
    nn::GRU gru{nn::GRUOptions(8, 6).reset_after(false)};
    nn::Linear head{6, 1};
    Model() {
      register_module("embedding", embedding);
      register_module("lstm", lstm);
      register_module("gru", gru);
      register_module("head", head);
    }
  } model;
  manual_seed(1);
  nn::keras::initialize(model);
  auto max_abs = [](const Tensor& t) { return max(abs(t)).item(); };
  // Embedding: U(−0.05, 0.05), the padding row still zero.
  CHECK(max_abs(model.embedding.weight) <= 0.05);
  CHECK(max_abs(model.embedding.weight) > 0.045);
  CHECK(max_abs(model.embedding.weight.select(0, 0)) == 0.0);
  // LSTM: kernel glorot over (16, 32), recurrent (32, 8) with orthonormal columns, biases
  // zero except the forget gate's ones.
  const nn::LSTMCell& cell = dynamic_cast<const nn::LSTMCell&>(model.lstm.cell(0));
  const double limit = std::sqrt(6.0 / (16 + 32));
  CHECK(max_abs(cell.weight_ih) <= limit);
  CHECK(max_abs(cell.weight_ih) > 0.9 * limit);
  const Tensor gram = matmul(cell.weight_hh.t(), cell.weight_hh);  // (8, 8) = identity
  CHECK(max_abs(gram - eye(8)) < 1e-5);
  CHECK(equal(cell.bias_ih, cat({zeros({8}), ones({8}), zeros({16})})));
  CHECK(max_abs(cell.bias_hh) == 0.0);
  CHECK_FALSE(cell.bias_hh.requires_grad());  // Keras's LSTM has one bias
  // Trainable parameters as Keras counts them: Embedding 8000, LSTM 4·8·(16 + 8 + 1) = 800,
  // GRU (reset_after=False) 3·6·(8 + 6 + 1) = 270, Dense 7.
  CHECK(model.num_parameters(/*trainable_only=*/true) == 8000 + 800 + 270 + 7);
  // GRU reset_after=false: one bias, zero; the recurrent kernel orthogonal too.
  const nn::GRUCell& gcell = dynamic_cast<const nn::GRUCell&>(model.gru.cell(0));
  CHECK(max_abs(gcell.bias_ih) == 0.0);
  CHECK(max_abs(matmul(gcell.weight_hh.t(), gcell.weight_hh) - eye(6)) < 1e-5);
  // Dense: glorot weight, zero bias.
  CHECK(max_abs(model.head.weight) <= std::sqrt(6.0 / 7.0));
  CHECK(max_abs(model.head.bias) == 0.0);
  // Seeded: the same seed gives the same weights.
  const Tensor first = cell.weight_hh.clone();
  manual_seed(1);
  nn::keras::initialize(model);
  CHECK(equal(cell.weight_hh, first));
}

TEST_CASE("Keras-convention RMSprop and Keras's Adam settings follow TensorFlow.js's own optimizers for 20 steps") {
  // The problem of tests/fixtures/gen_optim_fixtures.py: mean((tanh(X W + b) − Y)²) + 0.05 ΣW².
  // tfjs's centered RMSprop subtracts eps inside the square root (sqrt(ms − (mg² + eps)))
  // where Keras and xgrad add it, so the centered configuration stays on the numpy
  // transcription of Keras's rule in test_optim.cpp; every other configuration is here.
  const json fixture = load_fixture("keras_optim.json");
  const json& problem = fixture.at("problem");
  const Tensor X = tensor_of(problem.at("X")), Y = tensor_of(problem.at("Y"));
  using Make = std::function<std::unique_ptr<optim::Optimizer>(std::vector<Tensor>)>;
  const std::vector<std::pair<std::string, Make>> configs = {
      {"rmsprop_keras", [](auto p) { return std::make_unique<optim::RMSprop>(p, optim::RMSpropOptions::keras()); }},
      {"rmsprop_keras_weight_decay",
       [](auto p) {
         return std::make_unique<optim::RMSprop>(p, optim::RMSpropOptions::keras(0.01).weight_decay(0.1).momentum(0.5));
       }},
      {"adam_keras_defaults", [](auto p) { return std::make_unique<optim::Adam>(p, optim::AdamOptions(1e-3).eps(1e-7)); }},
      {"adam_lr_betas_eps",
       [](auto p) { return std::make_unique<optim::Adam>(p, optim::AdamOptions(0.02).betas({0.8, 0.99}).eps(1e-6)); }},
  };
  for (const auto& [name, make] : configs) {
    CAPTURE(name);
    const json& c = fixture.at("configs").at(name);
    Tensor W = tensor_of(problem.at("W0")).requires_grad_(), b = tensor_of(problem.at("b0")).requires_grad_();
    auto opt = make({W, b});
    const Tensor Ws = tensor_of(c.at("W")), bs = tensor_of(c.at("b"));
    REQUIRE(Ws.size(0) == 20);
    for (std::int64_t step = 0; step < 20; ++step) {
      CAPTURE(step);
      opt->zero_grad();
      const Tensor d = tanh(matmul(X, W) + b) - Y;
      (mean(d * d) + 0.05 * sum(W * W)).backward();
      opt->step();
      CHECK(close(W, select(Ws, 0, step)));
      CHECK(close(b, select(bs, 0, step)));
    }
  }
}

TEST_CASE("Training after keras::set_weights alone follows TensorFlow.js step for step (RMSprop, Adam)") {
  // Each case: a recurrent layer (return_sequences=False) and Dense(1), loss mean((Dense(h) −
  // y)²), Keras weights loaded with set_weights and nothing else, then 10 steps of Keras's
  // RMSprop or Adam (epsilon 1e-7). Keras's SimpleRNN and LSTM have one bias where xgrad's
  // have two: set_weights must leave only one of them trainable, or the bias moves twice as
  // far as Keras's.
  const json fixture = load_fixture("keras_train.json");
  REQUIRE(fixture.at("cases").size() == 10);
  for (const json& c : fixture.at("cases")) {
    const std::string name = c.at("name");
    CAPTURE(name);
    const std::string kind = c.at("layer");
    const Tensor x = tensor_of(c.at("x")), y = tensor_of(c.at("y"));
    const std::int64_t I = x.size(2);
    const json& init = c.at("initial");
    const std::int64_t H = tensor_of(init.at("recurrent_kernel")).size(0);
    std::shared_ptr<nn::Recurrent> layer;
    if (kind == "SimpleRNN") layer = std::make_shared<nn::RNN>(nn::RNNOptions(I, H).batch_first(true));
    else if (kind == "LSTM") layer = std::make_shared<nn::LSTM>(nn::LSTMOptions(I, H).batch_first(true));
    else layer = std::make_shared<nn::GRU>(nn::GRUOptions(I, H).batch_first(true).reset_after(c.at("reset_after")));
    nn::keras::set_weights(*layer, 0, {tensor_of(init.at("kernel")), tensor_of(init.at("recurrent_kernel")),
                                       tensor_of(init.at("bias"))});
    nn::Linear dense(H, 1);
    {
      NoGradGuard no_grad;
      dense.weight.copy_(tensor_of(init.at("dense_kernel")).t());
      dense.bias.copy_(tensor_of(init.at("dense_bias")));
    }
    std::vector<Tensor> params = layer->parameters();
    for (const Tensor& p : dense.parameters()) params.push_back(p);
    std::unique_ptr<optim::Optimizer> opt;
    if (name.find("rmsprop") != std::string::npos)
      opt = std::make_unique<optim::RMSprop>(params, optim::RMSpropOptions::keras(0.01));
    else opt = std::make_unique<optim::Adam>(params, optim::AdamOptions(0.01).eps(1e-7));
    const nn::Lengths lengths =
        c.at("lengths").is_null() ? nn::Lengths() : nn::Lengths(c.at("lengths").get<std::vector<std::int64_t>>());

    const json& steps = c.at("steps");
    const std::int64_t n = tensor_of(steps.at("kernel")).size(0);
    REQUIRE(n == 10);
    for (std::int64_t step = 0; step < n; ++step) {
      CAPTURE(step);
      opt->zero_grad();
      const Tensor h = select((*layer)(x, {}, lengths).state.h(), 0, 0);  // (B, H)
      const Tensor d = dense(h) - y;
      const Tensor loss = mean(d * d);
      CHECK(close(loss, full({}, c.at("losses").at(static_cast<std::size_t>(step)).get<double>())));
      loss.backward();
      opt->step();
      const nn::keras::RecurrentWeights w = nn::keras::get_weights(*layer, 0);
      CHECK(close(w.kernel, select(tensor_of(steps.at("kernel")), 0, step)));
      CHECK(close(w.recurrent_kernel, select(tensor_of(steps.at("recurrent_kernel")), 0, step)));
      CHECK(close(w.bias, select(tensor_of(steps.at("bias")), 0, step)));
      CHECK(close(dense.weight.t(), select(tensor_of(steps.at("dense_kernel")), 0, step)));
      CHECK(close(dense.bias, select(tensor_of(steps.at("dense_bias")), 0, step)));
    }
  }
}

TEST_CASE("keras::set_weights freezes the second bias of SimpleRNN and LSTM only, and drops its gradient") {
  nn::LSTM lstm(nn::LSTMOptions(3, 2).bidirectional(true));
  auto& cell = dynamic_cast<nn::LSTMCell&>(lstm.cell(0, 1));
  // A gradient from earlier training must not reach the optimizer after the load.
  sum(lstm(randn({4, 1, 3})).output).backward();
  REQUIRE(cell.bias_hh.grad().defined());
  nn::keras::set_weights(lstm, 0, {randn({3, 8}), randn({2, 8}), randn({8})}, 1);
  CHECK_FALSE(cell.bias_hh.requires_grad());
  CHECK_FALSE(cell.bias_hh.grad().defined());
  CHECK(max(abs(cell.bias_hh)).item() == 0.0);
  CHECK(cell.bias_ih.requires_grad());
  // The forward direction was not touched; the state dict keeps PyTorch's keys.
  CHECK(dynamic_cast<nn::LSTMCell&>(lstm.cell(0, 0)).bias_hh.requires_grad());
  CHECK(lstm.state_dict().size() == 8);
  nn::RNN rnn(3, 2);
  nn::keras::set_weights(rnn, 0, {randn({3, 2}), randn({2, 2}), randn({2})});
  CHECK_FALSE(dynamic_cast<nn::RNNCell&>(rnn.cell(0)).bias_hh.requires_grad());
  CHECK(rnn.num_parameters(/*trainable_only=*/true) == 3 * 2 + 2 * 2 + 2);  // Keras's count
  // A GRU with reset_after=True has Keras's two biases: both stay trainable.
  nn::GRU gru(3, 2);
  nn::keras::set_weights(gru, 0, {randn({3, 6}), randn({2, 6}), randn({2, 6})});
  CHECK(dynamic_cast<nn::GRUCell&>(gru.cell(0)).bias_hh.requires_grad());
}

TEST_CASE("Keras's Conv1D, MaxPooling1D and GlobalMaxPooling1D: nn::Conv1d and the pools, channels last") {
  const json fixture = load_fixture("keras_conv.json");
  REQUIRE(fixture.at("cases").size() == 5);
  for (const json& c : fixture.at("cases")) {
    CAPTURE(c.at("name").get<std::string>());
    const std::string padding = c.at("padding");  // "valid", "same" or "causal"
    nn::Conv1d conv(nn::Conv1dOptions(c.at("x").at("shape")[2].get<std::int64_t>(), c.at("filters").get<std::int64_t>(),
                                      c.at("kernel_size").get<std::int64_t>())
                        .stride(c.at("strides").get<std::int64_t>())
                        .padding(padding)
                        .dilation(c.at("dilation_rate").get<std::int64_t>())
                        .channels_last(true));
    // Keras's kernel (K, C, F) is PyTorch's weight (F, C, K) transposed.
    conv.load_state_dict({{"weight", tensor_of(c.at("kernel")).permute({2, 1, 0}).contiguous()},
                          {"bias", tensor_of(c.at("bias"))}});
    nn::MaxPool1d pool(nn::Pool1dOptions(c.at("pool_size").get<std::int64_t>())
                           .stride(c.at("pool_strides").get<std::int64_t>())
                           .channels_last(true));
    const Tensor x = tensor_of(c.at("x")).requires_grad_();  // (B, T, C), channels last
    const Tensor h = conv(x);                                   // (B, T', F)
    CHECK(close(h, tensor_of(c.at("conv"))));
    const Tensor y = nn::global_max_pool1d(pool(h), {}, 1);    // (B, F)
    CHECK(close(y, tensor_of(c.at("y"))));
    sum(y * tensor_of(c.at("Wy"))).backward();
    CHECK(close(x.grad(), tensor_of(c.at("grads").at("x"))));
    CHECK(close(conv.weight.grad().permute({2, 1, 0}), tensor_of(c.at("grads").at("kernel"))));
    CHECK(close(conv.bias.grad(), tensor_of(c.at("grads").at("bias"))));
  }
}
