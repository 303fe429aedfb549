// The silent wrong results of the strided-views issue, now right or refused: the forget-gate
// bias trick through a view changes the bias, and an optimizer step between forward and
// backward makes backward throw for every optimizer (their updates bump the version).
#include <doctest/doctest.h>

#include <xgrad/xgrad.hpp>

#include <functional>
#include <memory>
#include <string>
#include <vector>

using namespace xgrad;

namespace {
Tensor parameter(const NamedTensors& params, const std::string& name) {
  for (const auto& [n, p] : params)
    if (n == name) return p;
  FAIL("no parameter " << name);
  return {};
}
}  // namespace

TEST_CASE("the forget-gate bias trick writes through narrow() into the LSTM's bias") {
  const std::int64_t H = 3;
  nn::LSTM lstm(nn::LSTMOptions(2, H));
  Tensor bias = parameter(lstm.named_parameters(), "bias_ih_l0");
  const std::vector<float> before = bias.to_vector<float>();
  {
    NoGradGuard no_grad;
    bias.narrow(0, H, H).fill_(1.0);
  }
  const std::vector<float> after = parameter(lstm.named_parameters(), "bias_ih_l0").to_vector<float>();
  for (std::int64_t i = 0; i < 4 * H; ++i) {
    if (i >= H && i < 2 * H) CHECK(after[i] == 1.0f);
    else CHECK(after[i] == before[i]);
  }
  // With grad mode on, PyTorch refuses this (a view of a leaf that requires grad); so do we.
  CHECK_THROWS_WITH_AS(bias.narrow(0, H, H).fill_(1.0), doctest::Contains("a view of a leaf tensor that requires grad"), Error);
  // select(...).copy_(...) is the same write.
  {
    NoGradGuard no_grad;
    bias.select(0, 0).copy_(tensor({7.0}).reshape({}));
  }
  CHECK(parameter(lstm.named_parameters(), "bias_ih_l0").to_vector<float>()[0] == 7.0f);
}

TEST_CASE("an optimizer step between forward and backward makes backward throw, for every optimizer") {
  using Make = std::function<std::unique_ptr<optim::Optimizer>(std::vector<Tensor>)>;
  const std::vector<std::pair<std::string, Make>> optimizers = {
      {"SGD", [](auto p) { return std::make_unique<optim::SGD>(p, optim::SGDOptions(0.1)); }},
      {"SGD momentum", [](auto p) { return std::make_unique<optim::SGD>(p, optim::SGDOptions(0.1).momentum(0.9)); }},
      {"Adam", [](auto p) { return std::make_unique<optim::Adam>(p); }},
      {"AdamW", [](auto p) { return std::make_unique<optim::AdamW>(p); }},
      {"RMSprop", [](auto p) { return std::make_unique<optim::RMSprop>(p); }},
      {"Adagrad", [](auto p) { return std::make_unique<optim::Adagrad>(p); }},
  };
  for (const auto& [name, make] : optimizers) {
    CAPTURE(name);
    Tensor w = tensor({1.0, 2.0}).requires_grad_();
    Tensor x = tensor({3.0, 4.0}).requires_grad_();
    auto opt = make({w});
    (w * x).sum().backward();  // a gradient for the first step
    Tensor y = (w * x).sum();  // saves w (for x's gradient) and x
    opt->step();               // writes w
    CHECK_THROWS_WITH_AS(y.backward(), doctest::Contains("was modified by an in-place operation"), Error);
  }
}

TEST_CASE("writes through views reach the base; reshape copies only where no view can") {
  Tensor a = arange(0.0, 6.0).reshape({2, 3});
  a.t().select(0, 1).fill_(-1.0);  // column 1
  CHECK(a.to_vector<float>() == std::vector<float>{0, -1, 2, 3, -1, 5});
  CHECK(a.t().is_view());
  CHECK_FALSE(a.t().is_contiguous());
  CHECK(a.t().strides() == std::vector<std::int64_t>{1, 3});
  Tensor copy = a.t().reshape({6});  // not viewable: a copy
  CHECK_FALSE(copy.shares_storage(a));
  CHECK_THROWS_WITH_AS(a.t().view({6}), doctest::Contains("use reshape()"), Error);
  const std::uint64_t v = a.version();
  a.narrow(1, 0, 1).add_(ones({2, 1}));
  CHECK(a.version() == v + 1);
}

