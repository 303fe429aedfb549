// Losses: values worked out by hand, PyTorch's edge cases (ignore_index with label smoothing,
// everything ignored, huge logits), errors, and an f64 gradcheck of every loss and option.
// Comparisons with PyTorch's own numbers are in test_nn_parity.cpp.
#include <doctest/doctest.h>

#include <xgrad/xgrad.hpp>

#include <cmath>

using namespace xgrad;
using nn::Reduction;

namespace {

std::vector<double> values(const Tensor& t) { return t.to(DType::f64).to_vector<double>(); }

void check_gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& fn, const std::vector<Tensor>& inputs) {
  auto r = gradcheck(fn, inputs);
  CHECK_MESSAGE(r.ok, r.message());
}

}  // namespace

TEST_CASE("mse_loss and l1_loss reduce by mean, sum or not at all") {
  Tensor x = tensor({1, 2, 3, 4}, {2, 2}), y = tensor({0, 2, 5, 3}, {2, 2});
  CHECK(nn::mse_loss(x, y).item() == 1.5);                                      // (1 + 0 + 4 + 1) / 4
  CHECK(nn::mse_loss(x, y, Reduction::sum).item() == 6.0);
  CHECK(values(nn::mse_loss(x, y, Reduction::none)) == std::vector<double>{1, 0, 4, 1});
  CHECK(nn::l1_loss(x, y).item() == 1.0);                                       // (1 + 0 + 2 + 1) / 4
  CHECK(values(nn::l1_loss(x, y, Reduction::none)) == std::vector<double>{1, 0, 2, 1});
  CHECK_THROWS_WITH_AS(nn::mse_loss(x, tensor({1, 2})), "mse_loss: input (2, 2) and target (2) must have the same shape",
                       Error);
}

TEST_CASE("cross_entropy of uniform logits is log C, and of ignored targets is excluded") {
  Tensor logits = zeros({2, 4});
  CHECK(nn::cross_entropy(logits, tensor({1, 3}, DType::i64)).item() == doctest::Approx(std::log(4.0)));
  // Row 1 is ignored: the mean is over the one remaining row.
  Tensor x = tensor({3, 0, 0, 0, 1, 2}, {2, 3}, DType::f64);
  Tensor t = tensor({0, -100}, DType::i64);
  const double row0 = -(3.0 - std::log(std::exp(3.0) + 2.0));
  CHECK(nn::cross_entropy(x, t).item() == doctest::Approx(row0));
  CHECK(nn::cross_entropy(x, t, nn::CrossEntropyOptions().reduction(Reduction::sum)).item() == doctest::Approx(row0));
  CHECK(values(nn::cross_entropy(x, t, nn::CrossEntropyOptions().reduction(Reduction::none)))[1] == 0.0);
  // Everything ignored: the mean is 0/0, NaN, as in PyTorch.
  CHECK(std::isnan(nn::cross_entropy(x, tensor({-100, -100}, DType::i64)).item()));
}

TEST_CASE("cross_entropy with label_smoothing skips ignored targets in both terms (PyTorch 1.13)") {
  // Row 0: logits (2, 0, -1), target 0; row 1 is ignored. ε = 0.3, C = 3.
  //   log p = x - log(e² + 1 + e⁻¹) = (-0.16984, -2.16984, -3.16984)
  //   loss = (1 - ε)·0.16984 + ε/C·(0.16984 + 2.16984 + 3.16984) = 0.669846
  Tensor x = tensor({2, 0, -1, 0.5, 0.5, 0}, {2, 3}, DType::f64);
  Tensor t = tensor({0, 2}, DType::i64);
  auto opts = nn::CrossEntropyOptions().label_smoothing(0.3).ignore_index(2);
  CHECK(nn::cross_entropy(x, t, opts).item() == doctest::Approx(0.6698460195562856).epsilon(1e-12));
  // Without ignore_index both rows count (torch: 1.0139330537516595).
  CHECK(nn::cross_entropy(x, t, nn::CrossEntropyOptions().label_smoothing(0.3)).item() ==
        doctest::Approx(1.0139330537516595).epsilon(1e-12));
  CHECK(values(nn::cross_entropy(x, t, opts.reduction(Reduction::none)))[1] == 0.0);
}

