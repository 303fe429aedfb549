// The sequence layers beyond recurrence, apart from PyTorch parity (test_seq_parity.cpp):
// gradcheck in f64 of every layer in each configuration, the padded-batch rule (a sequence
// gives the same result in a padded batch as alone), masks that never leak NaN, and errors.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include <xgrad/xgrad.hpp>

using namespace xgrad;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

// Writes `value` at every padded step of x (time along `time_dim`, batch along `batch_dim`).
void poison(Tensor& x, const nn::Lengths& lengths, std::int64_t time_dim, std::int64_t batch_dim, double value) {
  NoGradGuard no_grad;
  const std::int64_t T = x.size(time_dim);
  const std::vector<bool> pad = lengths.padding_mask(T).to_vector<bool>();
  for (std::int64_t b = 0; b < lengths.size(); ++b)
    for (std::int64_t t = 0; t < T; ++t)
      if (pad[static_cast<std::size_t>(b * T + t)]) x.select(batch_dim, b).select(time_dim - (time_dim > batch_dim), t).fill_(value);
}

bool all_finite(const Tensor& t) { return t.defined() && !has_nonfinite(t); }

}  // namespace

TEST_CASE("gradcheck: Conv1d w.r.t. input, weight and bias in each configuration") {
  manual_seed(5);
  struct Case {
    const char* what;
    nn::Conv1dOptions options;
  };
  const std::vector<Case> cases = {
      {"base", nn::Conv1dOptions(3, 4, 3)},
      {"stride 2, padding 1", nn::Conv1dOptions(3, 4, 3).stride(2).padding(1)},
      {"dilation 2", nn::Conv1dOptions(3, 2, 2).dilation(2)},
      {"groups 3", nn::Conv1dOptions(3, 6, 2).groups(3)},
      {"same, even kernel", nn::Conv1dOptions(3, 2, 4).padding("same")},
      {"same, dilation 2", nn::Conv1dOptions(3, 2, 3).padding("same").dilation(2)},
      {"no bias", nn::Conv1dOptions(3, 2, 3).bias(false)},
  };
  for (const auto& c : cases) {
    CAPTURE(c.what);
    nn::Conv1d conv(c.options);
    conv.to(DType::f64);
    const Tensor x = randn({2, 3, 7}, DType::f64).requires_grad_();
    auto r = gradcheck([&](const std::vector<Tensor>& in) { return conv(in[0]); }, {x});
    CHECK_MESSAGE(r.ok, r.message());
    auto p = nn::gradcheck(conv, [&] { return conv(x.detach()); });
    CHECK_MESSAGE(p.ok, p.message());
  }
}

TEST_CASE("gradcheck: MaxPool1d, AvgPool1d and the global poolings with lengths") {
  manual_seed(6);
  const Tensor x = randn({2, 3, 8}, DType::f64).requires_grad_();
  auto check = [&](const char* what, const std::function<Tensor(const Tensor&)>& fn) {
    CAPTURE(what);
    auto r = gradcheck([&](const std::vector<Tensor>& in) { return fn(in[0]); }, {x},
                       GradcheckOptions().allow_zero_gradient(true));
    CHECK_MESSAGE(r.ok, r.message());
  };
  // Overlapping windows (stride < kernel) accumulate the gradient of a step used twice.
  check("max k3 s1 p1", [](const Tensor& t) { return nn::max_pool1d(t, nn::Pool1dOptions(3).stride(1).padding(1)); });
  check("max k2", [](const Tensor& t) { return nn::max_pool1d(t, 2); });
  check("avg k3 s2 p1", [](const Tensor& t) { return nn::avg_pool1d(t, nn::Pool1dOptions(3).stride(2).padding(1)); });
  check("avg k3 s1 p1 exclude pad", [](const Tensor& t) {
    return nn::avg_pool1d(t, nn::Pool1dOptions(3).stride(1).padding(1).count_include_pad(false));
  });
  const nn::Lengths post({8, 3}), pre(std::vector<std::int64_t>{5, 1}, nn::Side::pre);
  check("global max post", [&](const Tensor& t) { return nn::global_max_pool1d(t, post); });
  check("global avg pre", [&](const Tensor& t) { return nn::global_avg_pool1d(t, pre); });
  check("global avg (N, L, C)", [&](const Tensor& t) { return nn::global_avg_pool1d(t.transpose(1, 2), post, 1); });
}

TEST_CASE("global pooling: a padded batch gives each sequence its result alone, NaN and Inf in the padding") {
  manual_seed(7);
  const Tensor a = randn({3, 6}), b = randn({3, 2});  // (C, L) sequences of 6 and 2 steps
  for (nn::Side side : {nn::Side::post, nn::Side::pre}) {
    // Channels-first batch: pad along L, on the given side.
    auto padded = nn::pad_sequences({a.t(), b.t(), zeros({0, 3})}, true, kNaN, side);  // (3, 6, 3) NLC
    Tensor x = padded.padded.transpose(1, 2).contiguous().requires_grad_();              // (3, 3, 6) NCL
    poison(x, padded.lengths, 2, 0, kInf);
    const Tensor mx = nn::global_max_pool1d(x, padded.lengths);
    const Tensor av = nn::global_avg_pool1d(x, padded.lengths);
    CHECK(allclose(mx.select(0, 0), max(a, 1).first));
    CHECK(allclose(mx.select(0, 1), max(b, 1).first));
    CHECK(allclose(mx.select(0, 2), zeros({3})));  // length 0
    CHECK(allclose(av.select(0, 0), mean(a, {1})));
    CHECK(allclose(av.select(0, 1), mean(b, {1})));
    CHECK(allclose(av.select(0, 2), zeros({3})));
    sum(mx + av).backward();
    CHECK(all_finite(x.grad()));
    // Padded steps get no gradient.
    const Tensor pad = unsqueeze(padded.lengths.padding_mask(6), 1);  // (3, 1, 6)
    CHECK(sum(abs(where(pad, x.grad(), zeros({}, x.dtype())))).item() == 0.0);
  }
}