TEST_CASE("kernels read views: expanded, transposed and narrowed operands give the dense results") {
  manual_seed(11);
  const Tensor a = randn({4, 6}, DType::f64), b = randn({6, 5}, DType::f64), v = randn({4}, DType::f64);
  auto same = [](const Tensor& x, const Tensor& y) { return x.shape() == y.shape() && allclose(x, y, 1e-12, 1e-12); };
  // Broadcasting against expanded views (read without a copy) and both operands expanded.
  CHECK(same(expand(scalar(2.0, DType::f64), {3, 4}) + v, expand(scalar(2.0, DType::f64), {3, 4}).contiguous() + v));
  CHECK(same(v.unsqueeze(1).expand({4, 3}) * v.unsqueeze(0).expand({4, 4}).narrow(1, 0, 3),
             v.unsqueeze(1).expand({4, 3}).contiguous() * v.unsqueeze(0).expand({4, 4}).narrow(1, 0, 3).contiguous()));
  // GEMM operands: transposed (transpose flag), column-narrowed (leading dimension), both.
  CHECK(same(matmul(b.t(), a.t()), matmul(b.t().contiguous(), a.t().contiguous())));
  CHECK(same(matmul(a.narrow(1, 1, 4), b.narrow(0, 2, 4)), matmul(a.narrow(1, 1, 4).contiguous(), b.narrow(0, 2, 4).contiguous())));
  const Tensor bias = randn({5}, DType::f64);  // x (3, 4) strided, w (5, 4) a transposed narrow
  CHECK(same(linear(a.t().narrow(0, 1, 3), b.narrow(0, 0, 4).t(), bias),
             linear(a.t().narrow(0, 1, 3).contiguous(), b.narrow(0, 0, 4).t().contiguous(), bias)));
  // Reductions, softmax, unary and indexing of strided views.
  CHECK(same(sum(a.t(), {1}), sum(a.t().contiguous(), {1})));
  CHECK(same(softmax(a.t(), 1), softmax(a.t().contiguous(), 1)));
  CHECK(same(tanh(a.narrow(1, 2, 3)), tanh(a.narrow(1, 2, 3).contiguous())));
  CHECK(same(index_select(a.t(), 0, tensor({4, 0}, DType::i64)), index_select(a.t().contiguous(), 0, tensor({4, 0}, DType::i64))));
  CHECK(same(a.t().to(DType::f32).to(DType::f64), a.t().contiguous().to(DType::f32).to(DType::f64)));
}

TEST_CASE("load_state_dict and set_data count as writes: backward refuses a graph that saved the old weights") {
  manual_seed(12);
  nn::Linear a(2, 2), b(2, 2);
  const Tensor x = randn({3, 2}).requires_grad_();
  Tensor y = a(x).sum();  // linear saved the weight (for x's gradient)
  a.load_state_dict(b.state_dict());
  CHECK_THROWS_WITH_AS(y.backward(), doctest::Contains("was modified by an in-place operation"), Error);
  Tensor y2 = a(x).sum();
  a.weight.set_data(zeros({2, 2}));
  CHECK_THROWS_WITH_AS(y2.backward(), doctest::Contains("was modified by an in-place operation"), Error);
  Tensor y3 = a(x).sum();  // a graph made after the writes is fine
  y3.backward();
  CHECK(x.grad().defined());
}

