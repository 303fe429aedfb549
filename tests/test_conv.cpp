// Conv1d's recorded op and the channels-last and causal options (PyTorch parity is in
// test_seq_parity.cpp, gradcheck in test_seq_layers.cpp): channels last against channels first
// on permuted inputs, causal padding against explicit left zeros, a batch cut into blocks
// against the composed product, padding modes, what backward saves, and errors.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include <xgrad/xgrad.hpp>

using namespace xgrad;

namespace {

// PyTorch's conv1d composed from primitives, independently of nn: zeros cat on both sides, the
// (N, G, C/G, K, L_out) windows as_strided, one batched matmul, the bias broadcast. x (N, C, L).
Tensor reference_conv1d(const Tensor& x, const Tensor& w, const Tensor& b, std::int64_t stride, std::int64_t left,
                        std::int64_t right, std::int64_t dilation, std::int64_t groups) {
  const std::int64_t N = x.size(0), C = x.size(1), O = w.size(0), Cg = w.size(1), K = w.size(2);
  std::vector<Tensor> parts;
  if (left) parts.push_back(zeros({N, C, left}, x.dtype()));
  parts.push_back(x);
  if (right) parts.push_back(zeros({N, C, right}, x.dtype()));
  const Tensor xp = cat(parts, 2);
  const std::int64_t Lp = xp.size(2), L_out = (Lp - dilation * (K - 1) - 1) / stride + 1;
  const Tensor win = as_strided(xp, {N, groups, Cg, K, L_out}, {C * Lp, Cg * Lp, Lp, dilation, stride}, 0);
  Tensor y = reshape(matmul(reshape(w, {groups, O / groups, Cg * K}), reshape(win, {N, groups, Cg * K, L_out})),
                     {N, O, L_out});
  return b.defined() ? y + reshape(b, {O, 1}) : y;
}

// The gradients of (y · r).sum() for a random r: every input's and parameter's.
struct Grads {
  Tensor y, dx;
  std::vector<Tensor> params;
};
Grads run(nn::Module& m, const std::function<Tensor(const Tensor&)>& f, const Tensor& x, const Tensor& r) {
  m.zero_grad();
  const Tensor xi = x.detach().requires_grad_();
  Grads g;
  g.y = f(xi);
  (g.y * r).sum().backward();
  g.dx = xi.grad();
  for (const Tensor& p : m.parameters()) g.params.push_back(p.grad());
  return g;
}

}  // namespace

TEST_CASE("Conv1d channels_last: outputs and every gradient equal channels first on permuted inputs") {
  manual_seed(21);
  struct Case {
    const char* what;
    nn::Conv1dOptions options;
  };
  const std::vector<Case> cases = {
      {"base", nn::Conv1dOptions(4, 6, 3)},
      {"stride 2, padding 1", nn::Conv1dOptions(4, 6, 3).stride(2).padding(1)},
      {"dilation 2, no bias", nn::Conv1dOptions(4, 5, 2).dilation(2).bias(false)},
      {"groups 2", nn::Conv1dOptions(4, 6, 3).groups(2)},
      {"depthwise", nn::Conv1dOptions(4, 8, 3).groups(4)},
      {"same, even kernel", nn::Conv1dOptions(4, 3, 4).padding("same")},
      {"causal", nn::Conv1dOptions(4, 3, 3).padding("causal")},
      {"causal, stride 2, dilation 2", nn::Conv1dOptions(4, 3, 3).padding("causal").stride(2).dilation(2)},
  };
  for (const auto& c : cases) {
    for (const bool unbatched : {false, true}) {
      CAPTURE(c.what);
      CAPTURE(unbatched);
      nn::Conv1d first(c.options);
      nn::Conv1dOptions last_options = c.options;
      nn::Conv1d last(last_options.channels_last(true));
      first.to(DType::f64);
      last.to(DType::f64);
      last.load_state_dict(first.state_dict());  // same keys and shapes in both layouts
      const Tensor x = unbatched ? randn({4, 9}, DType::f64) : randn({3, 4, 9}, DType::f64);
      const std::int64_t a = unbatched ? 0 : 1, b = a + 1;  // the (C, L) dimensions
      const Tensor y0 = first(x);
      const Tensor r = randn(y0.shape(), DType::f64);
      const Grads f = run(first, [&](const Tensor& t) { return first(t); }, x, r);
      const Grads l = run(last, [&](const Tensor& t) { return last(t); }, x.transpose(a, b).contiguous(),
                          r.transpose(a, b).contiguous());
      CHECK(allclose(l.y, f.y.transpose(a, b), 1e-12, 1e-12));
      CHECK(allclose(l.dx, f.dx.transpose(a, b), 1e-12, 1e-12));
      REQUIRE(l.params.size() == f.params.size());
      for (std::size_t i = 0; i < f.params.size(); ++i) CHECK(allclose(l.params[i], f.params[i], 1e-12, 1e-12));
    }
  }
}

