// Layers (Linear, Embedding, Dropout, LayerNorm, Sequential, activations), nn::init and the
// training utilities (gradient clipping, padding). PyTorch parity lives in test_nn_parity.cpp.
#include <doctest/doctest.h>

#include <xgrad/xgrad.hpp>

#include <cmath>
#include <limits>

using namespace xgrad;

namespace {

double max_abs(const Tensor& t) { return max(abs(t)).item(); }

double mean_of(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return s / static_cast<double>(v.size());
}

double std_of(const std::vector<double>& v) {
  const double m = mean_of(v);
  double s = 0;
  for (double x : v) s += (x - m) * (x - m);
  return std::sqrt(s / static_cast<double>(v.size()));
}

}  // namespace

// --- Linear -------------------------------------------------------------------------------------

TEST_CASE("Linear computes x·Wᵀ + b over the last dimension") {
  nn::Linear fc(3, 2);
  {
    NoGradGuard g;
    fc.weight.copy_(tensor({1, 2, 3, -1, 0, 1}, {2, 3}));
    fc.bias.copy_(tensor({0.5, -0.5}));
  }
  Tensor y = fc(tensor({1, 1, 1, 2, 0, -1}, {2, 3}));
  CHECK(y.to_vector<float>() == std::vector<float>{6.5f, -0.5f, -0.5f, -3.5f});
  CHECK(fc(randn({4, 5, 3})).shape() == Shape{4, 5, 2});
  CHECK_THROWS_WITH_AS(fc(randn({4, 5})), "Linear: expected input (..., 3), got (4, 5)", Error);
}

TEST_CASE("Linear's default init is PyTorch's: U(±1/√in_features) for weight and bias") {
  manual_seed(0);
  nn::Linear fc(256, 64);
  const double bound = 1.0 / 16.0;
  CHECK(max_abs(fc.weight) <= bound);
  CHECK(max_abs(fc.bias) <= bound);
  // U(-b, b) has standard deviation b/√3; 16384 draws pin it to about 1 %.
  CHECK(std_of(fc.weight.to(DType::f64).to_vector<double>()) == doctest::Approx(bound / std::sqrt(3.0)).epsilon(0.03));
  nn::Linear no_bias(4, 2, false);
  CHECK_FALSE(no_bias.bias.defined());
  CHECK(no_bias.state_dict().size() == 1);
  CHECK(no_bias.repr() == "Linear(in_features=4, out_features=2, bias=false)");
}

TEST_CASE("Linear gradients flow to input, weight and bias") {
  nn::Linear fc(3, 2);
  fc.to(DType::f64);
  const Tensor x = randn({2, 4, 3}, DType::f64);
  auto r = gradcheck([&](const std::vector<Tensor>& in) { return fc(in[0]); }, {x.detach().requires_grad_()});
  CHECK_MESSAGE(r.ok, r.message());
  auto rp = nn::gradcheck(fc, [&] { return fc(x); });
  CHECK_MESSAGE(rp.ok, rp.message());
}

// --- Embedding ----------------------------------------------------------------------------------

TEST_CASE("Embedding looks up rows for ids of any shape") {
  nn::Embedding emb(5, 3);
  Tensor ids = tensor({4, 0, 4, 2, 1, 3}, {2, 3}, DType::i64);
  Tensor v = emb(ids);
  CHECK(v.shape() == Shape{2, 3, 3});
  CHECK(allclose(v.select(0, 0).select(0, 0), emb.weight.select(0, 4), 0, 0));
  CHECK(allclose(v.select(0, 1).select(0, 2), emb.weight.select(0, 3), 0, 0));
  // Repeated ids accumulate gradient.
  v.sum().backward();
  CHECK(emb.weight.grad().to_vector<float>() ==
        std::vector<float>{1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2});
  CHECK_THROWS_WITH_AS(emb(tensor({5}, DType::i64)), "index_select: index 5 is out of range for dimension 0 with size 5",
                       Error);
  CHECK_THROWS_WITH_AS(emb(tensor({1})), "Embedding: ids must be int64, got float32", Error);
}