TEST_CASE("corner cases of views and in-place autograd found in review") {
  // as_strided of a view, reaching before the view's first element: refused, not written
  // outside the gradient buffer.
  Tensor x = randn({10}).requires_grad_();
  CHECK_THROWS_WITH_AS(x.narrow(0, 5, 5).as_strided({10}, {1}, 0).sum().backward(),
                       doctest::Contains("reaches outside the tensor"), Error);
  Tensor ok = x.as_strided({2, 2}, {1, 2}, 3);
  ok.sum().backward();
  CHECK(x.grad().to_vector<float>() == std::vector<float>{0, 0, 0, 1, 1, 1, 1, 0, 0, 0});

  // A view whose base took other data (set_data) is no longer its view; its old graph now
  // leads to a tensor of another shape, which backward reports (as PyTorch does).
  Tensor w = randn({10}).requires_grad_();
  Tensor v = w.narrow(0, 8, 2);
  w.set_data(randn({3}));
  CHECK_FALSE(v.is_view());
  CHECK_THROWS_WITH_AS((v * 1.0).sum().backward(), doctest::Contains("does not reduce to the shape (3)"), Error);

  // backward() from one piece of an unbind gives the piece's gradient.
  Tensor y = tensor({1.0, 2.0, 3.0}).requires_grad_();
  Tensor pieces_src = y * 1.0;
  auto pieces = pieces_src.unbind(0);
  pieces[1].backward();
  CHECK(y.grad().to_vector<float>() == std::vector<float>{0, 1, 0});

  // The same-shape fast path refuses what the general path refuses.
  Tensor h = tensor({1.0, 2.0}).requires_grad_() * 2.0;
  Tensor nv;
  {
    NoGradGuard no_grad;
    nv = h.narrow(0, 0, 1);
  }
  CHECK_THROWS_WITH_AS(nv.mul_(full({1}, 3.0)), doctest::Contains("made while grad mode was off"), Error);
  CHECK_THROWS_WITH_AS(nv.add_(full({1}, 3.0)), doctest::Contains("made while grad mode was off"), Error);

  // Integer targets are plain writes; a view that is itself a leaf requiring grad is refused.
  Tensor ints = zeros({3}, DType::i64);
  ints.copy_(tensor({1.0, 2.0, 3.0}).requires_grad_());
  CHECK_FALSE(ints.requires_grad());
  CHECK(ints.to_vector<std::int64_t>() == std::vector<std::int64_t>{1, 2, 3});
  CHECK_THROWS_WITH_AS(ints.add_(ints, 0.5), doctest::Contains("would be truncated"), Error);
  Tensor leaf_view = zeros({4}).narrow(0, 0, 2);
  leaf_view.requires_grad_();
  CHECK_THROWS_WITH_AS(leaf_view.mul_(2.0), doctest::Contains("a leaf tensor that requires grad"), Error);

  // A refused write changes nothing.
  Tensor base = zeros({3, 2}).t().detach();
  CHECK_THROWS_AS(base.select(0, 0).copy_(tensor({1.0, 2.0, 3.0}).requires_grad_()), Error);
  CHECK(base.to_vector<float>() == std::vector<float>(6, 0.0f));

  // A hook may remove itself while it runs.
  Tensor z = tensor({1.0}).requires_grad_();
  HookHandle handle;
  int calls = 0;
  handle = z.register_hook([&](const Tensor&) {
    ++calls;
    handle.remove();
    return Tensor();
  });
  (z * 2.0).sum().backward();
  (z * 2.0).sum().backward();
  CHECK(calls == 1);

  // Products with an empty inner dimension are zeros.
  CHECK(matmul(zeros({3, 0}), zeros({0, 4})).to_vector<float>() == std::vector<float>(12, 0.0f));
  CHECK(linear(zeros({2, 0}), zeros({3, 0})).to_vector<float>() == std::vector<float>(6, 0.0f));
}

TEST_CASE("retain_grad follows a tensor through an in-place op (as PyTorch 2 does)") {
  Tensor x = tensor({1.0, 2.0}).requires_grad_();
  Tensor y = x * 2.0;
  y.retain_grad();
  y.mul_(3.0);
  CHECK(y.retains_grad());
  y.sum().backward();
  CHECK(y.grad().to_vector<float>() == std::vector<float>{1, 1});  // d sum / d (new y)
  CHECK(x.grad().to_vector<float>() == std::vector<float>{6, 6});
}

TEST_CASE("storage: large blocks split, merged and reused never overlap a live tensor") {
  // Sizes around the 256 KB and 4 MB thresholds, freed in a scrambled order and allocated
  // again: every live tensor must keep its own values.
  const std::vector<std::int64_t> sizes = {70000, 65536, 300000, 1 << 20, 100000, 2 << 20, 65537, 1100000, 90000};
  std::vector<Tensor> live;
  for (int round = 0; round < 4; ++round) {
    for (std::size_t i = 0; i < sizes.size(); ++i)
      live.push_back(full({sizes[(i + static_cast<std::size_t>(round)) % sizes.size()]}, static_cast<double>(live.size())));
    for (std::size_t i = 0; i < live.size(); i += 2) live[i] = Tensor();  // free every other one
    std::erase_if(live, [](const Tensor& t) { return !t.defined(); });
    for (std::size_t i = 0; i < live.size(); ++i) live[i].fill_(static_cast<double>(i) + 0.5);
    for (std::size_t i = 0; i < live.size(); ++i) {
      const std::vector<float> v = live[i].to_vector<float>();
      CHECK(v.front() == static_cast<float>(i) + 0.5f);
      CHECK(v.back() == static_cast<float>(i) + 0.5f);
      CHECK(v[v.size() / 2] == static_cast<float>(i) + 0.5f);
    }
  }
}

TEST_CASE("lerp keeps only what its backward reads, as PyTorch: in-place writes elsewhere are allowed") {
  const Tensor x = tensor({1.0, -2.0, 3.0}).requires_grad_(), end = tensor({4.0, 5.0, -6.0}).requires_grad_();
  SUBCASE("a tensor weight without grad: start may change, the weight may not") {
    Tensor start = x * 1.0, weight = tensor({0.25, 0.5, 0.75});
    Tensor y = lerp(start, end, weight);
    start.mul_(2.0);
    y.sum().backward();
    CHECK(x.grad().to_vector<float>() == std::vector<float>{0.75f, 0.5f, 0.25f});
    CHECK(end.grad().to_vector<float>() == std::vector<float>{0.25f, 0.5f, 0.75f});
    Tensor y2 = lerp(x * 1.0, end, weight);
    weight.mul_(2.0);
    CHECK_THROWS_WITH_AS(y2.sum().backward(), doctest::Contains("was modified by an in-place operation"), Error);
  }
  SUBCASE("a scalar weight: neither start nor end is kept") {
    Tensor start = x * 1.0, e = end * 1.0;
    Tensor y = lerp(start, e, 0.25);
    start.mul_(2.0);
    e.mul_(2.0);
    y.sum().backward();
    CHECK(x.grad().to_vector<float>() == std::vector<float>{0.75f, 0.75f, 0.75f});
    CHECK(end.grad().to_vector<float>() == std::vector<float>{0.25f, 0.25f, 0.25f});
  }
  SUBCASE("a weight that requires grad keeps start and end") {
    Tensor start = x * 1.0, weight = tensor({0.5}).requires_grad_();
    Tensor y = lerp(start, end, weight);
    start.mul_(2.0);
    CHECK_THROWS_WITH_AS(y.sum().backward(), doctest::Contains("was modified by an in-place operation"), Error);
  }
}