TEST_CASE("Conv1d causal padding: dilation·(K − 1) zeros on the left, L_out = ⌈L / stride⌉") {
  manual_seed(22);
  for (const std::int64_t stride : {1, 2, 3}) {
    CAPTURE(stride);
    nn::Conv1d causal(nn::Conv1dOptions(3, 4, 3).padding("causal").dilation(2).stride(stride));
    causal.to(DType::f64);
    const Tensor x = randn({2, 3, 10}, DType::f64);
    const Tensor y = causal(x);
    CHECK(y.shape() == Shape{2, 4, (10 + stride - 1) / stride});
    CHECK(allclose(y, reference_conv1d(x, causal.weight, causal.bias, stride, 4, 0, 2, 1), 1e-12, 1e-12));
    // Output step t reads input steps up to t·stride only: a change at step s moves no output before it.
    const std::int64_t s = 6;
    Tensor moved = x.clone();
    {
      NoGradGuard no_grad;
      moved.select(2, s).add_(full({2, 3}, 5.0, DType::f64));
    }
    const Tensor y2 = causal(moved);
    for (std::int64_t t = 0; t < y.size(2); ++t) {
      CAPTURE(t);
      if (t * stride < s) CHECK(allclose(y.select(2, t), y2.select(2, t), 0, 0));
      if (t * stride == s) CHECK_FALSE(allclose(y.select(2, t), y2.select(2, t)));  // its last tap reads s
    }
  }
  CHECK(nn::Conv1d(nn::Conv1dOptions(4, 8, 3).padding("causal").channels_last(true)).extra_repr() ==
        "4, 8, kernel_size=3, stride=1, padding=causal, channels_last=true");
  CHECK(nn::ConvPadding("causal").str() == "causal");
}

TEST_CASE("MaxPool1d and AvgPool1d channels_last: outputs and gradients equal channels first permuted") {
  manual_seed(23);
  const std::vector<nn::Pool1dOptions> cases = {
      nn::Pool1dOptions(2), nn::Pool1dOptions(3).stride(2).padding(1),
      nn::Pool1dOptions(3).stride(1).padding(1).count_include_pad(false)};
  for (const auto& o : cases) {
    for (const bool unbatched : {false, true}) {
      for (const bool is_max : {true, false}) {
        CAPTURE(o.kernel_size());
        CAPTURE(o.padding());
        CAPTURE(unbatched);
        CAPTURE(is_max);
        nn::Pool1dOptions last_options = o;
        last_options.channels_last(true);
        auto pool = [&](const nn::Pool1dOptions& p, const Tensor& t) {
          return is_max ? nn::max_pool1d(t, p) : nn::avg_pool1d(t, p);
        };
        const Tensor x = (unbatched ? randn({4, 9}, DType::f64) : randn({3, 4, 9}, DType::f64)).requires_grad_();
        const std::int64_t a = unbatched ? 0 : 1, b = a + 1;
        const Tensor xl = x.detach().transpose(a, b).contiguous().requires_grad_();
        const Tensor y = pool(o, x), yl = pool(last_options, xl);
        const Tensor r = randn(y.shape(), DType::f64);
        (y * r).sum().backward();
        (yl * r.transpose(a, b)).sum().backward();
        CHECK(allclose(yl, y.transpose(a, b), 1e-12, 1e-12));
        CHECK(allclose(xl.grad(), x.grad().transpose(a, b), 1e-12, 1e-12));
      }
    }
  }
  CHECK(nn::MaxPool1d(nn::Pool1dOptions(2).channels_last(true)).extra_repr() ==
        "kernel_size=2, stride=2, padding=0, channels_last=true");
}