TEST_CASE("Embedding's padding row starts at zero and receives no gradient") {
  manual_seed(1);
  nn::Embedding emb(nn::EmbeddingOptions(6, 4).padding_idx(-1));  // row 5
  CHECK(emb.options().padding_idx() == 5);
  CHECK(emb.weight.select(0, 5).abs().sum().item() == 0.0);
  CHECK(emb.weight.select(0, 4).abs().sum().item() > 0.0);
  CHECK(std_of(nn::Embedding(100, 100).weight.to(DType::f64).to_vector<double>()) == doctest::Approx(1.0).epsilon(0.03));

  Tensor ids = tensor({5, 1, 5, 2}, DType::i64);
  (emb(ids) * 3.0).sum().backward();
  Tensor g = emb.weight.grad();
  CHECK(g.select(0, 5).abs().sum().item() == 0.0);
  CHECK(g.select(0, 1).to_vector<float>() == std::vector<float>{3, 3, 3, 3});
  CHECK_THROWS_AS(nn::Embedding(nn::EmbeddingOptions(4, 2).padding_idx(4)), Error);
}

// --- Dropout -------------------------------------------------------------------------------------

TEST_CASE("Dropout zeroes with probability p and scales survivors by 1/(1-p), only in training") {
  nn::Dropout drop(0.25);
  Tensor x = ones({100, 100});
  manual_seed(7);
  Tensor y = drop(x);
  const std::vector<float> v = y.to_vector<float>();
  std::int64_t zeros_count = 0, other = 0;
  for (float e : v) {
    zeros_count += e == 0.0f;
    other += e != 0.0f && e != static_cast<float>(1.0 / 0.75);
  }
  CHECK(other == 0);  // every element is dropped or scaled by 1/(1-p)
  CHECK(static_cast<double>(zeros_count) / 10000.0 == doctest::Approx(0.25).epsilon(0.08));
  CHECK(y.mean().item() == doctest::Approx(1.0).epsilon(0.03));

  manual_seed(7);
  CHECK(drop(x).to_vector<float>() == v);  // the same seed gives the same mask

  drop.eval();
  CHECK(drop(x).impl() == x.impl());  // identity in eval mode
  CHECK(nn::dropout(x, 0.0, true).impl() == x.impl());
  CHECK(nn::dropout(x, 1.0, true).abs().sum().item() == 0.0);
  CHECK_THROWS_AS(nn::Dropout(1.5), Error);
}

TEST_CASE("Dropout's gradient is the same mask") {
  manual_seed(3);
  Tensor x = randn({50}).requires_grad_();
  Tensor y = nn::dropout(x, 0.5, true);
  y.sum().backward();
  const auto yv = y.to_vector<float>(), xv = x.to_vector<float>(), gv = x.grad().to_vector<float>();
  for (std::size_t i = 0; i < yv.size(); ++i) CHECK(gv[i] == (yv[i] == 0.0f && xv[i] != 0.0f ? 0.0f : 2.0f));
}

// --- LayerNorm -----------------------------------------------------------------------------------

TEST_CASE("LayerNorm normalises the trailing dimensions to mean 0 and variance 1") {
  manual_seed(2);
  nn::LayerNorm ln(nn::LayerNormOptions({4, 8}));
  Tensor x = randn({3, 4, 8}) * 5.0 + 2.0;
  Tensor y = ln(x);
  CHECK(y.shape() == x.shape());
  for (std::int64_t b = 0; b < 3; ++b) {
    Tensor row = y.select(0, b).to(DType::f64);
    CHECK(row.mean().item() == doctest::Approx(0.0).epsilon(1e-6));
    CHECK(var(row.reshape({-1}), {0}, false).item() == doctest::Approx(1.0).epsilon(1e-4));
  }
  CHECK(ln.weight.to_vector<float>() == std::vector<float>(32, 1.0f));
  CHECK(ln.bias.to_vector<float>() == std::vector<float>(32, 0.0f));
  CHECK_THROWS_WITH_AS(ln(randn({3, 8, 4})), "layer_norm: input of shape (3, 8, 4) does not end with normalized_shape (4, 8)",
                       Error);
  nn::LayerNorm plain(nn::LayerNormOptions({8}).elementwise_affine(false));
  CHECK(plain.parameters().empty());
}

TEST_CASE("LayerNorm gradchecks in f64 with its affine parameters") {
  manual_seed(4);
  nn::LayerNorm ln(nn::LayerNormOptions({5}).eps(1e-3));
  ln.to(DType::f64);
  {
    NoGradGuard g;
    ln.weight.copy_(randn({5}, DType::f64));
    ln.bias.copy_(randn({5}, DType::f64));
  }
  const Tensor x = randn({3, 5}, DType::f64);
  auto r = gradcheck([&](const std::vector<Tensor>& in) { return ln(in[0]); }, {x.detach().requires_grad_()});
  CHECK_MESSAGE(r.ok, r.message());
  auto rp = nn::gradcheck(ln, [&] { return ln(x); });
  CHECK_MESSAGE(rp.ok, rp.message());
  auto r2 = gradcheck([](const std::vector<Tensor>& in) { return nn::layer_norm(in[0], {2, 3}); },
                      {randn({2, 2, 3}, DType::f64).requires_grad_()});
  CHECK_MESSAGE(r2.ok, r2.message());
}