TEST_CASE("cross_entropy accepts (N, C, d...) logits, unbatched (C) logits and probability targets") {
  manual_seed(1);
  Tensor x = randn({2, 4, 3}, DType::f64);
  Tensor t = randint(0, 4, {2, 3});
  Tensor per_position = nn::cross_entropy(x, t, nn::CrossEntropyOptions().reduction(Reduction::none));
  CHECK(per_position.shape() == Shape{2, 3});
  // Same as moving the class dimension last and flattening.
  Tensor flat = nn::cross_entropy(x.permute({0, 2, 1}).reshape({6, 4}), t.reshape({6}));
  CHECK(per_position.mean().item() == doctest::Approx(flat.item()).epsilon(1e-12));

  Tensor row = tensor({1, 2, 3}, DType::f64);
  CHECK(nn::cross_entropy(row, scalar(2, DType::i64)).item() ==
        doctest::Approx(std::log(std::exp(1) + std::exp(2) + std::exp(3)) - 3.0));

  // One-hot probability targets give the same loss as class indices.
  Tensor one_hot = tensor({0, 0, 1, 0, 1, 0, 0, 0}, {2, 4}, DType::f64);
  Tensor logits = randn({2, 4}, DType::f64);
  CHECK(nn::cross_entropy(logits, one_hot).item() ==
        doctest::Approx(nn::cross_entropy(logits, tensor({2, 0}, DType::i64)).item()).epsilon(1e-12));
}

TEST_CASE("cross_entropy and nll_loss reject bad targets with clear errors") {
  Tensor x = zeros({2, 3});
  CHECK_THROWS_WITH_AS(nn::cross_entropy(x, tensor({0, 3}, DType::i64)),
                       "cross_entropy: target 3 is out of bounds for 3 classes", Error);
  CHECK_THROWS_WITH_AS(nn::cross_entropy(x, tensor({0, 1})), "cross_entropy: input (2, 3) and target (2) must have the same shape",
                       Error);
  CHECK_THROWS_WITH_AS(nn::nll_loss(x, tensor({0, 1, 2}, DType::i64)),
                       "nll_loss: input (2, 3) needs target of shape (2), got (3)", Error);
  CHECK_THROWS_AS(nn::cross_entropy(x, tensor({0, 1}, DType::i64), nn::CrossEntropyOptions().weight(ones({4}))), Error);
  CHECK_THROWS_AS(nn::cross_entropy(x, tensor({0, 1}, DType::i64), nn::CrossEntropyOptions().label_smoothing(1.5)), Error);
}

TEST_CASE("nll_loss with class weights divides by the weights of the counted targets") {
  Tensor logp = log(tensor({0.5, 0.25, 0.25, 0.1, 0.8, 0.1, 0.2, 0.2, 0.6}, {3, 3}, DType::f64));
  Tensor t = tensor({0, 1, 2}, DType::i64);
  Tensor w = tensor({1, 2, 3}, DType::f64);
  const double expected = -(1 * std::log(0.5) + 2 * std::log(0.8) + 3 * std::log(0.6)) / 6.0;
  CHECK(nn::nll_loss(logp, t, nn::NLLLossOptions().weight(w)).item() == doctest::Approx(expected).epsilon(1e-12));
  const double ignoring_1 = -(1 * std::log(0.5) + 3 * std::log(0.6)) / 4.0;
  CHECK(nn::nll_loss(logp, t, nn::NLLLossOptions().weight(w).ignore_index(1)).item() ==
        doctest::Approx(ignoring_1).epsilon(1e-12));
}