TEST_CASE("Conv1d over a batch cut into blocks matches the composed product") {
  manual_seed(24);
  // 37 sequences of 300 steps: four blocks of 9 or 10 sequences.
  for (const DType dtype : {DType::f64, DType::f32}) {
    for (const std::int64_t groups : {1, 2}) {
      for (const bool last : {false, true}) {
        CAPTURE(dtype_name(dtype));
        CAPTURE(groups);
        CAPTURE(last);
        nn::Conv1d conv(nn::Conv1dOptions(16, 32, 5).padding("same").groups(groups).channels_last(last));
        conv.to(dtype);
        const Tensor x = randn({37, 16, 300}, dtype);
        const Tensor r = randn({37, 32, 300}, dtype);
        const Grads got = run(conv, [&](const Tensor& t) { return conv(last ? t.transpose(1, 2) : t); }, x,
                              last ? r.transpose(1, 2) : r);
        const Grads want = run(conv, [&](const Tensor& t) {
          return reference_conv1d(t, conv.weight, conv.bias, 1, 2, 2, 1, groups);
        }, x, r);
        const double tol = dtype == DType::f64 ? 1e-10 : 1e-4;
        CHECK(allclose(last ? got.y.transpose(1, 2) : got.y, want.y, tol, tol));
        CHECK(allclose(got.dx, want.dx, tol, tol));
        CHECK(allclose(got.params[0], want.params[0], tol, tol));
        CHECK(allclose(got.params[1], want.params[1], tol, tol));
      }
    }
  }
}

TEST_CASE("Conv1d backward reads an expanded or transposed output gradient as a dense one") {
  manual_seed(27);
  for (const bool last : {false, true}) {
    CAPTURE(last);
    nn::Conv1d conv(nn::Conv1dOptions(3, 4, 3).padding(1).channels_last(last));
    conv.to(DType::f64);
    const Tensor x = randn(last ? Shape{2, 8, 3} : Shape{2, 3, 8}, DType::f64);
    const Shape y_shape = last ? Shape{2, 8, 4} : Shape{2, 4, 8};
    const Tensor r = randn(y_shape, DType::f64);
    const Tensor transposed = r.transpose(1, 2).contiguous().transpose(1, 2);  // r's values, other strides
    const Tensor expanded = full({1, 1, 1}, 0.25, DType::f64).expand(y_shape);
    auto grads_for = [&](const Tensor& seed) {
      const Tensor xi = x.detach().requires_grad_();
      conv.zero_grad();
      conv(xi).backward(seed);
      return std::vector<Tensor>{xi.grad(), conv.weight.grad().clone(), conv.bias.grad().clone()};
    };
    for (const Tensor& seed : {transposed, expanded}) {
      const Tensor dense = seed.contiguous();
      REQUIRE(seed.strides() != dense.strides());
      const std::vector<Tensor> got = grads_for(seed), want = grads_for(dense);
      for (std::size_t i = 0; i < want.size(); ++i) CHECK(allclose(got[i], want[i], 0, 0));
    }
  }
}