TEST_CASE("layer_norm in f32 (a fused kernel) matches f64's composed form, values and gradients") {
  // Normalized over one and over two trailing dimensions, with and without weight and bias,
  // from a non-contiguous input.
  for (const Shape& norm : {Shape{7}, Shape{4, 7}}) {
    for (bool affine : {true, false}) {
      manual_seed(11);
      const Tensor x64 = (randn({7, 4, 3}, DType::f64) * 3.0 + 1.0).transpose(0, 2);  // (3, 4, 7)
      const Tensor g64 = randn({3, 4, 7}, DType::f64);
      const Tensor w64 = affine ? randn(norm, DType::f64) : Tensor(), b64 = affine ? randn(norm, DType::f64) : Tensor();
      auto run = [&](DType dt) {
        Tensor x = x64.to(dt).requires_grad_(), w, b;
        if (affine) w = w64.to(dt).requires_grad_(), b = b64.to(dt).requires_grad_();
        Tensor y = nn::layer_norm(x, norm, w, b, 1e-5);
        y.backward(g64.to(dt));
        std::vector<Tensor> out{y.detach(), x.grad()};
        if (affine) out.push_back(w.grad()), out.push_back(b.grad());
        return out;
      };
      const auto f32 = run(DType::f32), f64 = run(DType::f64);
      REQUIRE(f32.size() == f64.size());
      for (std::size_t i = 0; i < f32.size(); ++i) CHECK(allclose(f32[i].to(DType::f64), f64[i], 1e-4, 1e-4));
    }
  }
}

// --- Sequential and activations -------------------------------------------------------------------

TEST_CASE("Sequential chains its modules and names them by position") {
  manual_seed(5);
  nn::Sequential mlp{std::make_shared<nn::Linear>(4, 8), std::make_shared<nn::ReLU>()};
  auto& out = mlp.emplace_back<nn::Linear>(8, 1);
  Tensor x = randn({6, 4});
  Tensor expected = out(relu(mlp.at<nn::Linear>(0)(x)));
  CHECK(allclose(mlp(x), expected, 0, 0));
  CHECK(mlp.size() == 3);
  CHECK(mlp.named_parameters().front().first == "0.weight");
  CHECK(mlp.named_parameters().back().first == "2.bias");
  CHECK_THROWS_WITH_AS(mlp.at<nn::Linear>(1), "Sequential::at: module 1 is a ReLU", Error);
  CHECK_THROWS_AS(mlp[3], Error);
  nn::Sequential empty;
  CHECK(empty(x).impl() == x.impl());
}

TEST_CASE("activation modules match their formulas") {
  Tensor x = tensor({-30, -1, 0.5, 2, 30}, DType::f64);
  auto v = [](const Tensor& t) { return t.to_vector<double>(); };
  CHECK(v(nn::ReLU()(x)) == std::vector<double>{0, 0, 0.5, 2, 30});
  CHECK(v(nn::LeakyReLU(0.2)(x)) == std::vector<double>{-6, -0.2, 0.5, 2, 30});
  CHECK(v(nn::Tanh()(x))[3] == doctest::Approx(std::tanh(2.0)));
  CHECK(v(nn::Sigmoid()(x))[1] == doctest::Approx(1.0 / (1.0 + std::exp(1.0))));
  CHECK(v(nn::GELU()(x))[3] == doctest::Approx(2.0 * 0.5 * (1.0 + std::erf(2.0 / std::sqrt(2.0)))));
  CHECK(v(nn::GELU("tanh")(x))[3] == doctest::Approx(1.954597694087775));  // torch.nn.GELU('tanh')(2.)
  CHECK_THROWS_AS(nn::GELU("fast"), Error);
  // Softplus(beta=2): log(1 + e^(2x)) / 2, linear above the threshold.
  const auto sp = v(nn::Softplus(2.0, 20.0)(x));
  CHECK(sp[1] == doctest::Approx(std::log1p(std::exp(-2.0)) / 2.0));
  CHECK(sp[4] == 30.0);
  CHECK(sp[0] == doctest::Approx(std::log1p(std::exp(-60.0)) / 2.0));
  CHECK(nn::Softplus(2.0, 20.0).repr() == "Softplus(beta=2, threshold=20)");
}