TEST_CASE("binary_cross_entropy_with_logits is exact for huge logits") {
  Tensor x = tensor({1e4, -1e4, 1e4, -1e4, 0}, DType::f32).requires_grad_();
  Tensor t = tensor({0, 1, 1, 0, 1});
  Tensor loss = nn::binary_cross_entropy_with_logits(x, t, nn::BCEWithLogitsOptions().reduction(Reduction::none));
  // Confidently wrong costs |x|, confidently right costs e^-|x| = 0, and x = 0 costs log 2.
  const auto v = values(loss);
  CHECK(v[0] == 1e4);
  CHECK(v[1] == 1e4);
  CHECK(v[2] == 0.0);
  CHECK(v[3] == 0.0);
  CHECK(v[4] == doctest::Approx(std::log(2.0)));
  loss.sum().backward();
  // d/dx = σ(x) - t
  CHECK(values(x.grad()) == std::vector<double>{1, -1, 0, 0, -0.5});
}

TEST_CASE("binary_cross_entropy_with_logits weights positives by pos_weight") {
  Tensor x = tensor({0.3, -1.2}, {1, 2}, DType::f64), t = tensor({1, 0}, {1, 2}, DType::f64);
  Tensor pw = tensor({3, 5}, DType::f64);
  auto none = nn::BCEWithLogitsOptions().pos_weight(pw).reduction(Reduction::none);
  const auto v = values(nn::binary_cross_entropy_with_logits(x, t, none));
  CHECK(v[0] == doctest::Approx(3.0 * std::log1p(std::exp(-0.3))));  // positive: pos_weight·(−log σ(x))
  CHECK(v[1] == doctest::Approx(std::log1p(std::exp(-1.2))));        // negative: −log(1 − σ(x)), unweighted
  CHECK_THROWS_AS(nn::binary_cross_entropy_with_logits(x, t, nn::BCEWithLogitsOptions().pos_weight(ones({3}, DType::f64))),
                  Error);
}

TEST_CASE("every loss gradchecks in f64") {
  manual_seed(9);
  Tensor x = randn({4, 5}, DType::f64).requires_grad_();
  Tensor y = randn({4, 5}, DType::f64).requires_grad_();
  Tensor labels = tensor({1, 4, 2, 0}, DType::i64);
  Tensor w = rand({5}, DType::f64) + 0.5;

  check_gradcheck([](const auto& in) { return nn::mse_loss(in[0], in[1]); }, {x, y});
  check_gradcheck([](const auto& in) { return nn::l1_loss(in[0], in[1], Reduction::sum); }, {x, y});
  for (Reduction r : {Reduction::mean, Reduction::sum, Reduction::none}) {
    auto opts = nn::CrossEntropyOptions().ignore_index(2).label_smoothing(0.2).weight(w).reduction(r);
    check_gradcheck([&](const auto& in) { return nn::cross_entropy(in[0], labels, opts); }, {x});
  }
  check_gradcheck([&](const auto& in) { return nn::cross_entropy(in[0], labels); }, {x});
  check_gradcheck([&](const auto& in) { return nn::cross_entropy(in[0], softmax(in[1], 1), nn::CrossEntropyOptions().label_smoothing(0.1)); },
                  {x, y});
  Tensor spatial = randn({2, 3, 2, 2}, DType::f64).requires_grad_();
  Tensor spatial_labels = randint(0, 3, {2, 2, 2});
  check_gradcheck([&](const auto& in) { return nn::cross_entropy(in[0], spatial_labels, nn::CrossEntropyOptions().label_smoothing(0.1)); },
                  {spatial});
  check_gradcheck([&](const auto& in) { return nn::nll_loss(log_softmax(in[0], 1), labels, nn::NLLLossOptions().weight(w)); },
                  {x});
  Tensor targets = rand({4, 5}, DType::f64);
  auto bce = nn::BCEWithLogitsOptions().pos_weight(w).weight(rand({4, 5}, DType::f64));
  check_gradcheck([&](const auto& in) { return nn::binary_cross_entropy_with_logits(in[0] * 10.0, targets, bce); }, {x});
}