TEST_CASE("Conv1d saves only its input and weight: the bias may change in place before backward") {
  manual_seed(25);
  nn::Conv1d conv(nn::Conv1dOptions(3, 4, 3).padding(1));
  const Tensor x = randn({2, 3, 8}).requires_grad_();
  conv(x).sum().backward();
  const Tensor dw = conv.weight.grad().clone(), db = conv.bias.grad().clone(), dx = x.grad().clone();
  conv.zero_grad();
  x.grad().zero_();
  const Tensor y = conv(x);
  {
    NoGradGuard no_grad;
    conv.bias.add_(ones({4}));  // as an optimizer step on the bias would
  }
  y.sum().backward();
  CHECK(allclose(conv.weight.grad(), dw, 0, 0));
  CHECK(allclose(conv.bias.grad(), db, 0, 0));
  CHECK(allclose(x.grad(), dx, 0, 0));
  const Tensor y2 = conv(x);
  {
    NoGradGuard no_grad;
    conv.weight.add_(ones(conv.weight.shape()));
  }
  CHECK_THROWS_AS(y2.sum().backward(), Error);  // backward reads the weight: refused
}

TEST_CASE("Conv1d keeps no column matrix for backward: the graph holds the input and weight only") {
  manual_seed(26);
  // Bytes of large blocks (> 256 KB) held by live tensors on this thread.
  auto live = [] {
    const MemoryStats m = memory_stats();
    return m.mapped_bytes - m.unmapped_bytes - m.idle_bytes;
  };
  nn::Conv1d conv(nn::Conv1dOptions(16, 8, 5).padding("same"));
  const Tensor x = randn({4, 16, 512}).requires_grad_();  // im2col (4, 80, 512): 640 KB; y: 64 KB
  const std::int64_t before = live();
  const Tensor y = conv(x);
  CHECK(live() - before < (std::int64_t{256} << 10));
  y.sum().backward();
  CHECK(x.grad().shape() == x.shape());
}

TEST_CASE("Conv1d padding_mode reflect, replicate, circular: the padded input PyTorch's F.pad builds") {
  manual_seed(28);
  // x (N, C, L) padded along L by hand, one step at a time.
  auto padded = [](const Tensor& x, nn::PaddingMode mode, std::int64_t left, std::int64_t right) {
    const std::int64_t L = x.size(2);
    auto step = [&](std::int64_t i) { return narrow(x, 2, i, 1); };
    std::vector<Tensor> parts;
    for (std::int64_t j = left; j >= 1; --j)  // position −j
      parts.push_back(mode == nn::PaddingMode::reflect     ? step(j)
                      : mode == nn::PaddingMode::replicate ? step(0)
                                                           : step(L - j));
    parts.push_back(x);
    for (std::int64_t j = 1; j <= right; ++j)  // position L − 1 + j
      parts.push_back(mode == nn::PaddingMode::reflect     ? step(L - 1 - j)
                      : mode == nn::PaddingMode::replicate ? step(L - 1)
                                                           : step(j - 1));
    return cat(parts, 2);
  };
  struct Case {
    nn::PaddingMode mode;
    nn::Conv1dOptions options;
    std::int64_t left, right;
  };
  using M = nn::PaddingMode;
  const std::vector<Case> cases = {
      {M::reflect, nn::Conv1dOptions(3, 4, 3).padding(2), 2, 2},
      {M::replicate, nn::Conv1dOptions(3, 4, 3).padding(3).stride(2), 3, 3},
      {M::circular, nn::Conv1dOptions(3, 4, 3).padding(6).dilation(2), 6, 6},  // L: wraps once whole
      {M::reflect, nn::Conv1dOptions(3, 4, 4).padding("same"), 1, 2},
      {M::circular, nn::Conv1dOptions(3, 6, 3).padding("causal").dilation(2).groups(3), 4, 0},
      {M::replicate, nn::Conv1dOptions(3, 4, 2).padding(1).channels_last(true), 1, 1},
  };
  for (const auto& c : cases) {
    CAPTURE(static_cast<int>(c.mode));
    CAPTURE(c.options.padding().str());
    nn::Conv1dOptions o = c.options;
    nn::Conv1d conv(o.padding_mode(c.mode));
    conv.to(DType::f64);
    const bool last = o.channels_last();
    const Tensor x = randn({2, 3, 6}, DType::f64);
    const Tensor r = randn(conv(last ? x.transpose(1, 2) : x).shape(), DType::f64);
    const Grads got = run(conv, [&](const Tensor& t) { return conv(last ? t.transpose(1, 2) : t); }, x, r);
    const Grads want = run(conv, [&](const Tensor& t) {
      const Tensor y = reference_conv1d(padded(t, c.mode, c.left, c.right), conv.weight, conv.bias, o.stride(), 0, 0,
                                        o.dilation(), o.groups());
      return last ? y.transpose(1, 2) : y;
    }, x, r);
    CHECK(allclose(got.y, want.y, 1e-12, 1e-12));
    CHECK(allclose(got.dx, want.dx, 1e-12, 1e-12));
    CHECK(allclose(got.params[0], want.params[0], 1e-12, 1e-12));
    CHECK(allclose(got.params[1], want.params[1], 1e-12, 1e-12));
    const Tensor xg = (last ? randn({2, 6, 3}, DType::f64) : randn({2, 3, 6}, DType::f64)).requires_grad_();
    auto check = gradcheck([&](const std::vector<Tensor>& in) { return conv(in[0]); }, {xg});
    CHECK_MESSAGE(check.ok, check.message());
  }
  CHECK(nn::Conv1d(nn::Conv1dOptions(4, 8, 3).padding(1).padding_mode(M::circular)).extra_repr() ==
        "4, 8, kernel_size=3, stride=1, padding=1, padding_mode=circular");
  CHECK_THROWS_WITH_AS(nn::Conv1d(nn::Conv1dOptions(2, 2, 3).padding(3).padding_mode(M::reflect))(randn({1, 2, 3})),
                       doctest::Contains("Conv1d: padding_mode reflect pads at most 2 steps per side of an input of 3 steps (1, 2, 3), got 3 before and 3 after"),
                       Error);
  CHECK_THROWS_WITH_AS(nn::Conv1d(nn::Conv1dOptions(2, 2, 3).padding(4).padding_mode(M::circular))(randn({1, 2, 3})),
                       doctest::Contains("padding_mode circular pads at most 3 steps"), Error);
}