// --- init ----------------------------------------------------------------------------------------

TEST_CASE("calculate_gain and fans follow PyTorch's table") {
  using nn::init::Nonlinearity;
  CHECK(nn::init::calculate_gain(Nonlinearity::linear) == 1.0);
  CHECK(nn::init::calculate_gain(Nonlinearity::tanh) == doctest::Approx(5.0 / 3.0));
  CHECK(nn::init::calculate_gain(Nonlinearity::relu) == doctest::Approx(std::sqrt(2.0)));
  CHECK(nn::init::calculate_gain(Nonlinearity::leaky_relu) == doctest::Approx(std::sqrt(2.0 / 1.0001)));
  CHECK(nn::init::calculate_gain(Nonlinearity::leaky_relu, std::sqrt(5.0)) == doctest::Approx(std::sqrt(1.0 / 3.0)));
  CHECK(nn::init::calculate_gain(Nonlinearity::selu) == 0.75);
  auto [fan_in, fan_out] = nn::init::calculate_fan_in_and_fan_out(zeros({8, 3, 5}));
  CHECK(fan_in == 15);
  CHECK(fan_out == 40);
  CHECK_THROWS_AS(nn::init::calculate_fan_in_and_fan_out(zeros({8})), Error);
}

TEST_CASE("init functions fill parameters in place with the right distribution, seeded") {
  nn::Linear fc(200, 300);  // weight (300, 200): fan_in 200, fan_out 300
  Tensor w = fc.weight;
  auto stats = [&] { return w.to(DType::f64).to_vector<double>(); };

  manual_seed(11);
  nn::init::uniform_(w, -0.5, 2.0);
  auto u = stats();
  CHECK(*std::min_element(u.begin(), u.end()) >= -0.5);
  CHECK(*std::max_element(u.begin(), u.end()) < 2.0);
  CHECK(mean_of(u) == doctest::Approx(0.75).epsilon(0.02));
  manual_seed(11);
  nn::init::uniform_(w, -0.5, 2.0);
  CHECK(stats() == u);  // seeded

  nn::init::normal_(w, 1.0, 3.0);
  CHECK(mean_of(stats()) == doctest::Approx(1.0).epsilon(0.03));
  CHECK(std_of(stats()) == doctest::Approx(3.0).epsilon(0.02));

  nn::init::xavier_uniform_(w, 2.0);
  CHECK(max_abs(w) <= 2.0 * std::sqrt(6.0 / 500.0));
  CHECK(std_of(stats()) == doctest::Approx(2.0 * std::sqrt(2.0 / 500.0)).epsilon(0.02));
  nn::init::xavier_normal_(w);
  CHECK(std_of(stats()) == doctest::Approx(std::sqrt(2.0 / 500.0)).epsilon(0.02));

  nn::init::kaiming_uniform_(w, 0.0, nn::init::FanMode::fan_in, nn::init::Nonlinearity::relu);
  CHECK(max_abs(w) <= std::sqrt(6.0 / 200.0));
  CHECK(std_of(stats()) == doctest::Approx(std::sqrt(2.0 / 200.0)).epsilon(0.02));
  nn::init::kaiming_normal_(w, 0.0, nn::init::FanMode::fan_out, nn::init::Nonlinearity::relu);
  CHECK(std_of(stats()) == doctest::Approx(std::sqrt(2.0 / 300.0)).epsilon(0.02));

  nn::init::constant_(w, 0.25);
  CHECK(mean_of(stats()) == 0.25);
  nn::init::zeros_(fc.bias);
  CHECK(fc.bias.abs().sum().item() == 0.0);
  nn::init::ones_(fc.bias);
  CHECK(fc.bias.sum().item() == 300.0);
  CHECK(fc.weight.requires_grad());
  CHECK_THROWS_AS(nn::init::normal_(zeros({3}, DType::i64)), Error);
}

TEST_CASE("orthogonal_ gives orthonormal rows (wide) or columns (tall), times gain") {
  manual_seed(12);
  for (Shape shape : {Shape{4, 7}, Shape{7, 4}, Shape{5, 5}, Shape{3, 2, 4}}) {
    CAPTURE(shape_str(shape));
    Tensor w = nn::init::orthogonal_(empty(shape, DType::f64), 2.0);
    Tensor m = w.reshape({shape[0], -1});
    const bool wide = m.size(0) <= m.size(1);
    Tensor gram = wide ? matmul(m, m.t()) : matmul(m.t(), m);  // 4·I
    Tensor expected = eye(gram.size(0), -1, DType::f64) * 4.0;
    CHECK(max_abs(gram - expected) < 1e-12);
  }
  CHECK_THROWS_AS(nn::init::orthogonal_(zeros({4})), Error);
}