TEST_CASE("in-place writes into a view whose elements overlap are refused by name, whatever the strides") {
  // Four elements over three locations, strides all non-zero: add_(1) wrote [1, 1, 1, 1] and
  // mul_(2) [2, 4, 4, 2], depending on the order of the writes.
  Tensor base = zeros({4}, DType::f64);
  Tensor v = base.as_strided({2, 2}, {1, 1}, 0);
  const Tensor one = ones({2, 2}, DType::f64);
  CHECK_THROWS_WITH_AS(v.add_(one), doctest::Contains("add_: "), Error);
  CHECK_THROWS_WITH_AS(v.add_(one), doctest::Contains("memory location"), Error);
  CHECK_THROWS_WITH_AS(v.sub_(one), doctest::Contains("sub_: "), Error);
  CHECK_THROWS_WITH_AS(v.mul_(2.0), doctest::Contains("mul_: "), Error);
  CHECK_THROWS_WITH_AS(v.mul_(one), doctest::Contains("mul_: "), Error);
  CHECK_THROWS_WITH_AS(v.div_(2.0), doctest::Contains("div_: "), Error);
  CHECK_THROWS_WITH_AS(v.div_(one), doctest::Contains("div_: "), Error);
  CHECK_THROWS_WITH_AS(v.copy_(one), doctest::Contains("copy_: "), Error);
  CHECK(base.to_vector<double>() == std::vector<double>{0, 0, 0, 0});  // refused before any write
  CHECK(base.version() == 0);

  // Layouts that overlap or might: refused (the second is PyTorch's TooHard, it overlaps at 2).
  const std::vector<std::pair<Shape, Shape>> overlapping = {
      {{3, 2}, {1, 2}}, {{2, 2, 2}, {4, 1, 1}}, {{2, 3}, {2, 1}}, {{3, 3}, {2, 3}}, {{2, 1, 2}, {3, 100, 3}}};
  for (const auto& [shape, strides] : overlapping) {
    CAPTURE(shape_str(shape));
    CAPTURE(shape_str(strides));
    Tensor w = zeros({16}, DType::f64).as_strided(shape, strides, 0);
    CHECK_THROWS_WITH_AS(w.add_(ones(shape, DType::f64)), doctest::Contains("add_:"), Error);
    CHECK_THROWS_WITH_AS(w.mul_(2.0), doctest::Contains("mul_:"), Error);
  }
  // Under autograd too (a non-leaf's overlapping view).
  Tensor x = ones({4}, DType::f64).requires_grad_();
  Tensor y = x * 1.0;
  CHECK_THROWS_WITH_AS(y.as_strided({2, 2}, {1, 1}, 0).mul_(2.0), doctest::Contains("mul_:"), Error);

  // Non-overlapping strided layouts stay writable: gaps, transposes, extent-1 dims with any stride.
  const std::vector<std::pair<Shape, Shape>> disjoint = {
      {{2, 2}, {1, 2}}, {{2, 3}, {3, 1}}, {{3, 2}, {1, 3}}, {{2, 2}, {5, 2}}, {{2, 1, 2}, {4, 0, 1}}, {{1, 4}, {1, 2}}};
  for (const auto& [shape, strides] : disjoint) {
    CAPTURE(shape_str(shape));
    CAPTURE(shape_str(strides));
    Tensor b = zeros({16}, DType::f64);
    Tensor w = b.as_strided(shape, strides, 0);
    w.add_(ones(shape, DType::f64));
    w.mul_(3.0);
    CHECK(b.sum().item() == doctest::Approx(3.0 * static_cast<double>(w.numel())));
  }
  // fill_ gives every element one value, so the order of the writes cannot matter: allowed on
  // any overlap, as PyTorch allows it on expanded tensors.
  v.fill_(7.0);
  CHECK(base.to_vector<double>() == std::vector<double>{7, 7, 7, 0});
}