TEST_CASE("Conv1d and the poolings refuse a channels-last input of the wrong rank or channels, naming them") {
  nn::Conv1d conv(nn::Conv1dOptions(4, 6, 3).channels_last(true));
  CHECK_THROWS_WITH_AS(conv(randn({2, 3, 4, 5})), doctest::Contains("Conv1d: expected a floating-point input (N, L, C) or (L, C) (channels_last), got float32 (2, 3, 4, 5)"), Error);
  CHECK_THROWS_WITH_AS(conv(randn({2, 4, 9})),
                       doctest::Contains("Conv1d: input (2, 4, 9) (channels last) with weight (6, 4, 3) and groups=1: the input has 9 channels"),
                       Error);
  CHECK_THROWS_WITH_AS(nn::conv1d(randn({5, 3}), randn({2, 4, 3}), {}, 1, {}, 1, 1, true),
                       doctest::Contains("conv1d: input (5, 3) (channels last)"), Error);
  CHECK_THROWS_WITH_AS(nn::Conv1dOptions(4, 6, 3).padding("full"), doctest::Contains("\"causal\""), Error);
  CHECK_THROWS_WITH_AS(nn::Conv1d(nn::Conv1dOptions(4, 6, 3).padding("causal").dilation(2))(randn({1, 4, 0})),
                       doctest::Contains("fewer than the kernel's span 5"), Error);
  CHECK_THROWS_WITH_AS(nn::max_pool1d(randn({2, 3}).reshape({6}), nn::Pool1dOptions(2).channels_last(true)),
                       doctest::Contains("max_pool1d: expected a floating-point input (N, L, C) or (L, C) (channels_last), got float32 (6)"),
                       Error);
  CHECK_THROWS_WITH_AS(nn::avg_pool1d(randn({2, 1, 3}), nn::Pool1dOptions(3).stride(1).padding(0).channels_last(true)),
                       doctest::Contains("avg_pool1d: the padded input has 1 steps, fewer than kernel_size 3"), Error);
}