// --- utilities -----------------------------------------------------------------------------------

TEST_CASE("clip_grad_norm returns the total norm and scales gradients down to max_norm") {
  Tensor a = zeros({2}).requires_grad_(), b = zeros({1}).requires_grad_(), unused = zeros({3}).requires_grad_();
  a.set_grad(tensor({3, 0}));
  b.set_grad(tensor({4}));
  double norm = nn::clip_grad_norm({a, b, unused}, 1.0);
  CHECK(norm == doctest::Approx(5.0));
  const double coef = 1.0 / (5.0 + 1e-6);
  CHECK(a.grad().to_vector<float>()[0] == doctest::Approx(3.0 * coef));
  CHECK(b.grad().to_vector<float>()[0] == doctest::Approx(4.0 * coef));

  // Below max_norm: returned, gradients untouched.
  CHECK(nn::clip_grad_norm({a, b}, 10.0) == doctest::Approx(1.0).epsilon(1e-5));
  CHECK(b.grad().to_vector<float>()[0] == doctest::Approx(4.0 * coef));

  a.set_grad(tensor({-3, 1}));
  b.set_grad(tensor({2}));
  const double inf = std::numeric_limits<double>::infinity();
  CHECK(nn::clip_grad_norm({a, b}, 1.5, inf) == 3.0);
  CHECK(a.grad().to_vector<float>()[0] == doctest::Approx(-1.5).epsilon(1e-5));
  a.set_grad(tensor({-3, 1}));
  b.set_grad(tensor({2}));
  CHECK(nn::clip_grad_norm({a, b}, 100.0, 1.0) == 6.0);
  CHECK(nn::clip_grad_norm({unused}, 1.0) == 0.0);
  a.set_grad(tensor({NAN, 1}));
  CHECK_THROWS_AS(nn::clip_grad_norm({a}, 1.0, 2.0, true), Error);
}

TEST_CASE("clip_grad_value clamps every gradient element") {
  Tensor a = zeros({4}).requires_grad_();
  a.set_grad(tensor({-2, -0.1, 0.3, 5}));
  nn::clip_grad_value({a}, 0.5);
  CHECK(a.grad().to_vector<float>() == std::vector<float>{-0.5f, -0.1f, 0.3f, 0.5f});
}

TEST_CASE("pad_sequences pads to the longest sequence and returns the lengths") {
  Tensor s1 = tensor({1, 2, 3, 4, 5, 6}, {3, 2}).requires_grad_();
  Tensor s2 = tensor({7, 8}, {1, 2}).requires_grad_();
  auto [padded, lengths] = nn::pad_sequences({s1, s2}, /*batch_first=*/true, -1.0);
  CHECK(padded.shape() == Shape{2, 3, 2});
  CHECK(padded.to_vector<float>() == std::vector<float>{1, 2, 3, 4, 5, 6, 7, 8, -1, -1, -1, -1});
  CHECK(lengths.values() == std::vector<std::int64_t>{3, 1});
  CHECK(lengths.padding() == nn::Side::post);
  CHECK(lengths.tensor().to_vector<std::int64_t>() == std::vector<std::int64_t>{3, 1});
  // Padded before: the padding values come first, the lengths say so.
  auto pre = nn::pad_sequences({s1, s2}, true, -1.0, nn::Side::pre);
  CHECK(pre.padded.to_vector<float>() == std::vector<float>{1, 2, 3, 4, 5, 6, -1, -1, -1, -1, 7, 8});
  CHECK(pre.lengths.padding() == nn::Side::pre);

  auto time_major = nn::pad_sequences({s1, s2});
  CHECK(time_major.padded.shape() == Shape{3, 2, 2});
  CHECK(time_major.padded.select(1, 1).to_vector<float>() == std::vector<float>{7, 8, 0, 0, 0, 0});
  (time_major.padded * 2.0).sum().backward();
  CHECK(s2.grad().to_vector<float>() == std::vector<float>{2, 2});
  CHECK_THROWS_AS(nn::pad_sequences({s1, zeros({2, 3})}), Error);
}
